"""Figures for the lessons: image grids, mask overlays, step strips, noise schedules, loss curves,
and the reference's per-sample source | mask | edited comparison that ``blendlab edit`` saves.

Every function returns a :class:`matplotlib.figure.Figure` built with the object-oriented API
(``pyplot`` is never imported, so this works without a display and never pops up windows). The
figures show themselves as PNG when they are the last expression of a notebook cell.

Inputs follow the library's conventions: images are ``(B, 3, H, W)`` (or ``(3, H, W)``) tensors in
``[-1, 1]``, masks ``(1, 1, H, W)`` in ``{0, 1}`` (1 = edit). What :func:`image_grid` and friends
draw is exactly :func:`to_rgb` of the data passed: ``(x + 1) / 2`` clamped to ``[0, 1]``, as an
``(H, W, 3)`` array. Gradients are drawn as heatmaps of their per-pixel size ``‖g‖₂`` over channels.

The measures the figures show (:func:`seam_strength`, :func:`background_drift`) live in
:mod:`blendlab.metrics` and are re-exported here.
"""

from __future__ import annotations

import io
import math
from typing import Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure as _MplFigure

from .errors import InputError
from .images import grad_magnitude, to_rgb01  # grad_magnitude: re-exported
from .masks import paste_background  # noqa: F401  (re-exported: used by the lessons)
from .metrics import background_drift, border_band, image_gradient, seam_strength  # noqa: F401  (re-exported)
from .trajectory import abs_difference, pair_steps, steps_of

__all__ = [
    "Figure",
    "to_rgb",
    "grad_magnitude",
    "image_grid",
    "mask_overlay",
    "step_strip",
    "compare_strips",
    "step_panels",
    "kept_timesteps",
    "noise_schedule",
    "noised_inputs",
    "loss_curves",
    "ranked_gallery",
    "comparison_figure",
    "save_comparison_figures",
    "augmentation_views",
    "gradient_maps",
    "paste_background",
    "seam_strength",
    "background_drift",
    "seam_comparison",
    "save_step_strip",
]

PANEL = 2.0  # inches per image panel
GRAD_CMAP = "magma"
DIFF_CMAP = "viridis"
MASK_COLOR = (1.0, 0.16, 0.16)
OUTLINE_COLOR = (1.0, 0.9, 0.0)
#: The six views of one reverse step, in the order :func:`step_panels` draws them.
STEP_FIELDS = ("x_t", "pred_x0", "grad", "fg", "bg", "x_prev")
LABELS = {
    "x_t": "$x_t$",
    "pred_x0": r"$\hat{x}_0$",
    "pred_x0_guided": r"$\hat{x}_0$ (guided)",
    "grad": r"$|\nabla|$ guidance",
    "fg": "fg (guided)",
    "bg": "bg = input noised",
    "x_prev": "$x_{t-1}$ (blended)",
}


class Figure(_MplFigure):
    """A matplotlib Figure that shows itself as PNG in Jupyter and Colab without pyplot."""

    def _repr_png_(self) -> bytes:
        buf = io.BytesIO()
        self.savefig(buf, format="png", bbox_inches="tight")
        return buf.getvalue()


# -- conversions --------------------------------------------------------------------------------
def to_rgb(image) -> np.ndarray:
    """One image -> ``(H, W, 3)`` float32 array in [0, 1] (what the figures draw).

    Takes a ``(3, H, W)`` / ``(1, 3, H, W)`` tensor in [-1, 1] (any float dtype, any device), or a
    PIL image.
    """
    from PIL import Image

    if isinstance(image, Image.Image):
        return np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    if not isinstance(image, torch.Tensor):
        raise InputError(f"cannot draw a {type(image).__name__}; pass a (3, H, W) tensor in [-1, 1] or a PIL image")
    if image.dim() not in (3, 4) or image.shape[-3] != 3 or (image.dim() == 4 and image.shape[0] != 1):
        raise InputError(
            f"expected one image (3, H, W) or (1, 3, H, W) in [-1, 1], got shape {tuple(image.shape)}; "
            "index a batch first (images[i])"
        )
    return to_rgb01(image)


