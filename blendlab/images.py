"""Images at the edges of the library: load, validate, convert, save.

Inside blendlab an image is a ``(B, 3, H, W)`` float tensor in ``[-1, 1]``. This module is the only
place that converts from and to files, PIL images and numpy arrays.

May import: errors, _files.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Union

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from ._files import new_file
from .errors import InputError

__all__ = [
    "ImageLike",
    "load_image",
    "file_size",
    "own_size",
    "check_image",
    "as_image_batch",
    "to_pil",
    "to_pil_list",
    "to_rgb01",
    "to_uint8",
    "grad_magnitude",
    "heatmap",
    "grad_heatmap",
    "pil_to_tensor",
    "save_image",
    "atomic_write",
    "sample_image",
    "SAMPLE_IMAGES",
]

ImageLike = Union[str, os.PathLike, Image.Image, np.ndarray, torch.Tensor]


def existing_file(path: str | os.PathLike, missing: str, folder: str) -> Path:
    """``path`` as a Path if it is a file; else FileNotFoundError(``missing``) or, for a folder,
    InputError(``folder``). ``{path}`` in either message is filled in."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(missing.format(path=path))
    if path.is_dir():
        raise InputError(folder.format(path=path))
    return path


def _open(path: str | os.PathLike) -> Image.Image:
    path = existing_file(path, "image file not found: {path}",
                         "{path} is a folder; pass the path of an image file (PNG or JPEG)")
    try:
        with Image.open(path) as im:
            im.load()
            return ImageOps.exif_transpose(im)
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise InputError(
            f"could not read image {path}: {exc}. The file is not a readable image or is corrupt; "
            "re-export it as PNG or JPEG."
        ) from None


def _array_to_rgb01(arr: np.ndarray) -> np.ndarray:
    """Any 2-D/3-D array (uint8, uint16, bool, float in [0,1]) -> float32 (H, W, 3) in [0, 1]."""
    if arr.ndim == 3 and arr.shape[0] in (1, 3, 4) and arr.shape[-1] not in (1, 3, 4):
        arr = np.moveaxis(arr, 0, -1)  # CHW -> HWC
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3 or arr.shape[-1] not in (1, 2, 3, 4):
        raise InputError(
            f"image array of shape {arr.shape} not understood; expected (H, W), (H, W, 3) or (H, W, 4)"
        )
    if arr.dtype == np.bool_:
        arr = arr.astype(np.float32)
    elif arr.dtype == np.uint8:
        arr = arr.astype(np.float32) / 255.0
    elif arr.dtype == np.uint16:
        arr = arr.astype(np.float32) / 65535.0
    elif np.issubdtype(arr.dtype, np.integer):
        top = 65535.0 if arr.max(initial=0) > 255 else 255.0
        arr = arr.astype(np.float32) / top
    else:
        arr = arr.astype(np.float32)
        if not np.isfinite(arr).all():
            raise InputError("image array contains NaN or infinity")
        if arr.min(initial=0) < 0 or arr.max(initial=0) > 1:
            raise InputError(
                f"float image values must lie in [0, 1] (got {arr.min():.3g}..{arr.max():.3g}); "
                "divide by 255 for 8-bit data"
            )
    channels = arr.shape[-1]
    if channels in (1, 2):  # grey (+ alpha): alpha dropped, as PIL's convert("RGB") does
        arr = np.repeat(arr[..., :1], 3, axis=-1)
    elif channels == 4:  # RGBA: alpha dropped, as the reference's convert("RGB") does
        arr = arr[..., :3]
    return np.ascontiguousarray(arr)


def _pil_to_rgb01(im: Image.Image) -> np.ndarray:
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        # 16/32-bit single channel: PIL's convert("RGB") would clip at 255, so scale ourselves.
        arr = np.asarray(im)
        if im.mode == "F":
            lo, hi = float(arr.min()), float(arr.max())
            arr = (arr - lo) / (hi - lo) if hi > lo else np.zeros_like(arr)
        else:
            arr = arr.astype(np.uint16 if arr.max(initial=0) <= 65535 else np.uint32)
            if arr.dtype == np.uint32:
                arr = (arr / arr.max()).astype(np.float32)
        return _array_to_rgb01(arr)
    if im.mode != "RGB":
        im = im.convert("RGB")
    return np.asarray(im, dtype=np.float32) / 255.0


def pil_to_tensor(im: Image.Image) -> torch.Tensor:
    """PIL image (any mode) -> (1, 3, H, W) float in [-1, 1]."""
    arr = _pil_to_rgb01(im)
    return torch.from_numpy(arr).permute(2, 0, 1).unsqueeze(0).mul(2).sub(1).contiguous()


