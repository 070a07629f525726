"""Figures of an edit's results: the ranked samples (:func:`ranked_gallery`), the reference's
per-sample source | mask | edited figure that ``blendlab edit`` saves (:func:`comparison_figure`,
:func:`save_comparison_figures`), and how visible the seam on the mask border is
(:func:`seam_comparison`, with :func:`blendlab.metrics.seam_strength`), and one setting swept over
several edits: the edit, the judge's verdict and the background change per value (:func:`setting_sweep`).

May import: errors, metrics, viz.base.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Mapping

import numpy as np
import torch

from ..errors import InputError
from ..metrics import background_drift, border_band, image_gradient, seam_strength
from .base import (DIFF_CMAP, MAX_WIDTH, OUTLINE_COLOR, PANEL, Figure, fit_columns, image_grid, mask_2d, outline_mask,
                   save_png, show_image, to_rgb)

__all__ = ["ranked_gallery", "comparison_figure", "save_comparison_figures", "seam_comparison", "setting_sweep",
           "outside_change", "REFERENCE_FIGSIZE"]


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


#: The size (inches) of the reference's saved figure, which :func:`save_comparison_figures` keeps.
REFERENCE_FIGSIZE = (12.0, 5.0)


def comparison_figure(source, edited, mask=None, prompt: str | None = None, distance=None,
                      figsize=(10.0, 4.2)) -> Figure:
    """One sample next to its input, as the reference saves it for every sample: "Source Image" |
    "Mask" | "Edited Image" in a row, titled ``Prompt: "<prompt>" (<distance>)``. ``figsize``: the
    default fits a notebook column; the files are written at the reference's 12 x 5 inches.

    Args:
        source, edited: one image each, ``(3, H, W)`` / ``(1, 3, H, W)`` in [-1, 1] or PIL.
        mask: ``(1, 1, H, W)`` in {0, 1} (1 = edit), drawn in grey; None leaves the panel out
            (the reference's figure without ``--mask``).
        prompt: the text prompt.  distance: the sample's CLIP distance; a float is shown with four
            decimals, as in the ranked file names, a string as given.
    """
    panels = [("Source Image", to_rgb(source))]
    if mask is not None:
        panels.append(("Mask", mask_2d(mask)))
    panels.append(("Edited Image", to_rgb(edited)))
    fig = Figure(figsize=figsize, layout="constrained")
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
    masks = result.sample_masks
    if show_mask is None:
        show_mask = bool((masks < 0.5).any())
    paths = []
    for i in range(result.images.shape[0]):
        mask = masks[min(i, masks.shape[0] - 1)] if show_mask else None
        fig = comparison_figure(result.init_image, result.images[i], mask, prompt=result.cfg.prompt,
                                distance=float(result.distances[i]), figsize=REFERENCE_FIGSIZE)
        paths.append(save_png(fig, Path(folder) / result.sample_name(i), dpi, bbox_inches="tight"))
    return paths


def seam_comparison(images: Mapping[str, torch.Tensor], mask: torch.Tensor, width: int = 1,
                    panel: float = 2.2) -> Figure:
    """For each ``label -> image`` ((3, H, W) or (1, 3, H, W)): the image with the mask outlined
    (top row) and its gradient magnitude with the border band (bottom row), titled with
    :func:`seam_strength`."""
    if not isinstance(images, Mapping) or not images:
        raise InputError("pass a dict {label: image}, e.g. {'input': x0, 'blended': a, 'pasted': b}")
    n = len(images)
    ncols = fit_columns(n, None, panel)  # more labels than fit the width: the two rows repeat below
    nrows = 2 * math.ceil(n / ncols)
    fig = Figure(figsize=(panel * ncols, (panel + 0.4) * nrows), layout="constrained")
    ring = border_band(mask, width)[0, 0].cpu().numpy()
    m2 = mask_2d(mask)
    grads = {label: image_gradient(im if im.dim() == 4 else im[None])[0].cpu().numpy()
             for label, im in images.items()}
    vmax = max(float(g.max()) for g in grads.values()) or 1.0
    for k, (label, im) in enumerate(images.items()):
        value = float(seam_strength(im, mask, width)[0])
        chunk, col = divmod(k, ncols)
        top = fig.add_subplot(nrows, ncols, 2 * chunk * ncols + col + 1)
        show_image(top, im, f"{label}\nseam {value:.3f}")
        outline_mask(top, m2)
        bottom = fig.add_subplot(nrows, ncols, (2 * chunk + 1) * ncols + col + 1)
        bottom.imshow(grads[label], cmap="gray", vmin=0, vmax=vmax, interpolation="nearest")
        bottom.contour(ring, levels=[0.5], colors=[OUTLINE_COLOR], linewidths=0.8)
        bottom.set_xticks([])
        bottom.set_yticks([])
        bottom.set_title("|∂x|+|∂y|, border band", fontsize=9)
    fig.suptitle(f"seam = mean gradient on the mask border (±{width} px); lower = smoother", fontsize=10)
    return fig


def outside_change(images: torch.Tensor, init_image: torch.Tensor) -> np.ndarray:
    """(B, H, W) per-pixel |image − input| (mean over channels, in [0, 1] units): what an edit changed."""
    diff = (images.detach().float() - init_image.detach().float().to(images.device)).abs().div(2).mean(dim=1)
    return diff.cpu().numpy()


def setting_sweep(results: Mapping, init_image: torch.Tensor, mask: torch.Tensor,
                  verdicts: Mapping | None = None, *, sample: int = 0, setting: str = "λ_CLIP",
                  panel: float = 1.8) -> Figure:
    """One setting swept over several edits, on one figure: for each value (a column) the edit of
    ``sample`` titled with the judge's verdict (top row), and where it differs from the input,
    ``|edit − input|`` on one colour scale with the mask outlined, titled with the background change
    (bottom row: :func:`blendlab.metrics.background_drift`, the mean squared difference outside the
    mask in [0, 1] units, of that sample).

    Args:
        results: ``value -> (B, 3, H, W)`` images in [-1, 1], in the order to draw (e.g. one
            ``bl.edit(...).images`` per ``clip_guidance_lambda``).
        init_image: the input ``(1, 3, H, W)``.  mask: ``(1, 1, H, W)`` in {0, 1}, 1 = edit.
        verdicts: ``value -> one text per sample`` (e.g. the toy judge's "red circle"), or None.
        setting: the name of the swept setting, for the titles.
    """
    if not isinstance(results, Mapping) or not results:
        raise InputError("pass a dict {value: images}, e.g. {0: edit_0.images, 1000: edit_1000.images}")
    n = len(results)
    cap = max(1, int((MAX_WIDTH - 0.8) // panel))  # 0.8 in: the colour bar
    if n > cap:
        raise InputError(f"{n} values do not fit one figure {MAX_WIDTH:g} inches wide; pass at most {cap}")
    for value, images in results.items():
        if not 0 <= sample < images.shape[0]:
            raise InputError(f"sample {sample} is not in the batch of {images.shape[0]} for {setting} = {value}")
    changes = {v: outside_change(images, init_image) for v, images in results.items()}
    top = max(float(c[sample].max()) for c in changes.values()) or 1.0
    fig = Figure(figsize=(panel * n + 0.8, (panel + 0.55) * 2), layout="constrained")
    axes = fig.subplots(2, n, squeeze=False)
    m2 = mask_2d(mask)
    for col, (value, images) in enumerate(results.items()):
        said = "" if verdicts is None else f"\n{verdicts[value][sample]}"
        show_image(axes[0, col], images[sample], f"{setting} = {value:g}{said}")
        drift = float(background_drift(images[sample:sample + 1], init_image, mask)[0])
        im = axes[1, col].imshow(changes[value][sample], cmap=DIFF_CMAP, vmin=0, vmax=top, interpolation="nearest")
        outline_mask(axes[1, col], m2)
        axes[1, col].set_xticks([])
        axes[1, col].set_yticks([])
        axes[1, col].set_title(f"outside: {drift:.2g}", fontsize=9)
    fig.colorbar(im, ax=axes[1, :].tolist(), shrink=0.9, label="|edit − input|")
    fig.suptitle(f"sample {sample} for each {setting}: the edit (top), what changed (bottom, one scale; "
                 "the title is the MSE outside the mask)", fontsize=9)
    return fig
