"""What every figure shares: the :class:`Figure` that shows itself in Jupyter, :func:`to_rgb`, the
colours and labels, the helpers that draw an image, a gradient or a mask outline on an axes, atomic
PNG saving, and the plainest figures: :func:`image_grid`, :func:`mask_overlay`, :func:`gradient_maps`.

Legible in a notebook column: at its default size no figure is wider than :data:`MAX_WIDTH` inches and
no text is smaller than :data:`MIN_FONT` points; long rows of panels wrap into more rows
(:func:`fit_columns`) instead of growing wider.

May import: errors, images, vocabulary.
"""

from __future__ import annotations

import io
import math
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure as _MplFigure

from ..errors import InputError
from ..images import atomic_write, grad_magnitude, to_rgb01
from ..vocabulary import STEP_FIELDS as _DECLARED_FIELDS

__all__ = ["PANEL", "MAX_WIDTH", "MIN_FONT", "GRAD_CMAP", "DIFF_CMAP", "MASK_COLOR", "OUTLINE_COLOR", "PANEL_FIELDS",
           "LABELS", "Figure", "to_rgb", "as_image_list", "mask_2d", "fit_columns", "new_figure", "show_image",
           "show_grad", "grad_colorbar", "outline_mask", "save_png", "image_grid", "mask_overlay", "gradient_maps"]

PANEL = 2.0  # inches per image panel
MAX_WIDTH = 10.0  # inches: the widest figure that a notebook column shows without shrinking its text
MIN_FONT = 9  # points: the smallest text of any figure
GRAD_CMAP = "magma"
DIFF_CMAP = "viridis"
MASK_COLOR = (1.0, 0.16, 0.16)
OUTLINE_COLOR = (1.0, 0.9, 0.0)
#: The six views of one reverse step, in the order :func:`step_panels` draws them (a choice among
#: the fields :data:`blendlab.vocabulary.STEP_FIELDS` declares).
PANEL_FIELDS = ("x_t", "pred_x0", "grad", "fg", "bg", "x_prev")
LABELS = {f.name: f.label for f in _DECLARED_FIELDS}  # declared once, in blendlab.vocabulary


def renamed_panel_fields(module: str, name: str):
    """``<module>.STEP_FIELDS``, the panels' old name (it clashed with the declarations of
    :data:`blendlab.vocabulary.STEP_FIELDS`): still given, with a DeprecationWarning."""
    if name != "STEP_FIELDS":
        raise AttributeError(f"module {module!r} has no attribute {name!r}")
    import warnings

    warnings.warn(f"{module}.STEP_FIELDS is deprecated: it is the step panels' order, now {module}.PANEL_FIELDS "
                  "(blendlab.vocabulary.STEP_FIELDS declares every step field)", DeprecationWarning, stacklevel=3)
    return PANEL_FIELDS


def __getattr__(name):
    return renamed_panel_fields(__name__, name)


class Figure(_MplFigure):
    """A matplotlib Figure that shows itself as PNG in Jupyter and Colab without pyplot."""

    def _repr_png_(self) -> bytes:
        buf = io.BytesIO()
        self.savefig(buf, format="png", bbox_inches="tight")
        return buf.getvalue()


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


def as_image_list(images) -> list:
    """A batch ``(B, 3, H, W)``, one ``(3, H, W)`` image or a list of images -> a list of images."""
    if isinstance(images, torch.Tensor):
        if images.dim() == 3:
            return [images]
        if images.dim() == 4:
            return list(images)
        raise InputError(f"images must be (B, 3, H, W) or (3, H, W), got shape {tuple(images.shape)}")
    if isinstance(images, (list, tuple)):
        return list(images)
    raise InputError(f"images must be a tensor or a list of images, got {type(images).__name__}")


def mask_2d(mask, hw=None) -> np.ndarray:
    """The first mask of a ``(…, H, W)`` tensor as an ``(H, W)`` array (resized NEAREST to ``hw``)."""
    if not isinstance(mask, torch.Tensor) or mask.dim() not in (2, 3, 4):
        shape = tuple(mask.shape) if isinstance(mask, torch.Tensor) else type(mask).__name__
        raise InputError(f"mask must be a (1, 1, H, W) tensor in {{0, 1}}, got {shape}; use blendlab.load_mask")
    m = mask.detach().float().reshape(-1, *mask.shape[-2:])[0]
    if hw is not None and tuple(m.shape) != tuple(hw):
        m = F.interpolate(m[None, None], size=tuple(hw), mode="nearest")[0, 0]
    return m.cpu().numpy()


