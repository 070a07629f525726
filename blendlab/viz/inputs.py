"""What the algorithm makes of its input: the noise schedule and the steps a respacing keeps
(:func:`noise_schedule`, :func:`kept_timesteps`), the input noised to every kept step — the
backgrounds the blend uses (:func:`noised_inputs`) — and the augmented views CLIP sees
(:func:`augmentation_views`).

May import: errors, models, guidance, vocabulary, viz.base.
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import InputError
from ..guidance import ExtendingAugmentations
from ..models import create_diffusion
from ..vocabulary import step_label
from .base import Figure, image_grid, mask_2d, new_figure, show_image

__all__ = ["kept_timesteps", "noise_schedule", "noised_inputs", "augmentation_views"]


def _schedule_source(models, cfg, timestep_respacing, skip_timesteps):
    """(models, respacing, skip) from models/BlendedSampler + cfg or explicit values."""
    if hasattr(models, "diffusion") and hasattr(models, "models"):  # a BlendedSampler
        cfg = cfg or models.cfg
        models = models.models
    if not hasattr(models, "diffusion_config"):
        raise InputError(f"pass the models from bl.load_models (or a BlendedSampler), not {type(models).__name__}")
    respacing = timestep_respacing if timestep_respacing is not None else (cfg.timestep_respacing if cfg else "100")
    skip = skip_timesteps if skip_timesteps is not None else (cfg.skip_timesteps if cfg else 0)
    return models, str(respacing), int(skip)


def kept_timesteps(diffusion, skip_timesteps: int = 0) -> list[int]:
    """The original (0..T−1) timesteps the reverse process visits, high to low, for a respaced
    guided_diffusion ``diffusion`` when the first ``skip_timesteps`` respaced steps are skipped."""
    n = diffusion.num_timesteps
    if not 0 <= skip_timesteps < n:
        raise InputError(f"skip_timesteps={skip_timesteps} must be in [0, {n}) for {n} respaced steps")
    tmap = list(getattr(diffusion, "timestep_map", range(n)))
    return [int(tmap[i]) for i in range(n - skip_timesteps)][::-1]


def noise_schedule(models, cfg=None, *, timestep_respacing: str | None = None,
                   skip_timesteps: int | None = None) -> Figure:
    """ᾱ_t and SNR(t) = ᾱ_t / (1 − ᾱ_t) over the model's timesteps (log scale), with the kept steps
    of a respacing and skip marked (filled dots), the skipped ones hollow, the skipped range shaded.

    Args:
        models: from :func:`blendlab.load_models` (or a :class:`blendlab.BlendedSampler`).
        cfg: an :class:`EditConfig` supplying ``timestep_respacing`` and ``skip_timesteps``;
            the keyword arguments override it (default respacing "100", no skip).

    The curves are guided_diffusion's own ``alphas_cumprod`` (full schedule and respaced). The marker
    lines carry ``gid="kept"`` and ``gid="skipped"``; their x data are the original timesteps.
    """
    models, respacing, skip = _schedule_source(models, cfg, timestep_respacing, skip_timesteps)
    full = create_diffusion(models, "")
    spaced = create_diffusion(models, respacing)
    kept = kept_timesteps(spaced, skip)
    tmap = np.asarray(spaced.timestep_map)
    skipped = [int(t) for t in tmap[spaced.num_timesteps - skip:]] if skip else []
    t_all = np.arange(full.num_timesteps)
    abar = np.asarray(full.alphas_cumprod)
    snr = abar / (1 - abar)
    fig = Figure(figsize=(10.0, 3.4), layout="constrained")
    for k, (name, curve) in enumerate(((r"$\bar\alpha_t$", abar), (r"SNR$(t)=\bar\alpha_t/(1-\bar\alpha_t)$", snr))):
        ax = fig.add_subplot(1, 2, k + 1)
        ax.plot(t_all, curve, color="0.3", linewidth=1.2, label="full schedule")
        ax.plot(kept, curve[kept], "o", color="tab:blue", markersize=3.5, gid="kept",
                label=f"kept steps ({len(kept)})")
        if skipped:
            ax.plot(skipped, curve[skipped], "o", markerfacecolor="none", color="tab:orange", markersize=3.5,
                    gid="skipped", label=f"skipped ({len(skipped)}): start from $q(x_t|x_0)$")
            ax.axvspan(kept[0], t_all[-1], color="tab:orange", alpha=0.08)
            ax.axvline(kept[0], color="tab:orange", linewidth=0.8)
        ax.set_yscale("log")
        ax.set_xlabel("timestep t")
        ax.set_title(name, fontsize=10)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=9, loc="lower left")
    fig.suptitle(f"timestep_respacing={respacing!r}, skip_timesteps={skip}: first kept t = {kept[0]}", fontsize=10)
    return fig


def noised_inputs(models, image, cfg=None, *, timestep_respacing: str | None = None,
                  skip_timesteps: int | None = None, seed: int = 0, ncols: int | None = None,
                  max_panels: int | None = None, panel: float = 1.4) -> Figure:
    """The input noised to every kept step, ``q_sample(x0, t) = √ᾱ_t x0 + √(1−ᾱ_t) ε``, one shared ε
    (seeded), from the first kept step down to the last (``max_panels`` thins them evenly), each
    titled ``"step 3/10 · t=473"`` and ᾱ_t, wrapped into rows that fit a notebook column.

    Arguments as :func:`noise_schedule`; ``image`` is (1, 3, H, W) in [-1, 1].
    """
    models, respacing, skip = _schedule_source(models, cfg, timestep_respacing, skip_timesteps)
    if not isinstance(image, torch.Tensor) or image.dim() != 4 or image.shape[:2] != (1, 3):
        raise InputError("image must be one (1, 3, H, W) tensor in [-1, 1]; use blendlab.load_image")
    spaced = create_diffusion(models, respacing)
    idx = list(range(spaced.num_timesteps - skip))[::-1]  # respaced indices, as the sampler visits them
    if max_panels is not None and len(idx) > max_panels:
        idx = [idx[i] for i in np.unique(np.round(np.linspace(0, len(idx) - 1, max_panels)).astype(int))]
    x0 = image.detach().float().cpu()
    noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(seed))
    t = torch.tensor(idx, dtype=torch.long)
    with torch.no_grad():
        noised = spaced.q_sample(x0.expand(len(idx), -1, -1, -1), t, noise=noise.expand(len(idx), -1, -1, -1))
    tmap = spaced.timestep_map
    steps = spaced.num_timesteps - skip  # step k visits respaced index steps - 1 - k
    titles = [step_label(steps - 1 - i, steps, tmap[i]) + "\n" + r"$\bar\alpha_t$" + f"={spaced.alphas_cumprod[i]:.3f}"
              for i in idx]
    fig, axes = new_figure(len(idx), ncols, panel, extra_h=0.5)
    for ax, im, title in zip(axes, noised, titles):
        show_image(ax, im, title)
    fig.suptitle(r"$q(x_t|x_0)$ at every kept step: the backgrounds the blend uses", fontsize=10)
    return fig


def _what_was_applied(augment, n: int) -> list[str]:
    """For each of the ``n`` augmented views of the last call: which warps kornia applied (each is drawn
    with probability p), read from its record of the call (``_params["batch_prob"]``)."""
    names = ("affine", "perspective")
    applied = []
    for module in augment.augmentations:
        prob = getattr(module, "_params", {}).get("batch_prob")
        if prob is None or len(prob) != n:  # no record of the call: say what may have happened
            return [f"warped with p={module.p:g} each" for _ in range(n)]
        applied.append([bool(v > 0.5) for v in prob])
    out = []
    for k in range(n):
        used = [name for name, flags in zip(names, applied) if flags[k]]
        out.append(" + ".join(used) if used else "no warp drawn")
    return out


def augmentation_views(image, mask=None, *, size: int = 224, aug_num: int = 8, seed: int = 0,
                       ncols: int | None = None, panel: float = 1.6) -> Figure:
    """The views CLIP sees of ``image · mask``: :class:`blendlab.guidance.ExtendingAugmentations`
    (view 0 pooled to ``size``, views 1.. randomly warped), the same ones for the same ``seed``. Each
    view is titled by what it is: view 0 "pooled only"; the others by the warps that were drawn for
    them ("affine + perspective", "affine", "perspective", or "no warp drawn": each warp is applied
    with probability 0.7, so a view may get neither)."""
    if not isinstance(image, torch.Tensor) or image.dim() != 4 or image.shape[1] != 3:
        raise InputError("image must be a (1, 3, H, W) tensor in [-1, 1]; use blendlab.load_image")
    x = image.detach().float()[:1]
    if mask is not None:
        mask_2d(mask)  # validates the type
        if tuple(mask.shape[-2:]) != tuple(x.shape[-2:]):
            raise InputError(f"mask is {tuple(mask.shape[-2:])} but the image is {tuple(x.shape[-2:])}")
        x = x * mask.to(x.device, x.dtype)
    augment = ExtendingAugmentations(size, aug_num)
    with torch.no_grad():
        views = augment(x, seed=seed)
    titles = ["view 0:\npooled only"] + [f"view {k}:\n{what}" for k, what in
                                         enumerate(_what_was_applied(augment, len(views) - 1), start=1)]
    fig = image_grid(views, titles, ncols=ncols or min(len(views), 8), panel=panel)
    fig.suptitle(f"what CLIP sees: {len(views)} view(s) at {size}x{size} (aug_num={aug_num}, seed={seed})",
                 fontsize=10)
    return fig
