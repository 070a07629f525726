"""Masks: load, validate, resize, invert, dilate; shapes, scribbles and canvas extension.

Inside blendlab a mask is a ``(1 or B, 1, H, W)`` float tensor in ``{0, 1}`` where **1 = edit**
(the region the text prompt may change) and 0 = keep. A mask belongs to an image: one of another
aspect ratio is an error, one of the same aspect but another size is resized with a
:class:`~blendlab.errors.MaskResizedWarning` (:func:`check_mask_fits`, which ``load_mask(...,
image_size=)`` calls).

May import: errors, images.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .errors import FullMaskWarning, InputError, MaskResizedWarning
from .images import ImageLike, _open

__all__ = [
    "load_mask",
    "mask_fit",
    "check_mask_fits",
    "check_mask",
    "edit_mask",
    "EMPTY_MASK",
    "EMPTY_INVERTED_MASK",
    "FULL_MASK",
    "invert_mask",
    "dilate_mask",
    "erode_mask",
    "box_mask",
    "ellipse_mask",
    "full_mask",
    "mask_to_pil",
    "extend_canvas",
    "paste_background",
    "paste_scribble",
]


def _binarise_array(arr: np.ndarray) -> np.ndarray:
    """Array -> bool (H, W). Integer data: any value > 0 is edit (the reference's ``> 0.5`` on 0..255).
    Float/bool data in [0, 1]: > 0.5 is edit. Colour data: the first channel, as the reference."""
    if arr.ndim == 3:
        if arr.shape[0] in (1, 3, 4) and arr.shape[-1] not in (1, 3, 4):
            arr = arr[0]
        else:
            arr = arr[..., 0]
    if arr.ndim != 2:
        raise InputError(f"mask of shape {arr.shape} not understood; expected (H, W) or (H, W, C)")
    if arr.dtype == np.bool_:
        return arr.copy()
    if np.issubdtype(arr.dtype, np.integer):
        return arr > 0
    if not np.isfinite(arr).all():
        raise InputError("mask contains NaN or infinity")
    return arr > 0.5


def _pil_mask_array(im: Image.Image) -> np.ndarray:
    if im.mode in ("1", "L", "I;16", "I;16L", "I;16B", "I"):
        return np.asarray(im)
    return np.asarray(im.convert("RGB"))


def _wh(size) -> str:
    return f"{size[0]}×{size[1]}"


def _same_aspect(mask_wh: tuple[int, int], image_wh: tuple[int, int]) -> bool:
    """Whether one of the two, scaled to the other's height (or width), is within a pixel of it."""
    (mw, mh), (iw, ih) = mask_wh, image_wh
    return abs(mh * iw / ih - mw) <= 1 or abs(ih * mw / mh - iw) <= 1


def mask_fit(mask_wh: tuple[int, int], image_wh: tuple[int, int]) -> str | None:
    """Judge a mask of ``mask_wh = (width, height)`` for an image of ``image_wh = (width, height)``,
    both as their files are (before any resize to the model's size).

    Raises :class:`InputError` when the aspect ratios differ (the mask would be stretched over
    another picture); returns what a :class:`~blendlab.errors.MaskResizedWarning` says when only the
    size differs (the mask will be resized with NEAREST); None when the sizes are equal.
    """
    mask_wh, image_wh = tuple(int(v) for v in mask_wh), tuple(int(v) for v in image_wh)
    if min(mask_wh + image_wh) < 1:
        raise InputError(f"mask {_wh(mask_wh)} or image {_wh(image_wh)} has no pixels")
    if mask_wh == image_wh:
        return None
    if not _same_aspect(mask_wh, image_wh):
        raise InputError(
            f"the mask is {_wh(mask_wh)} but the image is {_wh(image_wh)} (width×height): their "
            "shapes differ, so the mask would be stretched over another part of the picture. "
            f"Make the mask from this image, at {_wh(image_wh)} (or any size of the same shape)"
        )
    return (f"the mask is {_wh(mask_wh)} and the image {_wh(image_wh)}: same shape, so the mask is resized "
            f"to the image (NEAREST). Save the mask at {_wh(image_wh)} to skip this, or silence it with "
            "warnings.filterwarnings('ignore', category=blendlab.MaskResizedWarning)")


def check_mask_fits(mask_wh: tuple[int, int], image_wh: tuple[int, int]) -> None:
    """:func:`mask_fit`, with its note given as a :class:`~blendlab.errors.MaskResizedWarning`:
    an error for another aspect ratio, a warning for another size, silence for the same size."""
    note = mask_fit(mask_wh, image_wh)
    if note is not None:
        warnings.warn(note, MaskResizedWarning, stacklevel=3)


def load_mask(
    src: ImageLike, size: int | tuple[int, int] | None = None, invert: bool = False, *,
    image_size: tuple[int, int] | None = None,
) -> torch.Tensor:
    """Load a mask as a ``(1, 1, H, W)`` float tensor in ``{0, 1}``, 1 = edit.

    Args:
        src: path, PIL image, numpy array or tensor ((H, W), (1, H, W) or (1, 1, H, W)).
        size: resize to ``size x size`` (or ``(H, W)``) with PIL's NEAREST, as the reference does.
        invert: swap edit and keep (background replacement).
        image_size: ``(width, height)`` of the image this mask is for, as its file is (before any
            resize). Then :func:`check_mask_fits` judges the mask first (an error for another aspect
            ratio, a warning for another size) and, without ``size``, it is resized to the image's.

    Binarisation follows the reference: image files are read as RGB and the first channel is
    thresholded at ``> 0`` (any non-black pixel edits). Float arrays and tensors are thresholded at
    0.5. Empty and full masks are returned as they are; :func:`check_mask` judges them.
    """
    if isinstance(src, torch.Tensor):
        t = src.detach().to("cpu")
        while t.dim() > 2 and t.shape[0] == 1:
            t = t[0]
        if t.dim() != 2:
            raise InputError(
                f"mask tensor of shape {tuple(src.shape)} not understood; expected (H, W), "
                "(1, H, W) or (1, 1, H, W)"
            )
        arr = _binarise_array(t.float().numpy() if t.dtype != torch.bool else t.numpy())
    elif isinstance(src, np.ndarray):
        arr = _binarise_array(src)
    elif isinstance(src, Image.Image):
        arr = _binarise_array(_pil_mask_array(src))
    elif isinstance(src, (str, os.PathLike)):
        arr = _binarise_array(_pil_mask_array(_open(src)))
    else:
        raise InputError(
            f"cannot load a mask from {type(src).__name__}; pass a path, PIL image, array or tensor"
        )
    if image_size is not None:
        check_mask_fits((arr.shape[1], arr.shape[0]), image_size)
        if size is None:
            size = (int(image_size[1]), int(image_size[0]))
    if size is not None:
        hw = (size, size) if isinstance(size, int) else tuple(size)
        if arr.shape != hw:  # PIL's NEAREST, as the reference (it samples pixel centres)
            im = Image.fromarray(arr.astype(np.uint8) * 255).resize((hw[1], hw[0]), Image.NEAREST)
            arr = np.asarray(im) > 0
    mask = torch.from_numpy(arr.astype(np.float32))[None, None]
    if invert:
        mask = 1.0 - mask
    return mask.contiguous()


#: What an edit says of a mask with nothing to edit, and of one that, inverted, leaves nothing: one
#: wording whichever front door (``blendlab edit``, the EditorApp, a sweep, ``bl.edit``) it came through.
EMPTY_MASK = ("the mask is empty: nothing would be edited. Mark the region to edit with 1 (white in a mask "
              "file; in the editor, paint it, or press fill to edit all of it)")
EMPTY_INVERTED_MASK = ("the mask is empty once inverted: invert_mask keeps what the mask covers and edits the "
                       "rest, but your mask covered the whole image, so nothing is left to edit; mark less "
                       "of it, or turn invert_mask off")
#: What an edit says of a mask over the whole image (a :class:`~blendlab.errors.FullMaskWarning`).
FULL_MASK = ("mask covers the whole image: blending keeps nothing of the input "
             "(this is CLIP-guided diffusion of the whole image)")


def check_mask(mask: torch.Tensor, image: torch.Tensor | None = None, *, allow_empty: bool = False,
               warn_full: bool = True) -> None:
    """Validate a mask for an edit; raise :class:`InputError` with the fix, or warn for a full mask."""
    if not isinstance(mask, torch.Tensor) or mask.dim() != 4 or mask.shape[1] != 1:
        shape = tuple(mask.shape) if isinstance(mask, torch.Tensor) else type(mask).__name__
        raise InputError(f"mask must be a (1 or B, 1, H, W) tensor, got {shape}; use blendlab.load_mask")
    if not torch.all((mask == 0) | (mask == 1)):
        raise InputError("mask values must be 0 or 1; load it with blendlab.load_mask to binarise it")
    if image is not None and tuple(mask.shape[-2:]) != tuple(image.shape[-2:]):
        (mh, mw), (ih, iw) = mask.shape[-2:], image.shape[-2:]
        if not _same_aspect((mw, mh), (iw, ih)):
            check_mask_fits((mw, mh), (iw, ih))  # raises: their shapes differ
        raise InputError(
            f"mask is {tuple(mask.shape[-2:])} but the image is {tuple(image.shape[-2:])}; "
            "load both with the same size= (load_mask resizes with NEAREST)"
        )
    if not allow_empty and not torch.any(mask > 0):
        raise InputError(EMPTY_MASK)
    if warn_full and torch.all(mask > 0):
        warnings.warn(FULL_MASK, FullMaskWarning, stacklevel=3)


def edit_mask(mask: torch.Tensor, image: torch.Tensor, *, invert: bool = False,
              batch_size: int = 1, warn_full: bool = True) -> torch.Tensor:
    """The mask an edit blends with: ``mask`` ((1 or ``batch_size``, 1, H, W) in {0, 1}) checked
    against ``image`` (one :func:`check_mask`), and inverted when ``invert``
    (``EditConfig.invert_mask``: edit the background). Raises :class:`InputError` when it does not fit,
    or when nothing would be edited (:data:`EMPTY_MASK`, :data:`EMPTY_INVERTED_MASK`); warns
    (``warn_full``) when everything would. Returns ``mask`` itself or a new tensor; ``mask`` is never
    modified."""
    if isinstance(mask, torch.Tensor) and mask.dim() == 4 and mask.shape[0] not in (1, batch_size):
        raise InputError(
            f"mask batch {mask.shape[0]} does not match batch_size {batch_size}; "
            "pass one (1, 1, H, W) mask for the whole batch"
        )
    check_mask(mask, image, allow_empty=True, warn_full=False)
    used = 1.0 - mask if invert else mask
    if not torch.any(used > 0):
        raise InputError(EMPTY_INVERTED_MASK if invert else EMPTY_MASK)
    if warn_full and torch.all(used > 0):
        warnings.warn(FULL_MASK, FullMaskWarning, stacklevel=2)
    return used


def invert_mask(mask: torch.Tensor) -> torch.Tensor:
    """1 - mask: edit the background instead of the object."""
    return 1.0 - mask


def dilate_mask(mask: torch.Tensor, radius: int) -> torch.Tensor:
    """Grow the edit region by ``radius`` pixels (square structuring element)."""
    if radius <= 0:
        return mask.clone()
    k = 2 * radius + 1
    return F.max_pool2d(mask.float(), k, stride=1, padding=radius)


def erode_mask(mask: torch.Tensor, radius: int) -> torch.Tensor:
    """Shrink the edit region by ``radius`` pixels."""
    return 1.0 - dilate_mask(1.0 - mask, radius)


def full_mask(size: int | tuple[int, int]) -> torch.Tensor:
    hw = (size, size) if isinstance(size, int) else tuple(size)
    return torch.ones(1, 1, *hw)


def box_mask(size: int | tuple[int, int], box: tuple[float, float, float, float]) -> torch.Tensor:
    """Rectangle mask; ``box = (x0, y0, x1, y1)`` as fractions of width/height in [0, 1]."""
    hw = (size, size) if isinstance(size, int) else tuple(size)
    x0, y0, x1, y1 = box
    if not (0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1):
        raise InputError(f"box {box} must satisfy 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1")
    m = torch.zeros(1, 1, *hw)
    h, w = hw
    m[..., round(y0 * h) : max(round(y1 * h), round(y0 * h) + 1), round(x0 * w) : max(round(x1 * w), round(x0 * w) + 1)] = 1
    return m


def ellipse_mask(
    size: int | tuple[int, int], center: tuple[float, float], radii: tuple[float, float]
) -> torch.Tensor:
    """Ellipse mask; centre ``(cx, cy)`` and radii ``(rx, ry)`` as fractions of width/height."""
    hw = (size, size) if isinstance(size, int) else tuple(size)
    h, w = hw
    y = (torch.arange(h, dtype=torch.float32) + 0.5) / h
    x = (torch.arange(w, dtype=torch.float32) + 0.5) / w
    yy, xx = torch.meshgrid(y, x, indexing="ij")
    inside = ((xx - center[0]) / radii[0]) ** 2 + ((yy - center[1]) / radii[1]) ** 2 <= 1
    return inside.float()[None, None]


def mask_to_pil(mask: torch.Tensor) -> Image.Image:
    """(1, 1, H, W) {0,1} -> 8-bit "L" image (white = edit)."""
    m = mask.detach().reshape(mask.shape[-2:]).float().clamp(0, 1).mul(255).round().byte().cpu()
    return Image.fromarray(m.numpy(), mode="L")


def extend_canvas(
    image: torch.Tensor, side: str, fraction: float, fill: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Text-guided extrapolation: shift the image toward one side and open an empty band.

    The canvas keeps its size (the UNet works at one resolution): the image is translated by
    ``fraction`` of its width/height away from ``side`` and the uncovered band becomes the edit mask.

    Returns ``(new_image, mask)`` with mask 1 on the new band.
    """
    if side not in ("left", "right", "top", "bottom"):
        raise InputError(f"side must be left, right, top or bottom, not {side!r}")
    if not 0 < fraction < 1:
        raise InputError(f"fraction must be in (0, 1), got {fraction}")
    _, _, h, w = image.shape
    out = torch.full_like(image, fill)
    mask = torch.zeros(1, 1, h, w, dtype=image.dtype)
    if side in ("left", "right"):
        n = max(1, round(w * fraction))
        if side == "right":
            out[..., : w - n] = image[..., n:]
            mask[..., w - n :] = 1
        else:
            out[..., n:] = image[..., : w - n]
            mask[..., :n] = 1
    else:
        n = max(1, round(h * fraction))
        if side == "bottom":
            out[..., : h - n, :] = image[..., n:, :]
            mask[..., h - n :, :] = 1
        else:
            out[..., n:, :] = image[..., : h - n, :]
            mask[..., :n, :] = 1
    return out, mask


def paste_background(images: torch.Tensor, init_image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``images · m + init · (1 − m)``: keep the input outside the mask. The one paste at the end that
    ``enforce_background`` does; also for results made without it (``local_clip_guided_diffusion``).
    Inputs are not modified."""
    if images.shape[-2:] != init_image.shape[-2:] or mask.shape[-2:] != images.shape[-2:]:
        raise InputError("images, init_image and mask must have the same height and width")
    m = mask.to(images.device, images.dtype)
    return images * m + init_image.to(images.device, images.dtype) * (1 - m)


def paste_scribble(
    image: torch.Tensor, scribble: torch.Tensor, scribble_mask: torch.Tensor
) -> torch.Tensor:
    """Scribble-guided editing: paint ``scribble`` (image-shaped, [-1, 1]) where ``scribble_mask`` is 1.

    The result is the edit's input image: with more skipped steps the diffusion keeps the scribble's
    colours and layout while CLIP turns it into the prompt.
    """
    if scribble.shape[-2:] != image.shape[-2:] or scribble_mask.shape[-2:] != image.shape[-2:]:
        raise InputError("scribble, scribble mask and image must have the same height and width")
    return image * (1 - scribble_mask) + scribble * scribble_mask