def file_size(path: str | os.PathLike) -> tuple[int, int]:
    """``(width, height)`` of an image file as :func:`load_image` sees it before any resize (upright
    by its EXIF orientation): what :func:`blendlab.masks.check_mask_fits` compares. Reads the
    header only, not the pixels (the front doors have already decoded the file with load_image)."""
    path = existing_file(path, "image file not found: {path}",
                         "{path} is a folder; pass the path of an image file (PNG or JPEG)")
    try:
        with Image.open(path) as im:
            return _upright_size(im)
    except (UnidentifiedImageError, OSError, SyntaxError):
        return _open(path).size  # the same error message load_image gives


def _upright_size(im: Image.Image) -> tuple[int, int]:
    width, height = im.size
    turned = im.getexif().get(0x0112) in (5, 6, 7, 8)  # EXIF orientations that swap the axes
    return (height, width) if turned else (width, height)


def own_size(src: ImageLike) -> tuple[int, int]:
    """``(width, height)`` of an image as :func:`load_image` would load it without ``size``, without
    converting its pixels: a file's header (:func:`file_size`), a PIL image's size turned by its EXIF
    orientation, an array's or tensor's shape read the way ``load_image`` reads it."""
    if isinstance(src, (str, os.PathLike)):
        return file_size(src)
    if isinstance(src, Image.Image):
        return _upright_size(src)
    shape = tuple(src.shape)
    if isinstance(src, torch.Tensor) and src.is_floating_point():
        return int(shape[-1]), int(shape[-2])  # (3, H, W) or (1, 3, H, W)
    if len(shape) == 4 and shape[0] == 1:  # an integer tensor of pixels with a batch axis
        shape = shape[1:]
    if len(shape) == 3 and shape[0] in (1, 3, 4) and shape[-1] not in (1, 3, 4):
        return int(shape[2]), int(shape[1])  # CHW, as _array_to_rgb01 reads it
    return int(shape[1]), int(shape[0])


def load_image(src: ImageLike, size: int | tuple[int, int] | None = None) -> torch.Tensor:
    """Load an image as a ``(1, 3, H, W)`` float tensor in ``[-1, 1]``.

    Args:
        src: a path, a PIL image, a numpy array ((H, W), (H, W, 3|4), uint8/uint16/float in [0, 1]),
            an integer tensor of pixels (read as the same numpy array would be), or a float tensor
            already in blendlab's convention ((3, H, W) or (1, 3, H, W) in [-1, 1]; checked as
            :func:`check_image` does).
        size: resize to ``size x size`` (or ``(H, W)``) with Lanczos, as the reference does: the image
            is stretched, not cropped. ``None`` keeps the size.

    Conversions (documented, not errors): phone photos are rotated by their EXIF orientation;
    grayscale becomes RGB; an alpha channel is dropped (as ``PIL.Image.convert("RGB")`` in the
    reference); 16-bit images are scaled to [0, 1] from 65535, not clipped. The input is never modified.
    """
    if isinstance(src, torch.Tensor) and not src.is_floating_point():  # pixels: 8-bit, 16-bit, bool
        arr = src.detach().cpu().numpy()
        return load_image(arr[0] if arr.ndim == 4 and arr.shape[0] == 1 else arr, size)
    if isinstance(src, torch.Tensor):
        t = src.detach().to("cpu", torch.float32)
        if t.dim() == 3:
            t = t.unsqueeze(0)
        if t.dim() != 4 or t.shape[:2] != (1, 3):
            raise InputError(
                f"image tensor of shape {tuple(src.shape)} not understood; expected (3, H, W) or "
                "(1, 3, H, W) in [-1, 1]"
            )
        problem = _value_problem(t, "image tensor")
        if problem:
            raise InputError(problem)
        t = t.clone()
        if size is None:
            return t
        im = to_pil(t)
    elif isinstance(src, Image.Image):
        im = ImageOps.exif_transpose(src)  # a copy, upright like a phone shows it
    elif isinstance(src, np.ndarray):
        arr = _array_to_rgb01(src)
        im = Image.fromarray((arr * 255.0 + 0.5).astype(np.uint8)) if size is not None else None
        if im is None:
            return torch.from_numpy(arr).permute(2, 0, 1).unsqueeze(0).mul(2).sub(1).contiguous()
    elif isinstance(src, (str, os.PathLike)):
        im = _open(src)
    else:
        raise InputError(
            f"cannot load an image from {type(src).__name__}; pass a path, PIL image, numpy array "
            "or tensor"
        )
    if im.width == 0 or im.height == 0:
        raise InputError("image is empty (0 pixels wide or high)")
    if size is not None:
        hw = (size, size) if isinstance(size, int) else tuple(size)
        if im.mode not in ("RGB", "L"):
            im = Image.fromarray((_pil_to_rgb01(im) * 255.0 + 0.5).astype(np.uint8))
        if im.size != (hw[1], hw[0]):
            im = im.resize((hw[1], hw[0]), Image.LANCZOS)
    return pil_to_tensor(im)