def _as_list(images) -> list:
    if isinstance(images, torch.Tensor):
        if images.dim() == 3:
            return [images]
        if images.dim() == 4:
            return list(images)
        raise InputError(f"images must be (B, 3, H, W) or (3, H, W), got shape {tuple(images.shape)}")
    if isinstance(images, (list, tuple)):
        return list(images)
    raise InputError(f"images must be a tensor or a list of images, got {type(images).__name__}")


def _mask2d(mask, hw=None) -> np.ndarray:
    if not isinstance(mask, torch.Tensor) or mask.dim() not in (2, 3, 4):
        shape = tuple(mask.shape) if isinstance(mask, torch.Tensor) else type(mask).__name__
        raise InputError(f"mask must be a (1, 1, H, W) tensor in {{0, 1}}, got {shape}; use blendlab.load_mask")
    m = mask.detach().float().reshape(-1, *mask.shape[-2:])[0]
    if hw is not None and tuple(m.shape) != tuple(hw):
        m = F.interpolate(m[None, None], size=tuple(hw), mode="nearest")[0, 0]
    return m.cpu().numpy()


def _new_figure(n: int, ncols: int | None = None, panel: float = PANEL, extra_h: float = 0.4):
    if n < 1:
        raise InputError("nothing to draw: pass at least one image")
    ncols = min(n, ncols or n)
    nrows = math.ceil(n / ncols)
    fig = Figure(figsize=(panel * ncols, (panel + extra_h) * nrows), layout="constrained")
    axes = [fig.add_subplot(nrows, ncols, i + 1) for i in range(n)]
    return fig, axes


def _show(ax, image, title: str | None = None, fontsize: int = 9):
    ax.imshow(to_rgb(image), interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=fontsize)


def _show_grad(ax, grad, title: str | None = None, fontsize: int = 9):
    mag = grad_magnitude(grad)
    ax.imshow(mag, cmap=GRAD_CMAP, interpolation="nearest", vmin=0, vmax=max(float(mag.max()), 1e-12))
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=fontsize)


def _outline(ax, mask2d: np.ndarray, color=OUTLINE_COLOR, linewidth: float = 1.2):
    if mask2d.min() < 0.5 < mask2d.max():
        ax.contour(mask2d, levels=[0.5], colors=[color], linewidths=linewidth)


# -- grids and overlays -------------------------------------------------------------------------
def image_grid(images, titles: Sequence[str] | None = None, ncols: int | None = None,
               suptitle: str | None = None, panel: float = PANEL) -> Figure:
    """A grid of images, one axes each, with optional titles.

    Args:
        images: ``(B, 3, H, W)`` tensor in [-1, 1], or a list of ``(3, H, W)``/``(1, 3, H, W)``
            tensors and PIL images (sizes may differ).
        titles: one per image.
        ncols: images per row (default: all in one row, at most 8).
    """
    items = _as_list(images)
    if titles is not None and len(titles) != len(items):
        raise InputError(f"got {len(titles)} titles for {len(items)} images; pass one title per image")
    fig, axes = _new_figure(len(items), ncols or min(len(items), 8), panel)
    for k, (ax, im) in enumerate(zip(axes, items)):
        _show(ax, im, titles[k] if titles else None)
    if suptitle:
        fig.suptitle(suptitle)
    return fig


def mask_overlay(image, mask, color=MASK_COLOR, alpha: float = 0.4, title: str | None = "edit region (mask = 1)",
                 outline=OUTLINE_COLOR, panel: float = 3.0) -> Figure:
    """The image with the edit region tinted (``(1 − α)·rgb + α·color`` where mask = 1) and outlined."""
    rgb = to_rgb(image)
    m = _mask2d(mask)
    if m.shape != rgb.shape[:2]:
        raise InputError(f"mask is {m.shape} but the image is {rgb.shape[:2]}; load both with the same size=")
    if not 0 <= alpha <= 1:
        raise InputError(f"alpha must be in [0, 1], got {alpha}")
    tint = np.asarray(color, dtype=np.float32).reshape(1, 1, 3)
    a = alpha * m[..., None].astype(np.float32)
    fig = Figure(figsize=(panel, panel + 0.3), layout="constrained")
    ax = fig.add_subplot()
    ax.imshow(rgb * (1 - a) + tint * a, interpolation="nearest")
    if outline is not None:
        _outline(ax, m, outline)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)
    return fig


