"""Train the toy latent world's VAE: ``python -m blendlab.latent.train_vae --minutes 15``.

Phase 1 of the toy latent world (:mod:`.toy`). The model is diffusers' ``AutoencoderKL`` with
:func:`~blendlab.latent.toy.vae_config` (32 px RGB -> 4 × 8 × 8 latents); the loss is the L1 plus the
MSE of the reconstruction D(z), z sampled from the posterior, plus ``--kl`` times the posterior's KL
to N(0, I) (mean over the batch of its sum over the latent). Data: toy-world scenes
(:func:`~blendlab.latent.toy.captioned_batch`, captions unused), a fresh seeded batch at every step;
a cosine learning-rate decay after a warm-up. Resumable (:mod:`blendlab.toyworld.training`); the run's
files go to ``--out``.

``--ship`` (after training, or alone on a finished run) measures the EMA weights on held-out seeded
scenes — reconstruction PSNR, and the latents' standard deviation, whose inverse becomes the
``scaling_factor`` stored in the VAE's config as Stable Diffusion's is — and writes the VAE into the
shipped folder (``vae/``) with its card ``toy_latent_vae.json``.

May import: metrics, images, toyworld, latent.toy.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import torch

from ..images import atomic_write
from ..metrics import psnr
from ..toyworld.training import TrainingRun, add_common_args, step_generator
from ..toyworld.world import random_scene
from .toy import TOY_LATENT, TOY_LATENT_COMMANDS, captioned_batch, vae_config

DEFAULT_OUT = "runs/toy_latent"
#: Held-out scenes: seeds far from the training stream's (which draws from (seed, step) pairs).
HELD_OUT = range(900_000, 900_256)


def build_vae():
    from diffusers import AutoencoderKL

    return AutoencoderKL(**vae_config())


def held_out_scenes() -> torch.Tensor:
    """(256, 3, 32, 32) seeded toy scenes no training step draws."""
    return torch.cat([random_scene(s)[0] for s in HELD_OUT])


@torch.no_grad()
def measure(vae) -> dict:
    """Reconstruction PSNR (posterior mean, decoded, clamped) on the held-out scenes, and the
    latents' statistics; ``scaling_factor`` = 1 / std of the posterior means."""
    vae = vae.eval()
    x = held_out_scenes()
    means, recon = [], []
    for chunk in x.split(64):
        z = vae.encode(chunk).latent_dist.mean
        means.append(z)
        recon.append(vae.decode(z).sample.clamp(-1, 1))
    z, r = torch.cat(means), torch.cat(recon)
    values = psnr(r, x)
    return dict(held_out=f"random_scene(seed) for seed in range({HELD_OUT.start}, {HELD_OUT.stop})",
                psnr_db_mean=round(float(values.mean()), 2), psnr_db_min=round(float(values.min()), 2),
                latent_mean=round(float(z.mean()), 4), latent_std=round(float(z.std()), 4),
                scaling_factor=round(1 / float(z.std()), 5))


def ship(run_dir: Path, folder: Path = TOY_LATENT) -> dict:
    """Measure the run's EMA weights and write them into ``folder``/vae with the card."""
    card = json.loads((run_dir / "toy_latent_vae.json").read_text())
    vae = build_vae()
    vae.load_state_dict(torch.load(run_dir / "toy_latent_vae.pt", map_location="cpu", weights_only=True))
    measured = measure(vae)
    vae.register_to_config(scaling_factor=measured["scaling_factor"])
    vae.save_pretrained(folder / "vae")
    card.update(measured=measured, shipped=dict(folder="vae", bytes=sum(
        p.stat().st_size for p in (folder / "vae").iterdir())))
    text = json.dumps(card, indent=1) + "\n"
    atomic_write(folder / "toy_latent_vae.json", lambda tmp: Path(tmp).write_text(text))
    print(f"[toy_latent_vae] shipped to {folder / 'vae'}: PSNR {measured['psnr_db_mean']} dB, "
          f"scaling_factor {measured['scaling_factor']}", flush=True)
    return card


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_args(p, DEFAULT_OUT, steps=4000, batch=16, lr=1e-3)
    p.add_argument("--warmup", type=int, default=100, help="linear learning-rate warm-up steps")
    p.add_argument("--kl", type=float, default=1e-6, help="weight of the posterior's KL term")
    p.add_argument("--ship", action="store_true", help="measure the run's weights and ship them (no training "
                                                       "beyond --steps)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    vae = build_vae().train()
    opt = torch.optim.AdamW(vae.parameters(), lr=args.lr, weight_decay=0.0)
    run = TrainingRun("toy_latent_vae", vae, opt, args, made_by=TOY_LATENT_COMMANDS["vae"], ema_decay=0.995,
                      extra_card=dict(phase="toy latent world 1/2: the VAE", vae_config=vae_config(),
                                      loss=f"L1 + MSE of D(z), z ~ posterior; + {args.kl:g} × KL (sum over the "
                                           "latent, mean over the batch)",
                                      data="blendlab.toyworld random_layout scenes, one fresh batch per step"))
    while run.should_continue():
        warm = min(1.0, (run.step + 1) / args.warmup)
        cosine = 0.5 * (1 + math.cos(math.pi * min(1.0, run.step / args.steps)))
        for group in opt.param_groups:
            group["lr"] = args.lr * warm * (0.05 + 0.95 * cosine)
        x, _ = captioned_batch(args.seed, run.step, args.batch)
        g = step_generator(args.seed, run.step, salt=2)
        post = vae.encode(x).latent_dist
        z = post.mean + post.std * torch.randn(post.mean.shape, generator=g)
        recon = vae.decode(z).sample
        l1, mse, kl = (recon - x).abs().mean(), (recon - x).pow(2).mean(), post.kl().mean()
        loss = l1 + mse + args.kl * kl
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        opt.step()
        run.after_step({"loss": loss.item(), "l1": l1.item(), "mse": mse.item(), "kl": kl.item()})
    run.checkpoint()
    if args.ship:
        ship(Path(args.out))


if __name__ == "__main__":
    main()
