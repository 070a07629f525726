"""What a finished sweep shows: the paper-style grid (rows = inputs, columns = a swept setting, the
best-ranked sample of each cell) and a plot of a metric over a setting.

May import: blendlab.sweep.core.
"""

from __future__ import annotations

from pathlib import Path

from .core import read_records

__all__ = ["grid_figure", "metric_plot"]


def _done(out) -> list[dict]:
    return [r for r in read_records(out).values() if r.get("status") == "done"]


def grid_figure(out, setting: str, metric: str = "clip_distance"):
    """A matplotlib figure: one row per input, one column per value of ``setting``; each cell shows
    the best sample (lowest ``metric``) over seeds and other settings."""
    import matplotlib.pyplot as plt
    from PIL import Image

    records = _done(out)
    inputs = sorted({r["input"] for r in records})
    values = sorted({r["setting"][setting] for r in records if setting in r["setting"]}, key=str)
    if not inputs or not values:
        raise ValueError(f"no finished rows with setting {setting!r} in {out}")
    fig, axes = plt.subplots(len(inputs), len(values), figsize=(2 * len(values), 2 * len(inputs)), squeeze=False)
    for i, name in enumerate(inputs):
        for j, value in enumerate(values):
            ax = axes[i][j]
            ax.axis("off")
            cell = [r for r in records if r["input"] == name and r["setting"].get(setting) == value]
            if cell:
                best = min(cell, key=lambda r: r[metric])
                ax.imshow(Image.open(Path(out) / best["best_image"]))
                ax.set_title(f"{metric} {best[metric]:.3f}", fontsize=7)
            if i == 0:
                ax.text(0.5, 1.25, f"{setting}={value}", transform=ax.transAxes, ha="center", fontsize=8)
            if j == 0:
                ax.text(-0.1, 0.5, name, transform=ax.transAxes, ha="right", va="center", fontsize=8)
    fig.tight_layout()
    return fig


def metric_plot(out, setting: str, metrics=("clip_distance", "background_drift", "seam_strength")):
    """A matplotlib figure: each metric's mean (and every row as a dot) over the values of ``setting``."""
    import matplotlib.pyplot as plt

    records = [r for r in _done(out) if setting in r["setting"]]
    values = sorted({r["setting"][setting] for r in records}, key=str)
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.2 * len(metrics), 2.8), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        for x, value in enumerate(values):
            ys = [r[metric] for r in records if r["setting"][setting] == value and r.get(metric) is not None]
            ax.scatter([x] * len(ys), ys, s=8, alpha=0.5)
            if ys:
                ax.plot([x - 0.2, x + 0.2], [sum(ys) / len(ys)] * 2, color="k")
        ax.set_xticks(range(len(values)), [str(v) for v in values])
        ax.set_xlabel(setting)
        ax.set_title(metric, fontsize=9)
    fig.tight_layout()
    return fig
