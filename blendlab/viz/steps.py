"""Figures of recorded trajectories: one field over the steps (:func:`step_strip`), two recordings
row above row (:func:`compare_strips`), the six tensors of one step (:func:`step_panels`) and the
losses per step (:func:`loss_curves`).

Every panel is titled in the library's one step vocabulary (:func:`blendlab.vocabulary.step_label`):
``"step 3/10 · t=473"``, the step k counted from 0 and t of the 1000-step schedule; the sampler's
respaced index never appears.

May import: errors, guidance, images, trajectory_compare, vocabulary, viz.base.
"""

from __future__ import annotations

import math
from typing import Mapping

import numpy as np

from ..errors import InputError
from ..guidance import BATCH_SUMMED
from ..images import grad_magnitude
from ..trajectory_compare import StepDistances, abs_difference, pair_steps, steps_of
from ..vocabulary import label_of
from .base import (DIFF_CMAP, LABELS, PANEL_FIELDS, Figure, fit_columns, grad_colorbar, mask_2d, new_figure,
                   outline_mask, save_png, show_grad, show_image)

__all__ = ["step_strip", "compare_strips", "save_step_strip", "step_panels", "loss_curves"]


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
               max_steps: int | None = 10, panel: float = 1.6, shared_scale: bool = False) -> Figure:
    """One field of a recorded trajectory over the steps: one row per recorder (wrapped into more
    rows when the steps do not fit the width), each panel titled ``"step 3/10 · t=473"``.

    Args:
        recorder: a :class:`blendlab.Recorder` that ran as a hook, or ``{label: Recorder}`` to
            compare trajectories row by row (e.g. guided vs unguided from the same seed).
        field: a recorded field (``"grad"`` is drawn as a heatmap of its size ‖g‖₂, each panel titled
            with its maximum).
        sample: which image of the batch.  iteration: which batch (default: the first recorded).
        max_steps: at most this many evenly spaced steps (the first and the last always).
        shared_scale: for ``"grad"``: every panel on one colour scale with a colour bar (brightness
            compares across steps); default each panel scaled to its own maximum (compare patterns).
    """
    rows = dict(recorder) if isinstance(recorder, Mapping) else {None: recorder}
    picked = {label: _pick(steps_of(rec, iteration), max_steps) for label, rec in rows.items()}
    vmax = None
    if field == "grad" and shared_scale:
        vmax = max(float(grad_magnitude(_sample(s, field, sample)).max()) for st in picked.values() for s in st)
    fig, axes, _, _ = _strip_rows(picked, field, sample, panel, vmax=vmax)
    if vmax is not None:
        grad_colorbar(fig, axes[-1].get_images()[0], axes, label="‖g‖₂ per pixel (one scale)")
    fig.suptitle(LABELS.get(field, field) + " over the reverse steps", fontsize=10)
    return fig


def _step_title(step) -> str:
    """The panel title of a step: its label (and ᾱ_t for old recordings without t)."""
    if getattr(step, "timestep", None) is None:
        return label_of(step) + "\n" + r"$\bar\alpha_t$" + f"={step.alpha_bar:.3f}"
    return label_of(step)


def _sample(step, field: str, sample: int):
    value = _field(step, field)
    if not 0 <= sample < value.shape[0]:
        raise InputError(f"sample {sample} out of range: step {step.index} holds {value.shape[0]} images")
    return value[sample]


def _strip_rows(rows: Mapping, field: str, sample: int, panel: float, extra_rows: int = 0,
                vmax: float | None = None):
    """One row of panels per ``label -> steps``, plus ``extra_rows`` empty ones. Too many steps for the
    width wrap: the grid repeats in blocks (every row of the first columns, then of the next ones).
    Returns the figure, the axes drawn (row by row), ``position(row, column)`` of a panel on the grid
    and the grid's ``(rows, columns)``."""
    n = max(len(s) for s in rows.values())
    bar = extra_rows or vmax is not None  # a colour bar beside the grid
    ncols = fit_columns(n, None, panel, extra_w=0.6 * bool(bar))
    block = len(rows) + extra_rows
    nrows = block * math.ceil(n / ncols)

    def position(r: int, c: int) -> int:
        chunk, col = divmod(c, ncols)
        return (chunk * block + r) * ncols + col + 1

    fig = Figure(figsize=(panel * ncols + 0.6 * bool(bar), (panel + 0.45) * nrows), layout="constrained")
    axes = []
    for r, (label, steps) in enumerate(rows.items()):
        for c, step in enumerate(steps):
            ax = fig.add_subplot(nrows, ncols, position(r, c))
            axes.append(ax)
            value = _sample(step, field, sample)
            if field == "grad":
                title = _step_title(step)
                if vmax is None:
                    title += f"\nmax {float(grad_magnitude(value).max()):.2g}"
                show_grad(ax, value, title, vmax=vmax)
            else:
                show_image(ax, value, _step_title(step))
            if c % ncols == 0 and label is not None:
                ax.set_ylabel(str(label), fontsize=9)
    return fig, axes, position, (nrows, ncols)


