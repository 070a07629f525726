"""Small helpers shared by the widgets: PNG bytes, uint8 arrays, sizes, error display.

May import: nothing.
"""

from __future__ import annotations

import html
import io
import math

import ipywidgets as W
from PIL import Image


def _png(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def _enlarge(im: Image.Image, target: int, side: str = "long") -> Image.Image:
    """Scale up by a whole factor (NEAREST: pixels stay visible) until the long side (or the
    height, ``side="height"``) is >= target."""
    ref = im.height if side == "height" else max(im.size)
    k = max(1, math.ceil(target / ref))
    return im if k == 1 else im.resize((im.width * k, im.height * k), Image.NEAREST)


def placeholder_png(width: int, height: int, text: str = "") -> bytes:
    """A light grey PNG tile with ``text`` in the middle: what an image widget shows before it has
    a picture (an ``ipywidgets.Image`` without a value is a broken image in the browser)."""
    from PIL import ImageDraw

    im = Image.new("RGB", (int(width), int(height)), (236, 236, 236))
    if text:
        draw = ImageDraw.Draw(im)
        box = draw.textbbox((0, 0), text)
        xy = ((width - (box[2] - box[0])) / 2, (height - (box[3] - box[1])) / 2)
        draw.text(xy, text, fill=(110, 110, 110))
    return _png(im)


def _hw(size) -> tuple[int, int]:
    if isinstance(size, int):
        return size, size
    h, w = (int(v) for v in size)
    return h, w


def _union(boxes) -> tuple[int, int, int, int]:
    """Bounding box of (r0, r1, c0, c1) boxes."""
    return (min(b[0] for b in boxes), max(b[1] for b in boxes),
            min(b[2] for b in boxes), max(b[3] for b in boxes))


def _callback_error(status: W.HTML, exc: BaseException) -> None:
    status.value = f"<span style='color:#b00020'>{html.escape(f'{type(exc).__name__}: {exc}')}</span>"


# == MaskPainter ================================================================================