# -- recorded trajectories ----------------------------------------------------------------------
def _pick(steps: list, max_steps: int | None) -> list:
    """At most ``max_steps`` evenly spaced steps, always the first and the last."""
    if max_steps is None or len(steps) <= max_steps:
        return steps
    if max_steps < 2:
        return steps[-1:]
    idx = np.unique(np.round(np.linspace(0, len(steps) - 1, max_steps)).astype(int))
    return [steps[i] for i in idx]


def _field(step, name: str):
    fields = step.fields if hasattr(step, "fields") else {n: getattr(step, n, None) for n in LABELS}
    value = fields.get(name)
    if value is None:
        recorded = [k for k, v in fields.items() if v is not None]
        raise InputError(f"field {name!r} was not recorded; recorded: {', '.join(recorded)}. "
                         f"Record it with bl.Recorder(fields=(..., {name!r}))")
    return value


def step_strip(recorder, field: str = "pred_x0", sample: int = 0, iteration: int | None = None,
               max_steps: int | None = 10, panel: float = 1.6) -> Figure:
    """One field of a recorded trajectory over the steps: one row per recorder.

    Args:
        recorder: a :class:`blendlab.Recorder` that ran as a hook, or ``{label: Recorder}`` to
            compare trajectories row by row (e.g. guided vs unguided from the same seed).
        field: a recorded field (``"grad"`` is drawn as a heatmap of its size).
        sample: which image of the batch.  iteration: which batch (default: the first recorded).
        max_steps: at most this many evenly spaced steps (the first and the last always).
    """
    rows = dict(recorder) if isinstance(recorder, Mapping) else {None: recorder}
    picked = {label: _pick(steps_of(rec, iteration), max_steps) for label, rec in rows.items()}
    fig, _ = _strip_rows(picked, field, sample, panel)
    fig.suptitle(LABELS.get(field, field) + " over the reverse steps", fontsize=10)
    return fig


def _step_title(step) -> str:
    second = f"t={step.timestep}" if step.timestep is not None else r"$\bar\alpha$" + f"={step.alpha_bar:.3f}"
    return f"step {step.index + 1}/{step.num_steps}\n{second}"


def _strip_rows(rows: Mapping, field: str, sample: int, panel: float, extra_rows: int = 0):
    """One row of panels per ``label -> steps``; returns the figure and the grid's shape."""
    ncols = max(len(s) for s in rows.values())
    nrows = len(rows) + extra_rows
    fig = Figure(figsize=(panel * ncols + 0.6 * bool(extra_rows), (panel + 0.45) * nrows), layout="constrained")
    for r, (label, steps) in enumerate(rows.items()):
        for c, step in enumerate(steps):
            ax = fig.add_subplot(nrows, ncols, r * ncols + c + 1)
            value = _field(step, field)
            if not 0 <= sample < value.shape[0]:
                raise InputError(f"sample {sample} out of range: step {step.index} holds {value.shape[0]} images")
            if field == "grad":
                _show_grad(ax, value[sample], _step_title(step), fontsize=8)
            else:
                _show(ax, value[sample], _step_title(step), fontsize=8)
            if c == 0 and label is not None:
                ax.set_ylabel(str(label), fontsize=9)
    return fig, (nrows, ncols)


