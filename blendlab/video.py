"""Frames of a trajectory with their step and t written under them, written as a video file.

The encoders are PIL's (GIF, animated PNG, animated WebP) and, for MP4, imageio's ffmpeg plugin when
it is installed (``pip install "imageio[ffmpeg]"``); nothing is encoded by hand. The format follows
the file name:

| suffix | encoder | colours |
|---|---|---|
| ``.gif`` | PIL | at most 256 per frame (dithered): small, plays everywhere |
| ``.apng``, ``.png`` | PIL (animated PNG) | lossless: every frame is the exact uint8 image |
| ``.webp`` | PIL (lossless animated WebP) | lossless |
| ``.mp4`` | imageio + ffmpeg (H.264) | lossy; sizes padded to a multiple of 16 |

May import: errors, images.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .errors import InputError

__all__ = ["VIDEO_SUFFIXES", "check_format", "captioned_frames", "write_video"]

VIDEO_SUFFIXES = (".gif", ".apng", ".png", ".webp", ".mp4")
MIN_WIDTH = 160  # px: frames narrower than this are enlarged (NEAREST, by a whole factor) to fit the caption
FONT_PX = 11
BAND = (24, 24, 24)
TEXT = (240, 240, 240)


@functools.lru_cache(maxsize=4)
def _font(px: int) -> ImageFont.ImageFont:
    from matplotlib import font_manager  # DejaVu Sans ships with matplotlib

    return ImageFont.truetype(font_manager.findfont("DejaVu Sans"), px)


def captioned_frames(images, captions, scale: int | None = None) -> list[Image.Image]:
    """Each ``(h, w, 3)`` uint8 image over a dark band holding its caption.

    The image part of a frame is the image itself, enlarged ``scale`` times with NEAREST (None: the
    smallest whole factor that makes it at least :data:`MIN_WIDTH` px wide; 1 for 256 px images), so
    ``frame[:h*scale:scale, ::scale]`` gives the image back exactly.
    """
    images = [np.asarray(im) for im in images]
    if len(images) != len(captions):
        raise InputError(f"got {len(captions)} captions for {len(images)} frames")
    if not images:
        raise InputError("no frames to write: the recording has no steps for this selection")
    h, w = images[0].shape[:2]
    k = max(1, math.ceil(MIN_WIDTH / w)) if scale is None else int(scale)
    if k < 1:
        raise InputError(f"scale must be a whole number >= 1, got {scale}")
    font = _font(FONT_PX)
    band = FONT_PX + 7
    frames = []
    for arr, text in zip(images, captions):
        if arr.shape[:2] != (h, w):
            raise InputError(f"frames differ in size: {arr.shape[:2]} vs {(h, w)}")
        im = Image.fromarray(arr).convert("RGB")
        if k > 1:
            im = im.resize((w * k, h * k), Image.NEAREST)
        frame = Image.new("RGB", (w * k, h * k + band), BAND)
        frame.paste(im, (0, 0))
        ImageDraw.Draw(frame).text((4, h * k + 3), text, fill=TEXT, font=font)
        frames.append(frame)
    return frames


def _pad16(frame: Image.Image) -> np.ndarray:
    arr = np.asarray(frame)
    h, w = arr.shape[:2]
    return np.pad(arr, ((0, -h % 16), (0, -w % 16), (0, 0)), constant_values=BAND[0])


def check_format(path) -> str:
    """The lower-case suffix of ``path`` if blendlab can write that video format here, else a clear
    InputError (an unknown suffix; .mp4 without imageio)."""
    suffix = Path(path).suffix.lower() if Path(path).suffix else "." + str(path).lower().lstrip(".")
    if suffix not in VIDEO_SUFFIXES:
        raise InputError(f"cannot tell the video format of {Path(path).name!r}; end the name in one of "
                         f"{', '.join(VIDEO_SUFFIXES)}")
    if suffix == ".mp4":
        try:
            import imageio.v3  # noqa: F401
        except ImportError:
            raise InputError('writing .mp4 needs imageio with ffmpeg: pip install "imageio[ffmpeg]" '
                             "(or write a .gif / .apng instead)") from None
    return suffix


def _mp4(tmp: str, frames: list, fps: float) -> None:
    import imageio.v3 as iio

    try:
        iio.imwrite(tmp, np.stack([_pad16(f) for f in frames]), extension=".mp4", fps=fps, codec="libx264")
    except (ImportError, RuntimeError, OSError, ValueError) as exc:
        raise InputError(f'writing .mp4 failed ({exc}); install an ffmpeg backend: pip install "imageio[ffmpeg]" '
                         "(or write a .gif / .apng instead)") from None


def write_video(path, frames: list[Image.Image], fps: float = 8) -> Path:
    """Write PIL frames as an animation, atomically; the format follows the suffix (see the module)."""
    from .images import atomic_write

    path = Path(path)
    suffix = check_format(path)
    if not frames:
        raise InputError("no frames to write")
    if not fps > 0:
        raise InputError(f"fps must be positive, got {fps}")
    duration = max(20, round(1000 / fps))  # ms; browsers slow down GIF frames shorter than 20 ms
    if suffix == ".mp4":
        return atomic_write(path, lambda tmp: _mp4(tmp, frames, fps))
    fmt = {".gif": "GIF", ".webp": "WEBP"}.get(suffix, "PNG")
    options = {"lossless": True} if fmt == "WEBP" else {}
    return atomic_write(path, lambda tmp: frames[0].save(
        tmp, format=fmt, save_all=True, append_images=frames[1:], duration=duration, loop=0, **options))