def compare_strips(rec_a, rec_b, field: str = "pred_x0", sample: int = 0, labels=("a", "b"),
                   iteration: int | None = None, max_steps: int | None = 8, sync: str = "auto",
                   diff: bool = False, panel: float = 1.6) -> Figure:
    """Two recordings row above row at the same steps: a static figure for slides and papers.

    Columns are evenly spaced steps of ``rec_a`` (at most ``max_steps``; the first and the last
    always); under each, the step of ``rec_b`` paired with it — the same step index, or the nearest
    timestep when the step counts differ (``sync``, see :func:`blendlab.trajectory.pair_steps`).
    Every panel is titled with its own step and t (``"step 3/10 · t=473"``). ``diff=True`` adds a
    third row: the per-pixel ``|a − b|`` (mean over channels) on one colour scale for the whole row,
    with a colour bar. More steps than fit the width wrap: the rows repeat for the next columns.
    """
    if len(labels) != 2:
        raise InputError(f"labels must be two names, e.g. ('blend', 'no blend'); got {labels!r}")
    pairs, used = pair_steps(_pick(steps_of(rec_a, iteration), max_steps), steps_of(rec_b, iteration), sync)
    rows = {str(labels[0]): [a for a, _ in pairs], str(labels[1]): [b for _, b in pairs]}
    fig, _, position, grid = _strip_rows(rows, field, sample, panel, extra_rows=int(diff))
    if diff:
        maps = [abs_difference(_field(a, field)[sample], _field(b, field)[sample]).numpy() for a, b in pairs]
        vmax = max(max(float(m.max()) for m in maps), 1e-12)
        diff_axes = []
        for c, m in enumerate(maps):
            ax = fig.add_subplot(*grid, position(2, c))
            diff_axes.append(ax)
            im = ax.imshow(m, cmap=DIFF_CMAP, vmin=0, vmax=vmax, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"max {float(m.max()):.2g}", fontsize=9)
            if c % grid[1] == 0:
                ax.set_ylabel("|a − b|", fontsize=9)
        fig.colorbar(im, ax=diff_axes, shrink=0.9, label="|a − b|")
    what = "same step" if used == "step" else "nearest timestep"
    fig.suptitle(f"{LABELS.get(field, field)}: {labels[0]} (top) vs {labels[1]} ({what})", fontsize=10)
    return fig


def save_step_strip(recorder, path, field: str = "x_prev", dpi: int = 120, **kwargs):
    """Write :func:`step_strip` of ``recorder`` as a PNG (atomically); returns the path."""
    return save_png(step_strip(recorder, field=field, **kwargs), path, dpi)


def step_panels(step, sample: int = 0, mask=None, panel: float = 1.6) -> Figure:
    """The six tensors of one reverse step side by side: x_t, x̂0, |grad|, fg, bg, x_{t−1}, titled
    ``"step 3/10 · t=473 · ᾱ_t = 0.1234"``.

    ``step`` is a :class:`blendlab.StepState` (from ``sampler.steps()``) or a recorded step
    (``recorder.steps[k]``, which must hold those fields). The mask (``step.mask``, or
    ``recorder.mask`` passed as ``mask``) is outlined on x_{t−1}.
    """
    values = [_field(step, name) for name in PANEL_FIELDS]
    for v in values:
        if not 0 <= sample < v.shape[0]:
            raise InputError(f"sample {sample} out of range: the step holds {v.shape[0]} images")
    mask = getattr(step, "mask", None) if mask is None else mask
    fig, axes = new_figure(len(PANEL_FIELDS), len(PANEL_FIELDS), panel)
    for ax, name, v in zip(axes, PANEL_FIELDS, values):
        if name == "grad":
            peak = float(v[sample].float().norm(dim=0).max())
            show_grad(ax, v[sample], f"{LABELS[name]}\nmax {peak:.2g}" if peak > 0 else f"{LABELS[name]}\n(zero: unguided)")
        else:
            show_image(ax, v[sample], LABELS[name])
    if mask is not None:
        outline_mask(axes[-1], mask_2d(mask, values[-1].shape[-2:]))
    fig.suptitle(label_of(step) + " · " + r"$\bar\alpha_t$" + f" = {step.alpha_bar:.4f}", fontsize=10)
    return fig