def compare_strips(rec_a, rec_b, field: str = "pred_x0", sample: int = 0, labels=("a", "b"),
                   iteration: int | None = None, max_steps: int | None = 8, sync: str = "auto",
                   diff: bool = False, panel: float = 1.6) -> Figure:
    """Two recordings row above row at the same steps: a static figure for slides and papers.

    Columns are evenly spaced steps of ``rec_a`` (at most ``max_steps``; the first and the last
    always); under each, the step of ``rec_b`` paired with it — the same step index, or the nearest
    timestep when the step counts differ (``sync``, see :func:`blendlab.trajectory.pair_steps`).
    Every panel is titled with its own step and t. ``diff=True`` adds a third row: the per-pixel
    ``|a − b|`` (mean over channels) on one colour scale for the whole row, with a colour bar.
    """
    if len(labels) != 2:
        raise InputError(f"labels must be two names, e.g. ('blend', 'no blend'); got {labels!r}")
    pairs, used = pair_steps(_pick(steps_of(rec_a, iteration), max_steps), steps_of(rec_b, iteration), sync)
    rows = {str(labels[0]): [a for a, _ in pairs], str(labels[1]): [b for _, b in pairs]}
    fig, (nrows, ncols) = _strip_rows(rows, field, sample, panel, extra_rows=int(diff))
    if diff:
        maps = [abs_difference(_field(a, field)[sample], _field(b, field)[sample]).numpy() for a, b in pairs]
        vmax = max(max(float(m.max()) for m in maps), 1e-12)
        for c, m in enumerate(maps):
            ax = fig.add_subplot(nrows, ncols, 2 * ncols + c + 1)
            im = ax.imshow(m, cmap=DIFF_CMAP, vmin=0, vmax=vmax, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"max {float(m.max()):.2g}", fontsize=8)
            if c == 0:
                ax.set_ylabel("|a − b|", fontsize=9)
        fig.colorbar(im, ax=fig.axes[-ncols:], shrink=0.9, label="|a − b|")
    what = "same step" if used == "step" else "nearest timestep"
    fig.suptitle(f"{LABELS.get(field, field)}: {labels[0]} (top) vs {labels[1]} ({what})", fontsize=10)
    return fig


def _save_png(fig, path, dpi: int, **savefig_kwargs):
    """Write ``fig`` as a PNG at ``path`` atomically (a temporary file moved into place)."""
    from .images import atomic_write

    return atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=dpi, **savefig_kwargs))


def save_step_strip(recorder, path, field: str = "x_prev", dpi: int = 120, **kwargs):
    """Write :func:`step_strip` of ``recorder`` as a PNG (atomically); returns the path."""
    return _save_png(step_strip(recorder, field=field, **kwargs), path, dpi)


def step_panels(step, sample: int = 0, mask=None, panel: float = 2.0) -> Figure:
    """The six tensors of one reverse step side by side: x_t, x̂0, |grad|, fg, bg, x_{t−1}.

    ``step`` is a :class:`blendlab.StepState` (from ``sampler.steps()``) or a recorded step
    (``recorder.steps[k]``, which must hold those fields). The mask (``step.mask``, or
    ``recorder.mask`` passed as ``mask``) is outlined on x_{t−1}.
    """
    values = [_field(step, name) for name in STEP_FIELDS]
    for v in values:
        if not 0 <= sample < v.shape[0]:
            raise InputError(f"sample {sample} out of range: the step holds {v.shape[0]} images")
    mask = getattr(step, "mask", None) if mask is None else mask
    fig, axes = _new_figure(len(STEP_FIELDS), len(STEP_FIELDS), panel)
    for ax, name, v in zip(axes, STEP_FIELDS, values):
        if name == "grad":
            peak = float(v[sample].float().norm(dim=0).max())
            _show_grad(ax, v[sample], f"{LABELS[name]}\nmax {peak:.2g}" if peak > 0 else f"{LABELS[name]}\n(zero: unguided)")
        else:
            _show(ax, v[sample], LABELS[name])
    if mask is not None:
        _outline(axes[-1], _mask2d(mask, values[-1].shape[-2:]))
    total = getattr(step, "num_steps", 0)
    fig.suptitle(f"step {step.index + 1}/{total} (respaced index {step.t}): " + r"$\bar\alpha_t$"
                 + f" = {step.alpha_bar:.4f}", fontsize=10)
    return fig


