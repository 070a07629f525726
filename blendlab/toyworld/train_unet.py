"""Train the toy world's UNet: ``python -m blendlab.toyworld.train_unet --minutes 60``.

The model is guided_diffusion's ``UNetModel`` with the ``"toy"`` preset's configuration and the
diffusion every blendlab preset uses (1000 linear steps, learned sigmas); the loss is
guided_diffusion's own ``training_losses`` (MSE on ε plus the variational bound for Σ), timesteps
drawn uniformly. Data: :func:`blendlab.toyworld.world.random_layout` scenes, a fresh seeded batch at
every step. The shipped file holds the EMA weights. Resumable (see :mod:`.training`).

May import: presets, toyworld.training, toyworld.world.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from .training import TrainingRun, add_common_args, load_init, step_generator
from .world import DEFAULT_SIZE, random_layout, random_signed_layout, render_scene

DEFAULT_OUT = "blendlab/toyworld/weights"


def scene_batch(seed: int, step: int, batch: int, size: int = DEFAULT_SIZE, signs: float = 0.0,
                sign_scales: tuple[int, ...] = (1, 2)) -> torch.Tensor:
    """The training batch of one step: ``batch`` random scenes, (B, 3, S, S) in [-1, 1]; ``signs`` of
    them carry a sign (:func:`~blendlab.toyworld.world.random_signed_layout`, its letters at one of
    ``sign_scales``). With ``signs`` 0 the
    random stream is the one of before signs existed, draw for draw."""
    rng = np.random.default_rng([seed, step, 1])
    images = []
    for _ in range(batch):
        if signs and rng.random() < signs:
            objects, background, sign = random_signed_layout(rng, size, scales=sign_scales)
            images.append(render_scene(objects, size, background, sign))
            continue
        objects, background = random_layout(rng)
        images.append(render_scene(objects, size, background))
    return torch.cat(images)


def main(argv=None) -> None:
    from ..presets import build_unet, diffusion_config, unet_config
    from guided_diffusion.script_util import create_gaussian_diffusion

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_args(p, DEFAULT_OUT, steps=6000, batch=32, lr=5e-4)
    p.add_argument("--warmup", type=int, default=200, help="linear learning-rate warm-up steps")
    p.add_argument("--sign-scales", type=int, nargs="+", default=[1, 2], choices=[1, 2],
                   help="font scales a training sign may have (1: 3x5 px letters, 2: 6x10 px)")
    args = p.parse_args(argv)
    sign_scales = tuple(sorted(set(args.sign_scales)))
    if args.threads:
        torch.set_num_threads(args.threads)
    config = unet_config("toy")
    torch.manual_seed(args.seed)
    unet = build_unet(config).train()
    phase = load_init(unet, args.init)
    diffusion = create_gaussian_diffusion(**diffusion_config(), timestep_respacing="")
    opt = torch.optim.AdamW(unet.parameters(), lr=args.lr, weight_decay=0.0)
    run = TrainingRun("toy_unet", unet, opt, args, extra_card=dict(
        preset="toy", unet_config={k: v for k, v in config.items()},
        diffusion=diffusion_config(), loss="guided_diffusion training_losses (hybrid: mse + vb)",
        data="blendlab.toyworld random_layout scenes, one fresh batch per step"
             + (f"; {args.signs:.0%} of them carry a sign (random_signed_layout, font scales "
                f"{', '.join(map(str, sign_scales))})" if args.signs else ""),
        **phase,
    ))
    while run.should_continue():
        for group in opt.param_groups:
            group["lr"] = args.lr * min(1.0, (run.step + 1) / args.warmup)
        x0 = scene_batch(args.seed, run.step, args.batch, config["image_size"], args.signs, sign_scales)
        g = step_generator(args.seed, run.step, salt=2)
        t = torch.randint(0, diffusion.num_timesteps, (x0.shape[0],), generator=g)
        noise = torch.randn(x0.shape, generator=g)
        terms = diffusion.training_losses(unet, x0, t, noise=noise)
        loss = terms["loss"].mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
        opt.step()
        run.after_step({"loss": loss.item(), "mse": terms["mse"].mean().item(), "vb": terms["vb"].mean().item()})
    run.checkpoint()


if __name__ == "__main__":
    main()
