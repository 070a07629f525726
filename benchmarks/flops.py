"""FLOP model of one guided step and one sample for the real configuration, counted on the meta device.

The real networks (guided-diffusion UNet 256x256 uncond, 552.8 M parameters, and a CLIP ViT-B/16)
are built on ``device="meta"``: shapes only, no memory, no weights. ``FlopCounterMode`` records the
FLOPs of every matmul/convolution/attention op (2 FLOPs per multiply-add) that one guided step
dispatches, forward and backward. Element-wise ops (GroupNorm, SiLU, the diffusion arithmetic,
the augmentations' warps) are not counted: they are memory-bound and add well under 1 %.

Two ways of running a step, batch 1, 8 CLIP views (the paper's ``aug_num``):

* **blendlab**: one UNet forward with grad w.r.t. x_t only; the CLIP loss on 8 views; backward
  to x_t through CLIP and the UNet.
* **reference**: a UNet forward under ``no_grad`` (``p_sample``), then ``cond_fn`` runs the UNet
  again with grad, with the attention parameters (``qkv``/``norm``/``proj``) set to
  ``requires_grad``; same CLIP loss; backward to x_t. Reported twice: as the reference executes it
  (``torch.autograd.grad(loss, x)``: autograd skips weight-gradient kernels no requested input
  needs) and with those weight gradients computed as well (an upper bound).

Per sample = per step × 75 (``timestep_respacing=100``, ``skip_timesteps=25``). Roofline time =
FLOPs / peak dense fp16 tensor throughput of a named GPU: a lower bound, not a prediction.

Run ``python benchmarks/flops.py [--out flops.json]``; takes a few seconds on a CPU.

May import: blendlab, benchmarks.reference_loop.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.reference_loop import reference_trainable  # noqa: E402
from blendlab.sampler import EditConfig  # noqa: E402

__all__ = [
    "GPUS",
    "REAL_CLIP",
    "real_models",
    "step_flops",
    "flop_model",
    "roofline",
    "pruning_flops",
    "mode_flops",
    "fast_modes",
    "main",
]

#: Peak dense fp16 tensor-core throughput, TFLOP/s (no sparsity).
GPUS = {"T4": 65.0, "A100": 312.0, "H100": 790.0}

#: ``clip.model.CLIP`` arguments of OpenAI's ViT-B/16.
REAL_CLIP = dict(embed_dim=512, image_resolution=224, vision_layers=12, vision_width=768,
                 vision_patch_size=16, context_length=77, vocab_size=49408, transformer_width=512,
                 transformer_heads=8, transformer_layers=12)

ISSUE_TFLOP = {"blendlab": 380.0, "reference": 548.0}


def real_models(device: str = "meta", preset: str = "256-uncond"):
    """A :class:`blendlab.models.Models` of the real architecture with random (or no) weights."""
    from clip.model import CLIP

    from blendlab.models import Models, build_unet, diffusion_config, unet_config

    config = unet_config(preset)
    unet = build_unet(config, device=device).eval().requires_grad_(False)
    with torch.device(device):
        clip_net = CLIP(**REAL_CLIP)
    clip_net = clip_net.float().eval().requires_grad_(False)
    return Models(unet=unet, clip=clip_net, image_size=int(config["image_size"]), preset=preset,
                  device=torch.device(device), unet_config=config, diffusion_config=diffusion_config(),
                  clip_name="ViT-B/16")


def _count(fn):
    with FlopCounterMode(display=False) as counter:
        result = fn()
    return counter.get_total_flops(), result


def step_flops(models, way: str, batch: int = 1, views: int = 8, weight_grads: bool = False,
               timestep_respacing: str = "100", index: int = 50) -> dict:
    """FLOPs of one guided step, split by phase.

    Args:
        models: a bundle from :func:`real_models` (meta works; so does any real bundle).
        way: "blendlab" or "reference".
        weight_grads: reference only: also compute the gradients of the parameters the reference
            marks ``requires_grad`` (what autograd would do for ``loss.backward()``).

    Returns phase -> FLOPs: unet_fwd_nograd, unet_fwd_grad, clip_fwd, clip_bwd, unet_bwd, and total.
    """
    from blendlab.guidance import GuidanceLoss
    from blendlab.sampler import EditConfig, create_diffusion

    if way not in ("blendlab", "reference"):
        raise ValueError(f"way must be 'blendlab' or 'reference', got {way!r}")
    if weight_grads and way != "reference":
        raise ValueError("weight_grads applies to the reference way only")
    device, size = models.device, models.image_size
    cfg = EditConfig(prompt="x", aug_num=views, batch_size=batch, timestep_respacing=timestep_respacing)
    diffusion = create_diffusion(models, timestep_respacing)
    x = torch.randn(batch, 3, size, size, device=device)
    init = torch.randn(1, 3, size, size, device=device)
    mask = torch.ones(1, 1, size, size, device=device)
    text = torch.randn(1, int(models.clip.text_projection.shape[1]), device=device)
    loss_fn = GuidanceLoss(models, cfg, init, mask, text)
    t = torch.full((batch,), index, device=device, dtype=torch.long)
    fac = float(diffusion.sqrt_one_minus_alphas_cumprod[index])
    phases = dict(unet_fwd_nograd=0, unet_fwd_grad=0, clip_fwd=0, clip_bwd=0, unet_bwd=0)

    def guided_part(params):
        x_in = x.detach().requires_grad_()
        with torch.enable_grad():
            phases["unet_fwd_grad"], out = _count(
                lambda: diffusion.p_mean_variance(models.unet, x_in, t, clip_denoised=False))
            pred = out["pred_xstart"]
            # split the backward at x̂0: first through the loss (CLIP), then through the UNet
            pred_leaf = pred.detach().requires_grad_()
            x_leaf = x_in.detach().requires_grad_()
            phases["clip_fwd"], (total, _) = _count(lambda: loss_fn(x_leaf, pred_leaf, fac, seed=0))
            phases["clip_bwd"], (g_x, g_pred) = _count(
                lambda: torch.autograd.grad(total, [x_leaf, pred_leaf]))
            phases["unet_bwd"], _ = _count(
                lambda: torch.autograd.grad(pred, [x_in, *params], grad_outputs=g_pred))

    if way == "blendlab":
        guided_part([])
    else:
        with torch.no_grad():
            phases["unet_fwd_nograd"], _ = _count(
                lambda: diffusion.p_mean_variance(models.unet, x, t, clip_denoised=False))
        with reference_trainable(models.unet):
            params = [p for p in models.unet.parameters() if p.requires_grad] if weight_grads else []
            guided_part(params)
    phases = {k: int(v) for k, v in phases.items()}
    phases["total"] = sum(phases.values())
    phases["unet_forwards"] = 2 if way == "reference" else 1
    return phases


def roofline(flops_per_sample: float, gpus: dict = GPUS, set_size: int = 64) -> dict:
    """Seconds per sample and per ``set_size`` samples at each GPU's peak: FLOPs / peak."""
    return {name: {"s_per_sample": flops_per_sample / (peak * 1e12),
                   f"s_per_{set_size}": set_size * flops_per_sample / (peak * 1e12),
                   "peak_tflops": peak}
            for name, peak in gpus.items()}