def loss_curves(curves, term: str | None = None, log: bool = False, title: str | None = None,
                ylabel: str | None = None, x: str = "step") -> Figure:
    """Loss per step, several recordings on one axis.

    ``curves`` is a Recorder, or ``{label: Recorder, StepDistances or sequence of floats}``. For a
    Recorder every loss term it saw is drawn (only ``term`` when given), one line per term and
    iteration. A :class:`blendlab.trajectory.StepDistances` is drawn as its mean ``|a − b|`` per step;
    a sequence as one value per step (any per-step measure, e.g. :func:`background_drift` of
    recorded x̂0).

    ``x="step"``: the 1-based step number. ``x="t"``: the timestep of the 1000-step schedule (from high
    to low, left to right), which lines up runs with different step counts or ``skip_timesteps``;
    sequences have no timesteps and need ``x="step"``.
    """
    from .trajectory import StepDistances

    if x not in ("step", "t"):
        raise InputError(f'x must be "step" or "t", got {x!r}')

    def where(step):
        if x == "step":
            return step.index + 1
        if step.timestep is None:
            raise InputError('a recording has no timesteps (made before blendlab recorded them); use x="step"')
        return step.timestep

    items = dict(curves) if isinstance(curves, Mapping) else {None: curves}
    fig = Figure(figsize=(6.0, 3.2), layout="constrained")
    ax = fig.add_subplot()
    drawn = 0
    for label, src in items.items():
        if isinstance(src, StepDistances):
            ax.plot([where(a) for a, _ in src.pairs], src.mean, marker="o", markersize=3, label=str(label))
            drawn += 1
        elif hasattr(src, "steps"):
            steps = list(src.steps)
            if not steps:
                raise InputError("a recorder has no steps: run the edit with it as a hook first")
            terms = [term] if term else sorted({k for s in steps for k in s.losses})
            if term and not any(term in s.losses for s in steps):
                seen = sorted({k for s in steps for k in s.losses}) or ["none (unguided run)"]
                raise InputError(f"loss term {term!r} was not recorded; recorded terms: {', '.join(seen)}")
            for it in sorted({s.iteration for s in steps}):
                for name in terms:
                    pts = [(where(s), s.losses[name]) for s in steps if s.iteration == it and name in s.losses]
                    if not pts:
                        continue
                    parts = [p for p in (label, name if len(terms) > 1 or label is None else None,
                                         f"batch {it + 1}" if it else None) if p]
                    ax.plot(*zip(*pts), marker="o", markersize=3, label=" · ".join(map(str, parts)))
                    drawn += 1
        else:
            if x != "step":
                raise InputError(f'{label!r} is a plain sequence without timesteps: use x="step"')
            ys = [float(v) for v in src]
            ax.plot(range(1, len(ys) + 1), ys, marker="o", markersize=3, label=str(label))
            drawn += 1
    if not drawn:
        raise InputError("no losses to draw: the run was unguided (empty prompt) or recorded no steps")
    ax.set_xlabel("step" if x == "step" else "timestep t")
    if x == "t":
        ax.invert_xaxis()  # the reverse process runs from high t to low t
    ax.set_ylabel(ylabel or term or "loss")
    if log:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title or "guidance loss per reverse step", fontsize=10)
    return fig


# -- the noise schedule -------------------------------------------------------------------------
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
    from .sampler import create_diffusion

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
        ax.legend(fontsize=7, loc="lower left")
    fig.suptitle(f"timestep_respacing={respacing!r}, skip_timesteps={skip}: first kept t = {kept[0]}", fontsize=10)
    return fig


def noised_inputs(models, image, cfg=None, *, timestep_respacing: str | None = None,
                  skip_timesteps: int | None = None, seed: int = 0, ncols: int | None = None,
                  max_panels: int | None = None, panel: float = 1.4) -> Figure:
    """The input noised to every kept step, ``q_sample(x0, t) = √ᾱ_t x0 + √(1−ᾱ_t) ε``, one shared ε
    (seeded), from the first kept step down to the last (``max_panels`` thins them evenly).

    Arguments as :func:`noise_schedule`; ``image`` is (1, 3, H, W) in [-1, 1].
    """
    from .sampler import create_diffusion

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
    titles = [f"t={tmap[i]}\n" + r"$\bar\alpha$" + f"={spaced.alphas_cumprod[i]:.3f}" for i in idx]
    fig, axes = _new_figure(len(idx), ncols or min(len(idx), 10), panel, extra_h=0.5)
    for ax, im, title in zip(axes, noised, titles):
        _show(ax, im, title, fontsize=7)
    fig.suptitle(r"$q(x_t|x_0)$ at every kept step: the backgrounds the blend uses", fontsize=10)
    return fig