def _value_problem(x: torch.Tensor, what: str) -> str | None:
    """What is wrong with the values of a float image tensor meant to be in [-1, 1] (with the fix),
    or None. Reads the tensor only."""
    finite = torch.isfinite(x)
    if not finite.all():
        return (f"{what} contains NaN or infinity ({int((~finite).sum())} of {x.numel()} values), so "
                "every result would be NaN; load the image again with blendlab.load_image, or find the "
                "computation that produced them")
    lo, hi = float(x.min()), float(x.max())
    if lo >= 0 and hi > 2:  # nothing negative, values far above 1: 8-bit pixels
        return (f"{what} holds values from {lo:.4g} to {hi:.4g}, a [0, 255] image, but blendlab images "
                "are float tensors in [-1, 1]; load the file with blendlab.load_image, or convert the "
                "tensor with x / 127.5 - 1 (an image in [0, 1]: x * 2 - 1)")
    return None


def check_image(image, size: int | None = None, what: str = "image") -> None:
    """Validate one image as an edit takes it: a ``(1, 3, H, W)`` float tensor (``size`` x ``size``
    when given: the model's), finite, in blendlab's ``[-1, 1]``. Raises :class:`InputError` saying what
    is wrong and how to convert; the tensor is only read, never modified.

    Values a little outside ``[-1, 1]`` pass: an edit's results are its last x̂0, which is not
    clamped, and may be edited again. Refused: NaN or infinity, integer tensors, and a tensor with no
    negative value that goes above 2 (a [0, 255] image). An image in ``[0, 1]`` cannot be told from a
    bright image in ``[-1, 1]`` without false alarms, so it passes: convert it with ``x * 2 - 1``.
    """
    if not isinstance(image, torch.Tensor) or image.dim() != 4 or image.shape[:2] != (1, 3):
        shape = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
        raise InputError(f"{what} must be a (1, 3, H, W) tensor in [-1, 1], got {shape}; load files, PIL "
                         "images and arrays with blendlab.load_image")
    if size is not None and tuple(image.shape[-2:]) != (size, size):
        raise InputError(f"{what} is {tuple(image.shape[-2:])} but the model works at {size}x{size}; load "
                         "it with load_image(..., size=models.image_size)")
    if not image.is_floating_point():
        raise InputError(f"{what} is a {str(image.dtype).removeprefix('torch.')} tensor, but blendlab images "
                         "are float tensors in [-1, 1]; load it with blendlab.load_image (it converts "
                         "8-bit pixels), or convert it with x.float() / 127.5 - 1")
    problem = _value_problem(image.detach(), what)
    if problem:
        raise InputError(problem)


def as_image_batch(image) -> torch.Tensor:
    """``(B, 3, H, W)`` in [-1, 1] from a batch or one ``(3, H, W)`` tensor (returned as given, not
    copied), or from anything :func:`load_image` takes (a path, PIL image, numpy array)."""
    if isinstance(image, torch.Tensor):
        if image.dim() == 3:
            image = image.unsqueeze(0)
        if image.dim() != 4 or image.shape[1] != 3:
            raise InputError(f"image must be (B, 3, H, W) or (3, H, W) in [-1, 1], got {tuple(image.shape)}")
        return image
    return load_image(image)


def _one(image: torch.Tensor, what: str) -> torch.Tensor:
    if image.dim() == 4:
        if image.shape[0] != 1:
            raise InputError(f"{what} takes one image, got a batch of {image.shape[0]}; index it (images[i])")
        image = image[0]
    if image.dim() != 3 or image.shape[0] not in (1, 3):
        raise InputError(f"{what} expects (3, H, W) or (1, 3, H, W), got {tuple(image.shape)}")
    return image


def to_rgb01(image: torch.Tensor) -> np.ndarray:
    """One image ``(3, H, W)`` / ``(1, 3, H, W)`` in [-1, 1] (any device/dtype) -> ``(H, W, C)``
    float32 array in [0, 1]: ``(x + 1) / 2``, clamped. What figures draw."""
    x = _one(image, "to_rgb01").detach().float().add(1).div(2).clamp(0, 1)
    return x.permute(1, 2, 0).cpu().numpy()


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """One image in [-1, 1] -> ``(H, W, C)`` uint8 array (rounded, clamped)."""
    x = _one(image, "to_uint8").detach().float().add(1).div(2).clamp(0, 1).mul(255).round().byte()
    return x.permute(1, 2, 0).cpu().numpy()