def pruning_flops(step_total: float, clip_image_fwd: float, steps: int = 75, candidates: int = 64,
                  keep: int = 8, prune_at: float = 0.3) -> dict:
    """FLOPs of ``candidates`` samples pruned to ``keep`` after ``round(prune_at·steps)`` steps
    (plus one unaugmented CLIP forward per candidate to rank them) vs ``candidates`` full samples.
    ``step_total`` is one guided step of one sample, ``clip_image_fwd`` one CLIP image forward."""
    before = min(steps, max(1, round(prune_at * steps)))
    pruned = candidates * before * step_total + keep * (steps - before) * step_total
    pruned += candidates * clip_image_fwd
    full = candidates * steps * step_total
    return dict(candidates=candidates, keep=keep, prune_at=prune_at, steps_before_prune=before,
                pruned_flops=pruned, full_flops=full, ratio=pruned / full)


def flop_model(steps: int = 75, views: int = 8, models=None) -> dict:
    """The FLOP model of the real config: per step by phase, per sample, the issue's figures."""
    models = models if models is not None else real_models()
    ways = {
        "blendlab": step_flops(models, "blendlab", views=views),
        "reference": step_flops(models, "reference", views=views),
        "reference_with_weight_grads": step_flops(models, "reference", views=views, weight_grads=True),
    }
    clip_one, _ = _count(lambda: models.clip.encode_image(
        torch.randn(1, 3, models.clip_size, models.clip_size, device=models.device)))
    result = {
        "config": dict(unet="256-uncond", unet_params=sum(p.numel() for p in models.unet.parameters()),
                       clip="ViT-B/16", clip_params=sum(p.numel() for p in models.clip.parameters()),
                       batch=1, views=views, steps=steps, timestep_respacing="100", skip_timesteps=25),
        "per_step": ways,
        "per_sample": {k: v["total"] * steps for k, v in ways.items()},
        "clip_image_fwd": int(clip_one),
    }
    result["ratio_reference_over_blendlab"] = result["per_sample"]["reference"] / result["per_sample"]["blendlab"]
    result["issue_tflop"] = dict(ISSUE_TFLOP)
    result["roofline"] = {k: roofline(v) for k, v in result["per_sample"].items()}
    prune = pruning_flops(ways["blendlab"]["total"], clip_one, steps=steps)
    prune["roofline_pruned"] = roofline(prune["pruned_flops"] / prune["candidates"])
    result["pruning_64_keep_8"] = prune
    return result