# -- results ------------------------------------------------------------------------------------
def ranked_gallery(result, n: int | None = None, ncols: int | None = None, panel: float = PANEL) -> Figure:
    """The samples of an :class:`blendlab.EditResult` best first, titled with their CLIP distance.
    Also takes ``result.ranked`` (a list of ``(PIL image, distance)``)."""
    if hasattr(result, "images") and hasattr(result, "order"):
        pairs = [(result.images[i], float(result.distances[i])) for i in result.order]
    elif isinstance(result, (list, tuple)) and all(isinstance(p, (list, tuple)) and len(p) == 2 for p in result):
        pairs = [(im, float(d)) for im, d in result]
    else:
        raise InputError("pass an EditResult (from bl.edit) or its .ranked list of (image, distance)")
    pairs = pairs[:n] if n else pairs
    images = [p[0] for p in pairs]
    titles = [f"#{k + 1}  d = {d:.4f}" for k, (_, d) in enumerate(pairs)]
    fig = image_grid(images, titles, ncols=ncols or min(len(images), 8), panel=panel)
    fig.suptitle("ranked by masked CLIP distance (lower = closer to the prompt)", fontsize=10)
    return fig


def comparison_figure(source, edited, mask=None, prompt: str | None = None, distance=None) -> Figure:
    """One sample next to its input, as the reference saves it for every sample: "Source Image" |
    "Mask" | "Edited Image" in a row, titled ``Prompt: "<prompt>" (<distance>)``.

    Args:
        source, edited: one image each, ``(3, H, W)`` / ``(1, 3, H, W)`` in [-1, 1] or PIL.
        mask: ``(1, 1, H, W)`` in {0, 1} (1 = edit), drawn in grey; None leaves the panel out
            (the reference's figure without ``--mask``).
        prompt: the text prompt.  distance: the sample's CLIP distance; a float is shown with four
            decimals, as in the ranked file names, a string as given.
    """
    panels = [("Source Image", to_rgb(source))]
    if mask is not None:
        panels.append(("Mask", _mask2d(mask)))
    panels.append(("Edited Image", to_rgb(edited)))
    fig = Figure(figsize=(12, 5), layout="constrained")
    for k, (name, array) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), k + 1)
        grey = dict(cmap="gray", vmin=0, vmax=1) if array.ndim == 2 else {}
        ax.imshow(array, interpolation="nearest", **grey)
        ax.set_title(name)
        ax.set_xticks([])
        ax.set_yticks([])
    title = [] if prompt is None else [f'Prompt: "{prompt}"']
    if distance is not None:
        title.append(f"({distance})" if isinstance(distance, str) else f"({float(distance):.4f})")
    if title:
        fig.suptitle(" ".join(title))
    return fig


def save_comparison_figures(result, folder, show_mask: bool | None = None, dpi: int = 100) -> list:
    """Write :func:`comparison_figure` of every sample of an :class:`blendlab.EditResult` to
    ``folder/<stem>_i_<iteration>_b_<batch index>.png`` (``result.sample_name``), where the reference
    writes it; atomic writes. Titles carry ``result.cfg.prompt`` and ``result.distances``.

    ``show_mask``: draw the mask panel; default: unless the mask covers the whole image (an edit
    without a mask). Returns the paths in sampling order.
    """
    from pathlib import Path

    masks = result.sample_masks
    if show_mask is None:
        show_mask = bool((masks < 0.5).any())
    paths = []
    for i in range(result.images.shape[0]):
        mask = masks[min(i, masks.shape[0] - 1)] if show_mask else None
        fig = comparison_figure(result.init_image, result.images[i], mask,
                                prompt=result.cfg.prompt, distance=float(result.distances[i]))
        paths.append(_save_png(fig, Path(folder) / result.sample_name(i), dpi, bbox_inches="tight"))
    return paths