def fit_columns(n: int, ncols: int | None = None, panel: float = PANEL, extra_w: float = 0.0) -> int:
    """Columns for ``n`` panels of ``panel`` inches (``ncols`` asked for, default all in one row), at
    most as many as fit in :data:`MAX_WIDTH` beside ``extra_w`` inches (a colour bar); when the row
    must wrap, the rows are filled evenly (10 panels, 6 fit: two rows of 5)."""
    want = max(1, min(n, ncols or n))
    cap = max(1, int((MAX_WIDTH - extra_w) // panel))
    if want <= cap:
        return want
    return math.ceil(n / math.ceil(n / cap))


def new_figure(n: int, ncols: int | None = None, panel: float = PANEL, extra_h: float = 0.4):
    """A :class:`Figure` with ``n`` axes on a grid of ``ncols`` columns (:func:`fit_columns`: wrapped
    to stay within :data:`MAX_WIDTH`); returns ``(fig, axes)``."""
    if n < 1:
        raise InputError("nothing to draw: pass at least one image")
    ncols = fit_columns(n, ncols, panel)
    nrows = math.ceil(n / ncols)
    fig = Figure(figsize=(panel * ncols, (panel + extra_h) * nrows), layout="constrained")
    axes = [fig.add_subplot(nrows, ncols, i + 1) for i in range(n)]
    return fig, axes


def show_image(ax, image, title: str | None = None, fontsize: int = 9):
    """Draw :func:`to_rgb` of ``image`` on ``ax`` without ticks."""
    ax.imshow(to_rgb(image), interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=fontsize)


def show_grad(ax, grad, title: str | None = None, fontsize: int = 9, vmax: float | None = None):
    """Draw a gradient's per-pixel size ‖g‖₂ as a heatmap from 0 to ``vmax`` (default: its own
    maximum); returns the image (for a colour bar)."""
    mag = grad_magnitude(grad)
    vmax = float(mag.max()) if vmax is None else float(vmax)
    im = ax.imshow(mag, cmap=GRAD_CMAP, interpolation="nearest", vmin=0, vmax=max(vmax, 1e-12))
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=fontsize)
    return im


def grad_colorbar(fig, im, axes, label: str = "‖g‖₂ per pixel"):
    """One colour bar for gradient heatmaps drawn on one scale (``im`` is any of them)."""
    return fig.colorbar(im, ax=axes, shrink=0.9, label=label)


def outline_mask(ax, mask2d: np.ndarray, color=OUTLINE_COLOR, linewidth: float = 1.2):
    """Outline the border of an ``(H, W)`` {0, 1} mask (nothing for an empty or full mask)."""
    if mask2d.min() < 0.5 < mask2d.max():
        ax.contour(mask2d, levels=[0.5], colors=[color], linewidths=linewidth)


def save_png(fig, path, dpi: int, **savefig_kwargs):
    """Write ``fig`` as a PNG at ``path`` atomically (a temporary file moved into place)."""
    return atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=dpi, **savefig_kwargs))


def image_grid(images, titles: Sequence[str] | None = None, ncols: int | None = None,
               suptitle: str | None = None, panel: float = PANEL) -> Figure:
    """A grid of images, one axes each, with optional titles.

    Args:
        images: ``(B, 3, H, W)`` tensor in [-1, 1], or a list of ``(3, H, W)``/``(1, 3, H, W)``
            tensors and PIL images (sizes may differ).
        titles: one per image.
        ncols: images per row (default: all in one row, at most 8); rows wrap further when they
            would be wider than :data:`MAX_WIDTH`.
    """
    items = as_image_list(images)
    if titles is not None and len(titles) != len(items):
        raise InputError(f"got {len(titles)} titles for {len(items)} images; pass one title per image")
    fig, axes = new_figure(len(items), ncols or min(len(items), 8), panel)
    for k, (ax, im) in enumerate(zip(axes, items)):
        show_image(ax, im, titles[k] if titles else None)
    if suptitle:
        fig.suptitle(suptitle)
    return fig


def mask_overlay(image, mask, color=MASK_COLOR, alpha: float = 0.4, title: str | None = "edit region (mask = 1)",
                 outline=OUTLINE_COLOR, panel: float = 3.0) -> Figure:
    """The image with the edit region tinted (``(1 − α)·rgb + α·color`` where mask = 1) and outlined."""
    rgb = to_rgb(image)
    m = mask_2d(mask)
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
        outline_mask(ax, m, outline)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)
    return fig


def gradient_maps(grads, titles: Sequence[str] | None = None, ncols: int | None = None,
                  panel: float = PANEL, shared_scale: bool = True, colorbar: bool = True,
                  suptitle: str | None = None) -> Figure:
    """Heatmaps of ‖g‖₂ over channels for a batch ``(B, 3, H, W)`` (or a list) of gradients, each
    titled with its maximum.

    ``shared_scale`` (default): every map on one colour scale, 0 to the largest maximum, so the
    brightness compares across panels; False scales each to its own maximum (compare patterns, not
    brightness). ``colorbar``: one bar for the shared scale, one per panel otherwise.
    """
    items = as_image_list(grads)
    if titles is not None and len(titles) != len(items):
        raise InputError(f"got {len(titles)} titles for {len(items)} gradients")
    mags = [grad_magnitude(g) for g in items]
    top = max(float(m.max()) for m in mags) if shared_scale else None
    fig, axes = new_figure(len(items), ncols or min(len(items), 8), panel)
    for k, (ax, g, m) in enumerate(zip(axes, items, mags)):
        head = titles[k] if titles else f"|grad| #{k}"
        im = show_grad(ax, g, f"{head}\nmax {float(m.max()):.2g}", vmax=top)
        if colorbar and not shared_scale:
            grad_colorbar(fig, im, ax, label="")
    if colorbar and shared_scale:
        grad_colorbar(fig, im, axes, label="‖g‖₂ per pixel (one scale)")
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    return fig