def _tf(v: float) -> str:
    return f"{v / 1e12:8.3f}"


def format_report(model: dict) -> str:
    """The FLOP model as a text table."""
    lines = []
    c = model["config"]
    lines.append(f"FLOP model: UNet {c['unet']} ({c['unet_params'] / 1e6:.1f} M params) + CLIP {c['clip']} "
                 f"({c['clip_params'] / 1e6:.1f} M), batch {c['batch']}, {c['views']} views, "
                 f"{c['steps']} steps (respacing {c['timestep_respacing']}, skip {c['skip_timesteps']})")
    phases = ["unet_fwd_nograd", "unet_fwd_grad", "clip_fwd", "clip_bwd", "unet_bwd", "total"]
    lines.append(f"{'TFLOP per step':30s}" + "".join(f"{p:>16s}" for p in phases))
    for way, ph in model["per_step"].items():
        lines.append(f"{way:30s}" + "".join(f"{_tf(ph[p]):>16s}" for p in phases))
    lines.append("")
    lines.append(f"{'per sample (TFLOP)':30s}{'counted':>10s}{'issue':>10s}")
    for way, total in model["per_sample"].items():
        issue = model["issue_tflop"].get(way)
        lines.append(f"{way:30s}{total / 1e12:10.1f}{(f'{issue:.0f}' if issue else '-'):>10s}")
    lines.append(f"reference / blendlab = {model['ratio_reference_over_blendlab']:.3f}")
    lines.append("")
    lines.append("roofline (FLOPs / peak dense fp16; a lower bound on time)")
    gpus = list(next(iter(model["roofline"].values())))
    lines.append(f"{'':30s}" + "".join(f"{g + ' s/sample':>16s}{g + ' min/64':>14s}" for g in gpus))
    rows = dict(model["roofline"])
    rows["blendlab 64->8 @0.3 (per cand.)"] = model["pruning_64_keep_8"]["roofline_pruned"]
    for way, per_gpu in rows.items():
        lines.append(f"{way:30s}" + "".join(
            f"{per_gpu[g]['s_per_sample']:16.2f}{per_gpu[g]['s_per_64'] / 60:14.2f}" for g in gpus))
    p = model["pruning_64_keep_8"]
    lines.append(f"progressive pruning, {p['candidates']} candidates -> keep {p['keep']} after "
                 f"{p['steps_before_prune']} of {c['steps']} steps: {p['pruned_flops'] / 1e12:.0f} vs "
                 f"{p['full_flops'] / 1e12:.0f} TFLOP for {p['candidates']} full samples "
                 f"(x{p['ratio']:.3f})")
    return "\n".join(lines)


def explain(model: dict) -> str:
    """Why the counted figures match (or differ from) the issue's ~380 vs ~548 TFLOP."""
    ps = model["per_step"]
    b, r, rw = ps["blendlab"], ps["reference"], ps["reference_with_weight_grads"]
    n = model["config"]["steps"]
    return (
        f"blendlab: 1 UNet forward ({b['unet_fwd_grad'] / 1e12:.2f}) + CLIP on 8 views "
        f"({b['clip_fwd'] / 1e12:.2f}) + backward to x_t ({(b['clip_bwd'] + b['unet_bwd']) / 1e12:.2f}) "
        f"= {b['total'] / 1e12:.3f} TFLOP/step, x{n} = {b['total'] * n / 1e12:.1f} (issue ~380).\n"
        f"reference: the same plus a no-grad UNet forward ({r['unet_fwd_nograd'] / 1e12:.2f}) = "
        f"{r['total'] * n / 1e12:.1f} (issue ~548). Marking qkv/norm/proj requires_grad adds no "
        f"FLOPs to the reference's torch.autograd.grad(loss, x): autograd runs only the gradient "
        f"kernels a requested input needs. Computing those weight gradients too would add "
        f"{(rw['total'] - r['total']) / 1e12:.3f} TFLOP/step ({(rw['total'] - r['total']) * n / 1e12:.1f} "
        f"per sample). The flag costs autograd bookkeeping only: convolutions and GroupNorm save their "
        f"input and weight for the x-gradient anyway, so no extra tensors are kept (bench_speed.py "
        f"measures the same peak memory for both loops). Uncounted element-wise work (GroupNorm, SiLU, "
        f"warps) is memory-bound, so real time sits above the roofline."
    )


