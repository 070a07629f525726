"""Train the toy world's UNet: ``python -m blendlab.toyworld.train_unet --minutes 60``.

The model is guided_diffusion's ``UNetModel`` with the ``"toy"`` preset's configuration and the
diffusion every blendlab preset uses (1000 linear steps, learned sigmas); the loss is
guided_diffusion's own ``training_losses`` (MSE on ε plus the variational bound for Σ), timesteps
drawn uniformly. Data: :func:`blendlab.toyworld.world.random_layout` scenes, a fresh seeded batch at
every step. The shipped file holds the EMA weights. Resumable (see :mod:`.training`).

May import: presets, toyworld.training, toyworld.world, toyworld.sign_views.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from .training import TrainingRun, add_common_args, load_init, step_generator
from .sign_views import NOTICE_SIZE, paint_card
from .world import DEFAULT_SIZE, SIGN_WORDS, random_layout, random_signed_layout, render_scene, write_word

DEFAULT_OUT = "blendlab/toyworld/weights"

#: Words a *notice* may carry: the sign words short enough for one scale-2 line on a notice card,
#: and neutral three-letter words, so that an unguided UNet that learned notices writes any one
#: word (the prompt's, say) on only a small share of its cards.
NOTICE_WORDS: tuple[str, ...] = tuple(w for w in SIGN_WORDS if len(w) <= 3) + (
    "CAT", "DOG", "SKY", "MAP", "PEN", "CUP", "HAT", "KEY", "FOX", "JAM", "OWL", "BUS", "ANT", "EGG")


def notice_scene(rng: np.random.Generator, size: int = DEFAULT_SIZE, words=NOTICE_WORDS,
                 blank: float = 0.5) -> torch.Tensor:
    """A scene with a *notice*: a light card at a random pixel-aligned place, a black scale-2 word of
    ``words`` on it (blank in ``blank`` of the scenes), objects around it. (1, 3, S, S) in [-1, 1]."""
    w, h = NOTICE_SIZE
    if size < w + 2:
        raise ValueError(f"a notice card is {w}x{h} px and needs a canvas of at least {w + 2} px, not {size}")
    x0, y0 = int(rng.integers(1, size - w)), int(rng.integers(1, size - h))
    box = (x0 / size, y0 / size, (x0 + w) / size, (y0 + h) / size)
    objects, background = random_layout(rng, keep_free=box)
    image = paint_card(render_scene(objects, size, background)[0], (x0, y0, x0 + w, y0 + h))[None]
    if rng.random() < blank:
        return image
    return write_word(image, str(rng.choice(list(words))), box=box, colour="black", scale=2)


def scene_batch(seed: int, step: int, batch: int, size: int = DEFAULT_SIZE, signs: float = 0.0,
                sign_scales: tuple[int, ...] = (1, 2), notices: float = 0.0,
                notice_blank: float = 0.5) -> torch.Tensor:
    """The training batch of one step: ``batch`` random scenes, (B, 3, S, S) in [-1, 1]; ``signs`` of
    them carry a sign (:func:`~blendlab.toyworld.world.random_signed_layout`, its letters at one of
    ``sign_scales``), and ``notices`` of them a notice card (:func:`notice_scene`, blank in
    ``notice_blank`` of them). With ``signs`` and ``notices`` 0 the random stream is the one of before
    signs existed, draw for draw."""
    rng = np.random.default_rng([seed, step, 1])
    images = []
    for _ in range(batch):
        if notices and rng.random() < notices:
            images.append(notice_scene(rng, size, blank=notice_blank))
            continue
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
    p.add_argument("--notices", type=float, default=0.0,
                   help="share of training scenes with a notice card (a black scale-2 word or blank)")
    p.add_argument("--notice-blank", type=float, default=0.5, help="share of notice cards left blank")
    p.add_argument("--half", action="store_true",
                   help="write the EMA weights as float16 (half the file; they load into the float32 UNet)")
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
    export = (lambda m: {k: v.half() for k, v in m.state_dict().items()}) if args.half else None
    run = TrainingRun("toy_unet", unet, opt, args, export=export, extra_card=dict(
        weights_dtype="float16" if args.half else "float32",
        preset="toy", unet_config={k: v for k, v in config.items()},
        diffusion=diffusion_config(), loss="guided_diffusion training_losses (hybrid: mse + vb)",
        data="blendlab.toyworld random_layout scenes, one fresh batch per step"
             + (f"; {args.signs:.0%} of them carry a sign (random_signed_layout, font scales "
                f"{', '.join(map(str, sign_scales))})" if args.signs else "")
             + (f"; {args.notices:.0%} a notice card (notice_scene: {NOTICE_SIZE[0]}x{NOTICE_SIZE[1]} px, "
                f"{args.notice_blank:.0%} blank, else a black scale-2 word of NOTICE_WORDS)" if args.notices else ""),
        **phase,
    ))
    while run.should_continue():
        for group in opt.param_groups:
            group["lr"] = args.lr * min(1.0, (run.step + 1) / args.warmup)
        x0 = scene_batch(args.seed, run.step, args.batch, config["image_size"], args.signs, sign_scales,
                         args.notices, args.notice_blank)
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