def augmentation_views(image, mask=None, *, size: int = 224, aug_num: int = 8, seed: int = 0,
                       ncols: int | None = None, panel: float = 1.6) -> Figure:
    """The views CLIP sees of ``image · mask``: :class:`blendlab.guidance.ExtendingAugmentations`
    (view 0 pooled to ``size``, views 1.. randomly warped), the same ones for the same ``seed``."""
    from .guidance import ExtendingAugmentations

    if not isinstance(image, torch.Tensor) or image.dim() != 4 or image.shape[1] != 3:
        raise InputError("image must be a (1, 3, H, W) tensor in [-1, 1]; use blendlab.load_image")
    x = image.detach().float()[:1]
    if mask is not None:
        _mask2d(mask)  # validates the type
        if tuple(mask.shape[-2:]) != tuple(x.shape[-2:]):
            raise InputError(f"mask is {tuple(mask.shape[-2:])} but the image is {tuple(x.shape[-2:])}")
        x = x * mask.to(x.device, x.dtype)
    with torch.no_grad():
        views = ExtendingAugmentations(size, aug_num)(x, seed=seed)
    titles = ["view 0: pooled"] + [f"view {k}: warped" for k in range(1, len(views))]
    fig = image_grid(views, titles, ncols=ncols or min(len(views), 8), panel=panel)
    fig.suptitle(f"what CLIP sees: {len(views)} view(s) at {size}x{size} (aug_num={aug_num}, seed={seed})",
                 fontsize=10)
    return fig


def gradient_maps(grads, titles: Sequence[str] | None = None, ncols: int | None = None,
                  panel: float = PANEL) -> Figure:
    """Heatmaps of ‖g‖₂ over channels for a batch ``(B, 3, H, W)`` (or a list) of gradients, each
    scaled to its own maximum (written in the title)."""
    items = _as_list(grads)
    if titles is not None and len(titles) != len(items):
        raise InputError(f"got {len(titles)} titles for {len(items)} gradients")
    fig, axes = _new_figure(len(items), ncols or min(len(items), 8), panel)
    for k, (ax, g) in enumerate(zip(axes, items)):
        peak = float(grad_magnitude(g).max())
        head = titles[k] if titles else f"|grad| #{k}"
        _show_grad(ax, g, f"{head}\nmax {peak:.2g}", fontsize=8)
    return fig


# -- seams --------------------------------------------------------------------------------------


def seam_comparison(images: Mapping[str, torch.Tensor], mask: torch.Tensor, width: int = 1,
                    panel: float = 2.2) -> Figure:
    """For each ``label -> image`` ((3, H, W) or (1, 3, H, W)): the image with the mask outlined
    (top row) and its gradient magnitude with the border band (bottom row), titled with
    :func:`seam_strength`."""
    if not isinstance(images, Mapping) or not images:
        raise InputError("pass a dict {label: image}, e.g. {'input': x0, 'blended': a, 'pasted': b}")
    n = len(images)
    fig = Figure(figsize=(panel * n, 2 * panel + 0.8), layout="constrained")
    ring = border_band(mask, width)[0, 0].cpu().numpy()
    m2 = _mask2d(mask)
    grads = {label: image_gradient(im if im.dim() == 4 else im[None])[0].cpu().numpy()
             for label, im in images.items()}
    vmax = max(float(g.max()) for g in grads.values()) or 1.0
    for k, (label, im) in enumerate(images.items()):
        value = float(seam_strength(im, mask, width)[0])
        top = fig.add_subplot(2, n, k + 1)
        _show(top, im, f"{label}\nseam {value:.3f}")
        _outline(top, m2)
        bottom = fig.add_subplot(2, n, n + k + 1)
        bottom.imshow(grads[label], cmap="gray", vmin=0, vmax=vmax, interpolation="nearest")
        bottom.contour(ring, levels=[0.5], colors=[OUTLINE_COLOR], linewidths=0.8)
        bottom.set_xticks([])
        bottom.set_yticks([])
        bottom.set_title("|∂x|+|∂y|, border band", fontsize=8)
    fig.suptitle(f"seam = mean gradient on the mask border (±{width} px); lower = smoother", fontsize=10)
    return fig