def mode_flops(cfg, phases: dict, clip_image_fwd: float, reference: bool = False) -> dict:
    """FLOPs per sample (per candidate) of running ``cfg`` (an EditConfig: the paper's or a fast mode).

    Built from the counted phases of one step: ``phases`` maps a number of CLIP views to
    :func:`step_flops` of the blendlab way at that many views. Step by step (``cfg.num_steps``,
    ``cfg.guidance_at``, ``cfg.views_at``): a guided step costs a UNet forward, CLIP forward and
    backward on its views, and, unless ``guidance_gradient="mpgd"``, the UNet backward; any other step
    one UNet forward. ``reference`` adds the reference's second (no-grad) forward per step. With
    pruning the batch runs ``batch_size`` rows up to the prune step and ``keep`` after it, plus one
    unaugmented CLIP forward per candidate to rank them; the total is divided by the candidates.
    """
    total = 0.0
    batch = cfg.batch_size
    for k in range(cfg.num_steps):
        rows = batch if cfg.prune_index is None or k <= cfg.prune_index else cfg.keep
        ph = phases[cfg.views_at(k)]
        step = ph["unet_fwd_grad"]
        if cfg.guidance_at(k) == "compute":
            step += ph["clip_fwd"] + ph["clip_bwd"] + (ph["unet_bwd"] if cfg.guidance_gradient == "unet" else 0)
        if reference:
            step += ph["unet_fwd_grad"]
        total += rows * step
    if cfg.prune_index is not None:
        total += batch * clip_image_fwd
    return dict(steps=cfg.num_steps, flops_per_sample=total / batch, tflop_per_sample=total / batch / 1e12)


def fast_modes(configs: dict, models=None, reference: str | None = "reference") -> dict:
    """TFLOP per sample and roofline of each ``{name: EditConfig}`` at the real networks (meta device);
    the config called ``reference`` is costed as the reference loop (two UNet forwards per step)."""
    models = models if models is not None else real_models()
    views = sorted({cfg.views_at(k) for cfg in configs.values() for k in range(cfg.num_steps)})
    phases = {v: step_flops(models, "blendlab", views=v) for v in views}
    clip_one, _ = _count(lambda: models.clip.encode_image(
        torch.randn(1, 3, models.clip_size, models.clip_size, device=models.device)))
    out = {}
    for name, cfg in configs.items():
        m = mode_flops(cfg, phases, clip_one, reference=name == reference)
        m["roofline"] = roofline(m["flops_per_sample"])
        out[name] = m
    return out


def format_fast_modes(table: dict) -> str:
    """The fast modes' FLOPs and roofline seconds per sample as a text table."""
    gpus = list(GPUS)
    lines = [f"{'fast mode (real config)':34s}{'steps':>6s}{'TFLOP/sample':>14s}"
             + "".join(f"{g + ' s/sample':>14s}" for g in gpus)]
    for name, m in table.items():
        lines.append(f"{name:34s}{m['steps']:6d}{m['tflop_per_sample']:14.1f}"
                     + "".join(f"{m['roofline'][g]['s_per_sample']:14.2f}" for g in gpus))
    return "\n".join(lines)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=None, help="write the FLOP model as JSON here")
    parser.add_argument("--steps", type=int, default=75, help="reverse steps per sample (default 75)")
    parser.add_argument("--views", type=int, default=8, help="CLIP views per step (aug_num, default 8)")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    model = flop_model(steps=args.steps, views=args.views)
    model["explanation"] = explain(model)
    from blendlab.speed import MODES  # the fast modes at the paper's config, batch of 4 candidates

    base = EditConfig(prompt="x", batch_size=4, iterations_num=1, aug_num=args.views)
    model["fast_modes"] = fast_modes({"reference": base, **{m.key: m.config(base) for m in MODES}})
    model["seconds_to_count"] = time.perf_counter() - t0
    print(format_report(model))
    print()
    print(model["explanation"])
    print()
    print(format_fast_modes(model["fast_modes"]))
    if args.out:
        Path(args.out).write_text(json.dumps(model, indent=2))
        print(f"\nwrote {args.out}")
    return model


if __name__ == "__main__":
    main()
