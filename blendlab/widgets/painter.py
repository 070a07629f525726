"""MaskPainter: paint the edit mask on an ipycanvas, at the model's resolution.

May import: errors, images, masks, widgets._common.
"""

from __future__ import annotations

import math

import ipywidgets as W
import numpy as np
import torch
from ipycanvas import MultiCanvas, hold_canvas
from PIL import Image

from ..errors import InputError
from ..images import load_image
from ..masks import load_mask

from ..images import to_uint8
from ._common import _hw, _union, _callback_error

class MaskPainter:
    """Paint an edit mask over an image with the mouse.

    Args:
        image: (1, 3, H, W) in [-1, 1], or anything :func:`blendlab.load_image` takes.
        size: mask resolution, an int or (H, W). Default: the image's own size (give images at the
            model's size: ``load_image(path, size=models.image_size)``). The image is resized to it.
        display_size: canvas size in screen pixels, an int (long side) or (width, height). Default:
            the mask size times the smallest whole factor that makes the canvas >= 384 px.
        brush: brush diameter in mask pixels (default: about 1/16 of the mask side).
        mask: the starting mask (anything :func:`blendlab.load_mask` takes, of the image's shape).

    Tools: brush and eraser (discs of ``size`` mask pixels along the mouse path), rectangle and
    ellipse (drag from one corner to the opposite one; they add to the mask), undo/redo, clear,
    invert, fill.

    Coordinates: ipycanvas reports mouse positions in canvas pixels (already corrected for any CSS
    scaling of the element). Canvas point ``(x, y)`` lies at mask position
    ``(u, v) = (x * W / canvas_width, y * H / canvas_height)`` in mask pixel units, so mask pixel
    ``[row, col]`` covers ``col <= u < col + 1`` and ``row <= v < row + 1`` (see :meth:`to_mask`).
    A brush of odd diameter is centred on the pixel under the mouse, an even one on the nearest
    pixel corner; a pixel is painted when its centre is within ``diameter / 2`` of the stroke.

    The mouse handlers :meth:`on_mouse_down`, :meth:`on_mouse_move` and :meth:`on_mouse_up` take
    canvas coordinates; they are registered on the top layer of the ``MultiCanvas`` (the layer
    that receives the browser's events) and may be called directly.

    ``painter.mask`` is a (1, 1, H, W) float {0, 1} copy; ``painter.on_change(fn)`` calls ``fn(mask)``
    after each finished change (end of a stroke, a shape, undo, clear, ...).
    """

    TOOLS = ("brush", "eraser", "rectangle", "ellipse")
    MIN_DISPLAY = 384
    TOOLS_WIDTH = 380  # px: the tool rows; their buttons keep whole labels at any page width

    def __init__(self, image, size=None, display_size=None, brush: int | None = None, *, mask=None,
                 color=(255, 40, 40), alpha: float = 0.45, max_history: int = 64):
        img = load_image(image)
        self._image_wh = (int(img.shape[-1]), int(img.shape[-2]))  # the mask must fit this picture
        hw = tuple(img.shape[-2:]) if size is None else _hw(size)
        self.mask_size: tuple[int, int] = (int(hw[0]), int(hw[1]))
        H, W_ = self.mask_size
        if H < 1 or W_ < 1:
            raise InputError(f"mask size must be positive, got {self.mask_size}")
        self._image = img if tuple(img.shape[-2:]) == self.mask_size else load_image(img, size=self.mask_size)
        if display_size is None:
            k = max(1, math.ceil(self.MIN_DISPLAY / max(H, W_)))
            dw, dh = W_ * k, H * k
        elif isinstance(display_size, int):
            s = display_size / max(H, W_)
            dw, dh = max(1, round(W_ * s)), max(1, round(H * s))
        else:
            dw, dh = (int(v) for v in display_size)
        if dw < 1 or dh < 1:
            raise InputError(f"display_size must be positive, got {display_size}")
        if brush is not None and brush < 1:
            raise InputError(f"brush is a diameter in mask pixels and must be at least 1, got {brush}")
        self.display_size: tuple[int, int] = (dw, dh)  # (width, height) of the canvas
        # display pixel -> mask pixel (NEAREST), used to draw the overlay exactly as the mask is.
        self._row_of = (np.arange(dh) * H) // dh
        self._col_of = (np.arange(dw) * W_) // dw
        self._rgba = np.array([*color, round(255 * alpha)], dtype=np.uint8)

        self._mask = (np.zeros(self.mask_size, dtype=bool) if mask is None
                      else self._load_mask(mask))
        self._history = [self._mask.copy()]
        self._pos = 0
        self.max_history = max_history
        self._callbacks: list = []
        self._drag: dict | None = None
        self._preview_box = None

        # widgets
        self.canvas = MultiCanvas(2, width=dw, height=dh,
                                  layout=W.Layout(width=f"{dw}px", height=f"{dh}px"))
        self.tool = W.ToggleButtons(
            options=[("brush", "brush"), ("eraser", "eraser"), ("rectangle", "rectangle"),
                     ("ellipse", "ellipse")],
            value="brush", style={"button_width": "90px"}, tooltips=[
                "paint the edit region", "remove from the edit region",
                "drag from corner to corner", "drag from corner to corner (inscribed ellipse)"])
        default_brush = brush if brush is not None else max(1, round(min(H, W_) / 16))
        self.size_slider = W.IntSlider(value=default_brush, min=1, max=max(2, max(H, W_) // 2, default_brush),
                                       description="size", tooltip="brush diameter in mask pixels",
                                       layout=W.Layout(width=f"{self.TOOLS_WIDTH - 4}px"))
        self.undo_button = W.Button(description="undo", icon="undo", layout=W.Layout(width="76px"))
        self.redo_button = W.Button(description="redo", icon="repeat", layout=W.Layout(width="76px"))
        self.clear_button = W.Button(description="clear", layout=W.Layout(width="68px"))
        self.invert_button = W.Button(description="invert", layout=W.Layout(width="68px"))
        self.fill_button = W.Button(description="fill", layout=W.Layout(width="68px"))
        self.status = W.HTML()
        self.undo_button.on_click(lambda _: self.undo())
        self.redo_button.on_click(lambda _: self.redo())
        self.clear_button.on_click(lambda _: self.clear())
        self.invert_button.on_click(lambda _: self.invert())
        self.fill_button.on_click(lambda _: self.fill())

        # Browser events arrive on the top layer; MultiCanvas.on_mouse_* registers there.
        self.canvas.on_mouse_down(self._guard(self.on_mouse_down))
        self.canvas.on_mouse_move(self._guard(self.on_mouse_move))
        self.canvas.on_mouse_up(self._guard(self.on_mouse_up))
        self.canvas.on_mouse_out(self._guard(self.on_mouse_up))  # a drag leaving the canvas ends
        self.canvas.on_client_ready(self._guard(self.redraw))  # a new browser view starts blank

        self.widget = W.VBox([  # one tool row each, at fixed widths: nothing shrinks or wraps
            self.tool,
            self.size_slider,
            W.HBox([self.undo_button, self.redo_button, self.clear_button, self.invert_button,
                    self.fill_button]),
            self.canvas,
            self.status,
        ], layout=W.Layout(width=f"{max(dw, self.TOOLS_WIDTH)}px"))
        self.redraw()

    # -- display ------------------------------------------------------------------------------
    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)

    def _guard(self, fn):
        """Event callbacks: show an error in the status line (tracebacks in event handlers vanish)."""

        def call(*args):
            try:
                fn(*args)
            except Exception as exc:  # noqa: BLE001 - reported in the widget
                _callback_error(self.status, exc)

        return call

    # -- public state -------------------------------------------------------------------------
    @property
    def mask(self) -> torch.Tensor:
        """(1, 1, H, W) float in {0, 1}, 1 = edit; a copy."""
        return torch.from_numpy(self._mask.astype(np.float32))[None, None]

    @property
    def mask_array(self) -> np.ndarray:
        """(H, W) bool copy."""
        return self._mask.copy()

    @property
    def image(self) -> torch.Tensor:
        """(1, 3, H, W) in [-1, 1] at the mask resolution; a copy."""
        return self._image.clone()

    def set_image(self, image) -> None:
        """Show another image (resized to the mask resolution); the mask is kept."""
        img = load_image(image)
        self._image_wh = (int(img.shape[-1]), int(img.shape[-2]))
        self._image = load_image(img, size=self.mask_size)
        self._draw_image()

    def set_mask(self, mask) -> None:
        """Load a mask (anything :func:`blendlab.load_mask` takes; resized NEAREST); undo restores.
        A mask of another shape than the image's is an InputError, one of another size a warning."""
        self._mask = self._load_mask(mask)
        self._commit()

    def _load_mask(self, mask) -> np.ndarray:
        return load_mask(mask, size=self.mask_size, image_size=self._image_wh)[0, 0].numpy() > 0.5

    def on_change(self, callback, remove: bool = False) -> None:
        """Call ``callback(mask)`` after every finished change of the mask."""
        if remove:
            self._callbacks.remove(callback)
        else:
            self._callbacks.append(callback)

    @property
    def can_undo(self) -> bool:
        return self._pos > 0

    @property
    def can_redo(self) -> bool:
        return self._pos < len(self._history) - 1

    # -- coordinates --------------------------------------------------------------------------
    def to_mask(self, x: float, y: float) -> tuple[float, float]:
        """Canvas pixel (x, y) -> mask position (u, v) in mask pixels (pixel [r, c] spans c..c+1, r..r+1)."""
        dw, dh = self.display_size
        return x * self.mask_size[1] / dw, y * self.mask_size[0] / dh

    # -- mouse --------------------------------------------------------------------------------
    def on_mouse_down(self, x: float, y: float) -> None:
        u, v = self.to_mask(x, y)
        tool = self.tool.value
        self._drag = {"tool": tool, "start": (u, v), "last": (u, v)}
        if tool in ("brush", "eraser"):
            self._stroke((u, v), (u, v), tool == "brush")
        else:
            self._preview((u, v))

    def on_mouse_move(self, x: float, y: float) -> None:
        if self._drag is None:
            return
        u, v = self.to_mask(x, y)
        if self._drag["tool"] in ("brush", "eraser"):
            self._stroke(self._drag["last"], (u, v), self._drag["tool"] == "brush")
        else:
            self._preview((u, v))
        self._drag["last"] = (u, v)

    def on_mouse_up(self, x: float, y: float) -> None:
        if self._drag is None:
            return
        drag, self._drag = self._drag, None
        u, v = self.to_mask(x, y)
        if drag["tool"] in ("brush", "eraser"):
            if (u, v) != drag["last"]:
                self._stroke(drag["last"], (u, v), drag["tool"] == "brush")
        else:
            region = self._apply_shape(self._mask, drag["tool"], drag["start"], (u, v))
            dirty = [b for b in (region, self._preview_box) if b is not None]
            self._preview_box = None
            if dirty:
                self._draw_overlay(_union(dirty))
        self._commit(redraw=False)  # the overlay is already up to date

    # -- operations ---------------------------------------------------------------------------
    def clear(self) -> None:
        self._mask = np.zeros(self.mask_size, dtype=bool)
        self._commit()

    def fill(self) -> None:
        self._mask = np.ones(self.mask_size, dtype=bool)
        self._commit()

    def invert(self) -> None:
        self._mask = ~self._mask
        self._commit()

    def undo(self) -> None:
        if self.can_undo:
            self._pos -= 1
            self._mask = self._history[self._pos].copy()
            self._changed()

    def redo(self) -> None:
        if self.can_redo:
            self._pos += 1
            self._mask = self._history[self._pos].copy()
            self._changed()

    def _commit(self, redraw: bool = True) -> None:
        """Record the current mask in the history (if it changed) and tell the listeners."""
        if np.array_equal(self._mask, self._history[self._pos]):
            self._update_status()
            return
        del self._history[self._pos + 1:]
        self._history.append(self._mask.copy())
        if len(self._history) > self.max_history:
            del self._history[0]
        self._pos = len(self._history) - 1
        self._changed(redraw)

    def _changed(self, redraw: bool = True) -> None:
        if redraw:
            self._draw_overlay()
        self._update_status()
        if self._callbacks:
            m = self.mask
            for fn in list(self._callbacks):
                fn(m)

    def _update_status(self) -> None:
        n = int(self._mask.sum())
        frac = 100.0 * n / self._mask.size
        self.status.value = f"mask: {n} of {self._mask.size} pixels ({frac:.1f}%) to edit"
        self.undo_button.disabled = not self.can_undo
        self.redo_button.disabled = not self.can_redo

    # -- rasterising --------------------------------------------------------------------------
    def _stroke(self, p0, p1, value: bool) -> None:
        """Paint (or erase) discs of the brush diameter along the segment p0 -> p1 (mask units)."""
        d = int(self.size_slider.value)
        r = d / 2.0

        def snap(a):  # odd diameters centre on a pixel, even ones on a pixel corner
            return math.floor(a) + 0.5 if d % 2 else float(round(a))

        x0, y0, x1, y1 = snap(p0[0]), snap(p0[1]), snap(p1[0]), snap(p1[1])
        H, W_ = self.mask_size
        c0, c1 = max(0, math.floor(min(x0, x1) - r)), min(W_, math.ceil(max(x0, x1) + r) + 1)
        r0, r1 = max(0, math.floor(min(y0, y1) - r)), min(H, math.ceil(max(y0, y1) + r) + 1)
        if c0 >= c1 or r0 >= r1:
            return
        yy, xx = np.mgrid[r0:r1, c0:c1].astype(np.float64) + 0.5
        dx, dy = x1 - x0, y1 - y0
        length2 = dx * dx + dy * dy
        t = np.zeros_like(xx) if length2 == 0 else np.clip(((xx - x0) * dx + (yy - y0) * dy) / length2, 0, 1)
        hit = (xx - x0 - t * dx) ** 2 + (yy - y0 - t * dy) ** 2 <= r * r + 1e-9
        self._mask[r0:r1, c0:c1][hit] = value
        self._draw_overlay((r0, r1, c0, c1))

    def _shape_region(self, a, b):
        """Pixel index box (i0, i1, j0, j1), inclusive, of a corner-to-corner drag (unclipped)."""
        j0, j1 = sorted((math.floor(a[0]), math.floor(b[0])))
        i0, i1 = sorted((math.floor(a[1]), math.floor(b[1])))
        H, W_ = self.mask_size
        if i1 < 0 or j1 < 0 or i0 >= H or j0 >= W_:
            return None
        return i0, i1, j0, j1

    def _apply_shape(self, target: np.ndarray, tool: str, a, b):
        """Set the rectangle/ellipse pixels of a drag in ``target``; return the clipped region."""
        box = self._shape_region(a, b)
        if box is None:
            return None
        i0, i1, j0, j1 = box
        H, W_ = self.mask_size
        r0, r1, c0, c1 = max(0, i0), min(H, i1 + 1), max(0, j0), min(W_, j1 + 1)
        if tool == "rectangle":
            target[r0:r1, c0:c1] = True
        else:  # the ellipse inscribed in the box of pixels [i0..i1] x [j0..j1]
            cy, cx = (i0 + i1 + 1) / 2.0, (j0 + j1 + 1) / 2.0
            ry, rx = (i1 + 1 - i0) / 2.0, (j1 + 1 - j0) / 2.0
            yy, xx = np.mgrid[r0:r1, c0:c1].astype(np.float64) + 0.5
            inside = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1.0 + 1e-9
            target[r0:r1, c0:c1] |= inside
        return r0, r1, c0, c1

    def _preview(self, b) -> None:
        """Show the shape being dragged as it will be added (only the changed area is redrawn)."""
        preview = self._mask.copy()
        region = self._apply_shape(preview, self._drag["tool"], self._drag["start"], b)
        dirty = [box for box in (region, self._preview_box) if box is not None]
        self._preview_box = region
        if dirty:
            self._draw_overlay(_union(dirty), preview)

    # -- drawing ------------------------------------------------------------------------------
    def overlay_rgba(self, mask: np.ndarray | None = None) -> np.ndarray:
        """The overlay layer as drawn: (display_h, display_w, 4) uint8, the colour where mask is 1."""
        m = self._mask if mask is None else mask
        sub = m[np.ix_(self._row_of, self._col_of)]
        out = np.zeros((*sub.shape, 4), dtype=np.uint8)
        out[sub] = self._rgba
        return out

    def redraw(self) -> None:
        """Redraw both layers (e.g. for a browser view that connected late)."""
        self._draw_image()
        self._draw_overlay()

    def _draw_overlay(self, region=None, mask: np.ndarray | None = None) -> None:
        """Redraw the overlay layer: all of it, or only the mask-pixel box ``(r0, r1, c0, c1)``."""
        H, W_ = self.mask_size
        r0, r1, c0, c1 = region if region is not None else (0, H, 0, W_)
        y0, y1 = np.searchsorted(self._row_of, [r0, r1])
        x0, x1 = np.searchsorted(self._col_of, [c0, c1])
        if y1 <= y0 or x1 <= x0:
            return
        m = self._mask if mask is None else mask
        sub = m[np.ix_(self._row_of[y0:y1], self._col_of[x0:x1])]
        rgba = np.zeros((*sub.shape, 4), dtype=np.uint8)
        rgba[sub] = self._rgba
        layer = self.canvas[1]
        with hold_canvas():  # putImageData composites, so clear the area first
            layer.clear_rect(int(x0), int(y0), int(x1 - x0), int(y1 - y0))
            layer.put_image_data(rgba, int(x0), int(y0))

    def _draw_image(self) -> None:
        dw, dh = self.display_size
        im = Image.fromarray(to_uint8(self._image[0]))
        resample = Image.NEAREST if dw >= im.width and dh >= im.height else Image.LANCZOS
        rgb = np.asarray(im.resize((dw, dh), resample))
        rgba = np.concatenate([rgb, np.full((dh, dw, 1), 255, np.uint8)], axis=-1)  # RGBA: sent as PNG
        self.canvas[0].put_image_data(rgba, 0, 0)
        self._update_status()

    def composite(self) -> Image.Image:
        """The image with the mask overlay, as on the canvas (a PIL image, for saving or figures)."""
        dw, dh = self.display_size
        im = Image.fromarray(to_uint8(self._image[0])).resize((dw, dh), Image.NEAREST).convert("RGBA")
        return Image.alpha_composite(im, Image.fromarray(self.overlay_rgba(), "RGBA")).convert("RGB")


# == StepScrubber ===============================================================================