def _rows(step) -> int:
    """How many samples a recorded step's batch held (pruning drops some)."""
    if getattr(step, "sample_ids", None) is not None:
        return len(step.sample_ids)
    fields = getattr(step, "fields", None) or {}
    if not fields:
        raise InputError("a recorded step holds no fields to count its samples: use per_sample=False")
    return int(next(iter(fields.values())).shape[0])


def loss_curves(curves, term: str | None = None, log: bool = False, title: str | None = None,
                ylabel: str | None = None, x: str = "step", per_sample: bool = True) -> Figure:
    """Loss per step, several recordings on one axis.

    ``curves`` is a Recorder, or ``{label: Recorder, StepDistances or sequence of floats}``. For a
    Recorder every loss term it saw is drawn (only ``term`` when given), one line per term and
    iteration. A :class:`blendlab.trajectory.StepDistances` is drawn as its mean ``|a − b|`` per step;
    a sequence as one value per step (any per-step measure, e.g. :func:`background_drift` of
    recorded x̂0).

    ``per_sample`` (default): a Recorder's terms are per-sample means — the terms the guidance sums
    over the batch (:data:`blendlab.guidance.BATCH_SUMMED`) divided by the samples the step held —
    so runs with other batch sizes, or a batch pruned on the way, compare. ``per_sample=False`` draws
    the recorded sums, and the axis says "sum over the batch".

    ``x="step"``: the step k, from 0 (as every label: ``"step 3/10"``). ``x="t"``: the timestep of the
    1000-step schedule (from high to low, left to right), which lines up runs with different step
    counts or ``skip_timesteps``; sequences have no timesteps and need ``x="step"``.
    """
    if x not in ("step", "t"):
        raise InputError(f'x must be "step" or "t", got {x!r}')

    def where(step):
        if x == "step":
            return step.index
        if step.timestep is None:
            raise InputError('a recording has no timesteps (made before blendlab recorded them); use x="step"')
        return step.timestep

    def value(step, name):
        loss = step.losses[name]
        return loss / _rows(step) if per_sample and name in BATCH_SUMMED else loss

    items = dict(curves) if isinstance(curves, Mapping) else {None: curves}
    fig = Figure(figsize=(6.0, 3.2), layout="constrained")
    ax = fig.add_subplot()
    drawn, recorded = 0, False
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
                    pts = [(where(s), value(s, name)) for s in steps if s.iteration == it and name in s.losses]
                    if not pts:
                        continue
                    parts = [p for p in (label, name if len(terms) > 1 or label is None else None,
                                         f"batch {it + 1}" if it else None) if p]
                    ax.plot(*zip(*pts), marker="o", markersize=3, label=" · ".join(map(str, parts)))
                    drawn += 1
                    recorded = True
        else:
            if x != "step":
                raise InputError(f'{label!r} is a plain sequence without timesteps: use x="step"')
            ys = [float(v) for v in src]
            ax.plot(range(len(ys)), ys, marker="o", markersize=3, label=str(label))
            drawn += 1
    if not drawn:
        raise InputError("no losses to draw: the run was unguided (empty prompt) or recorded no steps")
    how = ("per sample (mean over the batch)" if per_sample else "sum over the batch") if recorded else ""
    ax.set_xlabel("step k (from 0)" if x == "step" else "timestep t")
    if x == "t":
        ax.invert_xaxis()  # the reverse process runs from high t to low t
    ylabel = ylabel or " ".join(p for p in (term or "loss", how) if p)
    if recorded and not per_sample and "sum" not in ylabel:
        ylabel += " (sum over the batch)"  # a sum stays labelled as one
    ax.set_ylabel(ylabel)
    if log:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=9)
    ax.set_title(title or "guidance loss per reverse step" + (f", {how}" if how else ""), fontsize=10)
    return fig