def grad_magnitude(grad: torch.Tensor) -> np.ndarray:
    """``(3, H, W)`` (or ``(1, 3, H, W)``) gradient -> ``(H, W)`` float32 array of ‖g‖₂ over channels."""
    g = grad.detach()
    if g.dim() == 4 and g.shape[0] == 1:
        g = g[0]
    if g.dim() != 3:
        raise InputError(f"expected one gradient (3, H, W), got shape {tuple(grad.shape)}")
    return g.float().norm(dim=0).cpu().numpy()


def heatmap(values, vmax: float | None = None, cmap: str = "magma") -> np.ndarray:
    """``(H, W)`` non-negative values -> ``(H, W, 3)`` uint8 through a matplotlib colormap: 0 is the
    lowest colour, ``vmax`` (default: the largest value) the top one. All zeros stay the lowest colour."""
    from matplotlib import colormaps

    v = np.asarray(values, dtype=np.float32)
    top = float(v.max()) if vmax is None else float(vmax)
    v = v / top if top > 0 else np.zeros_like(v)
    return (colormaps[cmap](np.clip(v, 0, 1))[..., :3] * 255 + 0.5).astype(np.uint8)


def grad_heatmap(grad: torch.Tensor) -> np.ndarray:
    """One gradient -> (H, W, 3) uint8 heatmap of ‖g‖₂ over channels, scaled to its own maximum."""
    return heatmap(grad_magnitude(grad))


def to_pil(image: torch.Tensor) -> Image.Image:
    """One image ``(3, H, W)`` or ``(1, 3, H, W)`` in [-1, 1] -> RGB PIL image (values clamped)."""
    arr = to_uint8(image)
    if arr.shape[-1] == 1:
        return Image.fromarray(arr[..., 0], mode="L")
    return Image.fromarray(arr, mode="RGB")


def to_pil_list(images: torch.Tensor) -> list[Image.Image]:
    """A batch ``(B, 3, H, W)`` in [-1, 1] -> list of PIL images."""
    return [to_pil(im) for im in images]


def atomic_write(path: str | os.PathLike, write) -> Path:
    """Call ``write(tmp_path)`` then move the file into place, so ``path`` is never half-written.
    The file's mode follows the umask (``0o666 & ~umask``), as a plain ``open(path, "w")``'s would."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = str(new_file(path.parent, prefix="." + path.name + ".", suffix=path.suffix))
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def save_image(image: torch.Tensor | Image.Image, path: str | os.PathLike) -> Path:
    """Save an image (tensor in [-1, 1] or PIL) atomically; the format follows the suffix."""
    im = image if isinstance(image, Image.Image) else to_pil(image)
    fmt = Image.registered_extensions().get(Path(path).suffix.lower())
    if fmt is None:
        raise InputError(f"cannot tell the image format of {path}; use a .png or .jpg name")
    return atomic_write(path, lambda tmp: im.save(tmp, format=fmt))


def _grace_hopper() -> Image.Image:
    from matplotlib import cbook

    with cbook.get_sample_data("grace_hopper.jpg") as f:
        return Image.open(f).convert("RGB")


def _shapes(size: int = 256) -> Image.Image:
    """A synthetic scene made by code: sky gradient, grass, a sun and a red box."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / (size - 1)
    img = np.zeros((size, size, 3), np.float32)
    img[..., 0] = 0.35 + 0.3 * y
    img[..., 1] = 0.55 + 0.3 * y
    img[..., 2] = 0.95 - 0.2 * y
    ground = y > 0.62
    img[ground] = np.stack([0.2 + 0.1 * x, 0.55 - 0.15 * y, 0.15 + 0 * x], -1)[ground]
    sun = (x - 0.8) ** 2 + (y - 0.2) ** 2 < 0.01
    img[sun] = (1.0, 0.9, 0.3)
    box = (abs(x - 0.42) < 0.14) & (y > 0.48) & (y < 0.76)
    img[box] = (0.8, 0.15, 0.1)
    return Image.fromarray((img.clip(0, 1) * 255 + 0.5).astype(np.uint8))


SAMPLE_IMAGES = {"grace_hopper": _grace_hopper, "shapes": _shapes}


def sample_image(name: str = "grace_hopper", size: int | None = None) -> torch.Tensor:
    """A sample photo that needs no network: "grace_hopper" (ships with matplotlib) or "shapes"."""
    if name not in SAMPLE_IMAGES:
        raise InputError(f"unknown sample image {name!r}; choose one of {', '.join(SAMPLE_IMAGES)}")
    return load_image(SAMPLE_IMAGES[name](), size=size)
