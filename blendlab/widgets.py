"""Notebook widgets: paint a mask, scrub through a recorded trajectory, edit in one cell.

- :class:`MaskPainter`: brush, eraser, rectangle and ellipse on an ipycanvas, with undo/redo;
  ``painter.mask`` is the (1, 1, H, W) {0, 1} mask at the model's resolution.
- :class:`StepScrubber`: a slider (and a Play button) over the steps a :class:`blendlab.Recorder`
  kept: x_t, x̂0, |grad|, fg, bg, x_{t-1}, the mask overlay; with t, ᾱ_t and the losses.
- :class:`EditorApp`: image, mask, prompt, settings, Run/Stop, progress, x̂0 preview, ranked gallery.

Pictures reach the browser as PNG bytes (``ipywidgets.Image``) or ``put_image_data`` on a canvas.
"""

from __future__ import annotations

import html
import io
import math
import threading
import time
import warnings

import ipywidgets as W
import numpy as np
import torch
import torch.nn.functional as F
from ipycanvas import MultiCanvas, hold_canvas
from PIL import Image

from .errors import BlendlabError, InputError
from .images import SAMPLE_IMAGES, load_image, sample_image
from .masks import check_mask, load_mask
from .sampler import EditConfig, edit

__all__ = ["MaskPainter", "StepScrubber", "EditorApp", "EditSettings", "SETTINGS", "default_settings"]


# -- small helpers ----------------------------------------------------------------------------
def _png(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def _uint8(image: torch.Tensor) -> np.ndarray:
    """(3, H, W) in [-1, 1] -> (H, W, 3) uint8."""
    x = image.detach().float().add(1).div(2).clamp(0, 1).mul(255).round().byte()
    return x.permute(1, 2, 0).cpu().numpy()


def _enlarge(im: Image.Image, target: int, side: str = "long") -> Image.Image:
    """Scale up by a whole factor (NEAREST: pixels stay visible) until the long side (or the
    height, ``side="height"``) is >= target."""
    ref = im.height if side == "height" else max(im.size)
    k = max(1, math.ceil(target / ref))
    return im if k == 1 else im.resize((im.width * k, im.height * k), Image.NEAREST)


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
class MaskPainter:
    """Paint an edit mask over an image with the mouse.

    Args:
        image: (1, 3, H, W) in [-1, 1], or anything :func:`blendlab.load_image` takes.
        size: mask resolution, an int or (H, W). Default: the image's own size (give images at the
            model's size: ``load_image(path, size=models.image_size)``). The image is resized to it.
        display_size: canvas size in screen pixels, an int (long side) or (width, height). Default:
            the mask size times the smallest whole factor that makes the canvas >= 384 px.
        brush: brush diameter in mask pixels (default: about 1/16 of the mask side).

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

    def __init__(self, image, size=None, display_size=None, brush: int | None = None, *,
                 color=(255, 40, 40), alpha: float = 0.45, max_history: int = 64):
        img = load_image(image)
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

        self._mask = np.zeros(self.mask_size, dtype=bool)
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
            value="brush", style={"button_width": "80px"}, tooltips=[
                "paint the edit region", "remove from the edit region",
                "drag from corner to corner", "drag from corner to corner (inscribed ellipse)"])
        default_brush = brush if brush is not None else max(1, round(min(H, W_) / 16))
        self.size_slider = W.IntSlider(value=default_brush, min=1, max=max(2, max(H, W_) // 2, default_brush),
                                       description="size", tooltip="brush diameter in mask pixels",
                                       layout=W.Layout(width="260px"))
        self.undo_button = W.Button(description="undo", icon="undo", layout=W.Layout(width="80px"))
        self.redo_button = W.Button(description="redo", icon="repeat", layout=W.Layout(width="80px"))
        self.clear_button = W.Button(description="clear", layout=W.Layout(width="70px"))
        self.invert_button = W.Button(description="invert", layout=W.Layout(width="70px"))
        self.fill_button = W.Button(description="fill", layout=W.Layout(width="70px"))
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

        self.widget = W.VBox([
            W.HBox([self.tool, self.size_slider]),
            W.HBox([self.undo_button, self.redo_button, self.clear_button, self.invert_button,
                    self.fill_button]),
            self.canvas,
            self.status,
        ])
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
        self._image = load_image(image, size=self.mask_size)
        self._draw_image()

    def set_mask(self, mask) -> None:
        """Load a mask (anything :func:`blendlab.load_mask` takes; resized NEAREST); undo restores."""
        self._mask = load_mask(mask, size=self.mask_size)[0, 0].numpy() > 0.5
        self._commit()

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
        im = Image.fromarray(_uint8(self._image[0]))
        resample = Image.NEAREST if dw >= im.width and dh >= im.height else Image.LANCZOS
        rgb = np.asarray(im.resize((dw, dh), resample))
        rgba = np.concatenate([rgb, np.full((dh, dw, 1), 255, np.uint8)], axis=-1)  # RGBA: sent as PNG
        self.canvas[0].put_image_data(rgba, 0, 0)
        self._update_status()

    def composite(self) -> Image.Image:
        """The image with the mask overlay, as on the canvas (a PIL image, for saving or figures)."""
        dw, dh = self.display_size
        im = Image.fromarray(_uint8(self._image[0])).resize((dw, dh), Image.NEAREST).convert("RGBA")
        return Image.alpha_composite(im, Image.fromarray(self.overlay_rgba(), "RGBA")).convert("RGB")


# == StepScrubber ===============================================================================
_FIELD_LABELS = {
    "x_t": "x_t: input of the step",
    "pred_x0": "x̂0: the clean image predicted from x_t",
    "pred_x0_guided": "x̂0 after the guided score (DDIM)",
    "grad": "|grad|: size of the guidance gradient (normalised per image)",
    "fg": "fg: guided x_{t-1} before blending",
    "bg": "bg: the input noised to step t",
    "x_prev": "x_{t-1}: after blending fg and bg by the mask",
    "mask": "mask overlay on x_{t-1}",
    "input": "the input image",
}


class StepScrubber:
    """Browse what a :class:`blendlab.Recorder` kept, step by step.

    Args:
        recording: a Recorder that was passed as a hook to ``bl.edit`` / ``BlendedSampler.run``.
        init_image: the input (1, 3, H, W) in [-1, 1], adds an "input" view.
        display_size: shown images are enlarged (NEAREST) until their long side is at least this.
        interval: milliseconds per frame of the Play button.

    ``scrubber.show(step_pos, field=..., sample=...)`` selects a view (``step_pos`` indexes the
    recorded steps of the current iteration); ``current_image()`` is the PIL image on screen and
    ``info`` the text under it.
    """

    def __init__(self, recording, init_image=None, display_size: int = 256, interval: int = 300):
        steps = list(getattr(recording, "steps", []))
        if not steps:
            raise InputError(
                "the recording has no steps: pass the Recorder to the edit as a hook "
                "(bl.edit(..., hooks=[recorder])) and run it before building a StepScrubber"
            )
        self.recording = recording
        self.display_size = int(display_size)
        recorded = [name for name in _FIELD_LABELS if name in steps[0].fields]
        if not recorded:
            raise InputError("the recording holds no image fields; record e.g. fields=('x_t', 'pred_x0')")
        options = [(_FIELD_LABELS[n], n) for n in recorded]
        self._mask = getattr(recording, "mask", None)
        if "x_prev" in recorded and self._mask is not None:
            options.append((_FIELD_LABELS["mask"], "mask"))
        self._init = None
        if init_image is not None:
            self._init = load_image(init_image)
            options.append((_FIELD_LABELS["input"], "input"))
        self.iterations = sorted({s.iteration for s in steps})
        batch = next(iter(steps[0].fields.values())).shape[0]

        self.slider = W.IntSlider(value=0, min=0, max=0, description="step", continuous_update=True,
                                  layout=W.Layout(width="420px"))
        self.play = W.Play(value=0, min=0, max=0, interval=int(interval), description="play")
        self._link = W.link((self.play, "value"), (self.slider, "value"))
        self.field = W.Dropdown(options=options, value=recorded[0] if "x_t" not in recorded else "x_t",
                                description="show", layout=W.Layout(width="420px"))
        self.sample = W.Dropdown(options=[(f"sample {b}", b) for b in range(batch)], value=0,
                                 description="sample", layout=W.Layout(width="200px"))
        self.iteration = W.Dropdown(options=[(f"batch {i + 1}", i) for i in self.iterations],
                                    value=self.iterations[0], description="iteration",
                                    layout=W.Layout(width="200px",
                                                    display=None if len(self.iterations) > 1 else "none"))
        self.image = W.Image(format="png")
        self.info_html = W.HTML()
        self.caption = W.HTML()
        self._current: Image.Image | None = None
        self._quiet = False
        self._select_iteration(self.iterations[0])
        for w in (self.slider, self.field, self.sample):
            w.observe(self._on_widget, names="value")
        self.iteration.observe(self._on_iteration, names="value")
        self.widget = W.VBox([
            W.HBox([self.play, self.slider]),
            W.HBox([self.field, self.sample, self.iteration]),
            self.image,
            self.info_html,
            self.caption,
        ], layout=W.Layout(align_items="flex-start"))  # images at their own size, not stretched
        self._render()

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)

    # -- selection ----------------------------------------------------------------------------
    def _select_iteration(self, iteration: int) -> None:
        self._steps = [s for s in self.recording.steps if s.iteration == iteration]
        last = len(self._steps) - 1
        self._quiet = True
        try:
            self.slider.value = min(self.slider.value, last)
            self.play.value = min(self.play.value, last)
            self.slider.max = last
            self.play.max = last
        finally:
            self._quiet = False

    def _on_iteration(self, change) -> None:
        self._select_iteration(change["new"])
        if not self._quiet:
            self._render()

    def _on_widget(self, change) -> None:
        if not self._quiet:
            self._render()

    def show(self, step_pos: int | None = None, field: str | None = None, sample: int | None = None,
             iteration: int | None = None) -> Image.Image:
        """Select a recorded step (position in this iteration's list), a field, a sample; return the image."""
        self._quiet = True
        try:
            if iteration is not None:
                if iteration not in self.iterations:
                    raise InputError(f"iteration {iteration} was not recorded; recorded: {self.iterations}")
                self.iteration.value = iteration
                self._select_iteration(iteration)
            if field is not None:
                names = [v for _, v in self.field.options]
                if field not in names:
                    raise InputError(f"field {field!r} is not available; choose one of {', '.join(names)}")
                self.field.value = field
            if sample is not None:
                if not 0 <= sample < len(self.sample.options):
                    raise InputError(f"sample {sample} out of range: the batch has {len(self.sample.options)}")
                self.sample.value = sample
            if step_pos is not None:
                n = len(self._steps)
                if not -n <= step_pos < n:
                    raise InputError(f"step_pos {step_pos} out of range: {n} steps were recorded")
                self.slider.value = step_pos % n
        finally:
            self._quiet = False
        self._render()
        return self._current

    @property
    def step(self):
        """The RecordedStep on screen."""
        return self._steps[self.slider.value]

    def current_image(self) -> Image.Image:
        return self._current

    @property
    def info(self) -> str:
        return self._info

    # -- rendering ----------------------------------------------------------------------------
    def render_array(self, step, field: str, sample: int) -> np.ndarray:
        """(h, w, 3) uint8 of one view of one recorded step, before enlarging."""
        if field == "input":
            size = next(iter(step.fields.values())).shape[-2:]
            return _uint8(F.interpolate(self._init.float(), size=tuple(size), mode="bilinear",
                                        antialias=True, align_corners=False)[0])
        if field == "grad":
            mag = step.fields["grad"][sample].float().norm(dim=0)
            top = float(mag.max())
            mag = (mag / top) if top > 0 else mag
            from matplotlib import colormaps

            return (colormaps["magma"](mag.numpy())[..., :3] * 255 + 0.5).astype(np.uint8)
        if field == "mask":
            base = _uint8(step.fields["x_prev"][sample]).astype(np.float32)
            m = self._mask.float()
            if m.shape[-2:] != base.shape[:2]:
                m = F.interpolate(m, size=base.shape[:2], mode="nearest")
            m = m[0, 0].numpy()[..., None]
            tint = np.array([255, 40, 40], np.float32)
            return (base * (1 - 0.35 * m) + tint * 0.35 * m).round().astype(np.uint8)
        return _uint8(step.fields[field][sample])

    def _render(self) -> None:
        step = self.step
        field, sample = self.field.value, self.sample.value
        im = _enlarge(Image.fromarray(self.render_array(step, field, sample)), self.display_size)
        if field == "mask":  # outline the mask at screen resolution, one pixel wide
            big = F.interpolate(self._mask.float(), size=(im.height, im.width), mode="nearest")[0, 0] > 0.5
            inner = -F.max_pool2d(-big.float()[None, None], 3, 1, 1)[0, 0] > 0.5
            edge = (big & ~inner).numpy()
            arr = np.asarray(im).copy()
            arr[edge] = (255, 230, 0)
            im = Image.fromarray(arr)
        self._current = im
        self.image.value = _png(im)
        parts = [f"step {step.index + 1}/{step.num_steps}", f"t = {step.t}", f"ᾱ_t = {step.alpha_bar:.4f}"]
        parts += [f"{k} loss = {v:.4g}" for k, v in step.losses.items()]
        if len(self.iterations) > 1:
            parts.append(f"batch {step.iteration + 1}")
        if field == "grad" and not bool(step.fields["grad"][sample].abs().sum() > 0):
            parts.append("(grad is zero: no guidance)")
        self._info = " · ".join(parts)
        self.info_html.value = f"<code>{html.escape(self._info)}</code>"
        self.caption.value = f"<i>{html.escape(_FIELD_LABELS[field])}</i>"


# == EditorApp ==================================================================================
#: The EditConfig fields EditorApp exposes, in display order.
SETTINGS = ("skip_timesteps", "timestep_respacing", "aug_num", "clip_guidance_lambda", "range_lambda",
            "batch_size", "iterations_num", "seed", "ddim", "invert_mask", "local_clip_guided_diffusion")


def default_settings(tiny: bool) -> dict:
    """EditConfig's defaults for :data:`SETTINGS`; with ``tiny`` the notebook TINY_SETTINGS on top."""
    from .notebook import TINY_SETTINGS

    base = EditConfig()
    values = {name: getattr(base, name) for name in SETTINGS}
    if tiny:
        values.update({k: v for k, v in TINY_SETTINGS.items() if k in values})
    return values


class EditSettings:
    """Form widgets for :data:`SETTINGS`; ``values()`` parses them (``InputError`` on bad input)."""

    def __init__(self, tiny: bool = False):
        self.defaults = default_settings(tiny)
        style = {"description_width": "150px"}
        lay = W.Layout(width="300px")
        self.controls: dict[str, W.Widget] = {}
        for name, value in self.defaults.items():
            label = name.replace("_", " ")
            if isinstance(value, bool):
                w = W.Checkbox(value=value, description=label, style=style, indent=False)
            elif name == "seed":
                w = W.Text(value="" if value is None else str(value), description="seed (empty: random)",
                           style=style, layout=lay)
            elif isinstance(value, int):
                w = W.IntText(value=value, description=label, style=style, layout=lay)
            elif isinstance(value, float):
                w = W.FloatText(value=value, description=label, style=style, layout=lay)
            else:
                w = W.Text(value=str(value), description=label, style=style, layout=lay)
            self.controls[name] = w
        self.widget = W.VBox(list(self.controls.values()))

    def values(self) -> dict:
        out = {}
        for name, w in self.controls.items():
            v = w.value
            if name == "seed":
                text = str(v).strip()
                if text == "":
                    v = None
                else:
                    try:
                        v = int(text)
                    except ValueError:
                        raise InputError(f"seed {text!r} is not a whole number; type one, or leave it "
                                         "empty for a random seed") from None
            out[name] = v
        return out

    def set(self, **values) -> None:
        for name, v in values.items():
            if name not in self.controls:
                raise InputError(f"{name!r} is not an app setting; settings: {', '.join(SETTINGS)}")
            self.controls[name].value = ("" if v is None else str(v)) if name == "seed" else v


class _Stopped(Exception):
    """Raised by the app's hook when Stop was pressed."""


class EditorApp:
    """Blended Diffusion in one cell: pick an image, paint a mask, type a prompt, press Run.

    Args:
        models: from :func:`blendlab.load_models` (or a ``NotebookEnv``: its models are loaded).
        image: optional start image (anything :func:`blendlab.load_image` takes); else a sample.
        prompt: initial prompt text.
        preview_every: update the x̂0 preview every k steps (default: about 10 previews per run).

    Settings default to ``EditConfig()`` (the paper's), or to ``blendlab.notebook.TINY_SETTINGS``
    for tiny models. Run works in a background thread so the page stays live and Stop can cancel
    between two steps; ``app.run(block=True)`` runs in the caller's thread (scripts, tests).
    ``app.result`` is the :class:`blendlab.EditResult`; ``app.message`` the status text.
    """

    def __init__(self, models, image=None, *, prompt: str = "", preview_every: int | None = None,
                 display_size=None):
        if hasattr(models, "load_models") and not hasattr(models, "unet"):
            models = models.load_models()
        self.models = models
        self.size = int(models.image_size)
        self.preview_every = preview_every
        self.result = None
        self.recorder = None
        self.scrubber = None
        self.steps_done = 0
        self._thread: threading.Thread | None = None
        self._stop_flag = threading.Event()
        self._running = False
        self._message = ""

        self._sources: dict[str, torch.Tensor] = {}
        options = []
        if image is not None:
            self._sources["given"] = load_image(image, size=self.size)
            options.append(("your image", "given"))
        options += [(f"sample: {name}", name) for name in SAMPLE_IMAGES]
        self.source = W.Dropdown(options=options, value=options[0][1], description="image")
        self.upload = W.FileUpload(accept="image/*", multiple=False, description="upload")
        self.painter = MaskPainter(self._load_source(self.source.value), display_size=display_size)
        self.prompt = W.Text(value=prompt, description="prompt",
                             placeholder="what the masked region should become, e.g. 'a stone wall'",
                             layout=W.Layout(width="420px"))
        self.settings = EditSettings(tiny=models.is_tiny)
        self.record = W.Checkbox(value=False, description="record steps (step scrubber)", indent=False)
        self.run_button = W.Button(description="Run", button_style="success", icon="play")
        self.stop_button = W.Button(description="Stop", button_style="danger", icon="stop", disabled=True)
        self.progress = W.IntProgress(value=0, min=0, max=1, description="steps")
        self.status = W.HTML()
        self.preview = W.Image(format="png")
        self.gallery = W.HBox(layout=W.Layout(flex_flow="row wrap"))
        self.scrubber_box = W.VBox()

        self.source.observe(self._on_source, names="value")
        self.upload.observe(self._on_upload, names="value")
        self.run_button.on_click(lambda _: self.run(block=False))
        self.stop_button.on_click(lambda _: self.stop())

        kind = ("tiny random-weight models: mechanics only, pictures are noise-like"
                if models.is_tiny else "the paper's settings")
        header = W.HTML(f"<b>Blended Diffusion editor</b> · model {html.escape(models.preset)} "
                        f"({models.image_size}×{models.image_size}, {html.escape(kind)})")
        controls = W.VBox([self.prompt, self.settings.widget, self.record,
                           W.HBox([self.run_button, self.stop_button]), self.progress, self.status])
        self.widget = W.VBox([
            header,
            W.HBox([self.source, self.upload]),
            W.HBox([self.painter.widget, controls]),
            W.HTML("<b>x̂0 preview</b> (current prediction of the clean images)"), self.preview,
            W.HTML("<b>results</b>, best CLIP distance first"), self.gallery,
            self.scrubber_box,
        ], layout=W.Layout(align_items="flex-start"))

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)

    # -- status ---------------------------------------------------------------------------------
    @property
    def message(self) -> str:
        """The status text shown in the app."""
        return self._message

    def _say(self, text: str, kind: str = "info") -> None:
        self._message = text
        colour = {"info": "#333", "error": "#b00020", "warn": "#8a5a00"}[kind]
        self.status.value = f"<span style='color:{colour}'>{html.escape(text)}</span>"

    @property
    def running(self) -> bool:
        return self._running

    # -- image source -----------------------------------------------------------------------------
    def _load_source(self, key: str) -> torch.Tensor:
        if key in self._sources:
            return self._sources[key]
        return sample_image(key, size=self.size)

    def _on_source(self, change) -> None:
        try:
            self.painter.set_image(self._load_source(change["new"]))
        except (BlendlabError, ValueError, OSError) as exc:
            self._say(str(exc), "error")

    def _on_upload(self, change) -> None:
        files = change["new"]
        if not files:
            return
        f = files[0]
        self.load_bytes(bytes(f["content"]), name=f.get("name", "upload"))

    def load_bytes(self, data: bytes, name: str = "upload") -> bool:
        """Use an uploaded file's bytes as the image; False (and a message) if unreadable."""
        try:
            with Image.open(io.BytesIO(data)) as im:
                im.load()
                tensor = load_image(im, size=self.size)  # upright by its EXIF orientation
        except (OSError, SyntaxError, BlendlabError, ValueError) as exc:
            self._say(f"could not read {name}: {exc}. Upload a PNG or JPEG image.", "error")
            return False
        key = f"upload:{name}"
        self._sources[key] = tensor
        if key not in [v for _, v in self.source.options]:
            self.source.options = [*self.source.options, (f"upload: {name}", key)]
        if self.source.value == key:
            self.painter.set_image(tensor)
        else:
            self.source.value = key
        self._say(f"loaded {name}, resized to {self.size}×{self.size}")
        return True

    # -- running --------------------------------------------------------------------------------
    def config(self) -> EditConfig:
        """The EditConfig the Run button would use (raises InputError on bad settings)."""
        extra = {"model_output_size": 512} if self.size == 512 else {}
        return EditConfig(prompt=self.prompt.value.strip(), **extra, **self.settings.values())

    def _prepare(self):
        cfg = self.config()
        if not cfg.prompt and cfg.clip_guidance_lambda:
            raise InputError("the prompt is empty: type what the masked region should become "
                             "(or set clip guidance lambda to 0 for unguided sampling)")
        image, mask = self.painter.image, self.painter.mask
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            check_mask(1.0 - mask if cfg.invert_mask else mask, image)  # the library's own checks
        note = "; ".join(str(w.message) for w in caught)
        return cfg, image, mask, note

    def run(self, block: bool = False, hooks=()):
        """Start an edit with the current inputs. ``block=True`` runs here and returns the result;
        otherwise a background thread runs it (returned). Bad inputs are reported in the app."""
        if self._running:
            self._say("an edit is already running; press Stop first", "warn")
            return None
        try:
            cfg, image, mask, note = self._prepare()
        except (BlendlabError, ValueError) as exc:
            self._say(str(exc), "error")
            return None
        self._running = True
        self._stop_flag.clear()
        self.result = None
        self.steps_done = 0
        self.progress.max = cfg.num_steps * cfg.iterations_num
        self.progress.value = 0
        self.gallery.children = ()
        self.run_button.disabled, self.stop_button.disabled = True, False
        self._say(f"running {cfg.iterations_num} × {cfg.batch_size} samples, {cfg.num_steps} steps each"
                  + (f" ({note})" if note else ""))
        args = (cfg, image, mask, list(hooks), note)
        if block:
            self._work(*args)
            return self.result
        self._thread = threading.Thread(target=self._work, args=args, daemon=True, name="blendlab-edit")
        self._thread.start()
        return self._thread

    def stop(self) -> None:
        """Ask a running edit to stop after the current step."""
        if self._running:
            self._stop_flag.set()
            self._say("stopping after this step ...", "warn")

    def wait(self, timeout: float | None = None) -> None:
        """Wait for a background run to finish."""
        if self._thread is not None:
            self._thread.join(timeout)

    def _hook(self, cfg: EditConfig):
        every = self.preview_every or max(1, cfg.num_steps // 10)

        def app_hook(state):
            self.steps_done += 1
            self.progress.value = self.steps_done
            if state.index % every == 0 or state.index == state.num_steps - 1:
                self._show_preview(state.pred_x0)
            if self._stop_flag.is_set():
                raise _Stopped()

        return app_hook

    def _show_preview(self, pred_x0: torch.Tensor) -> None:
        strip = torch.cat(list(pred_x0.detach().float().cpu()), dim=-1)  # batch side by side
        im = Image.fromarray(_uint8(strip))
        self.preview.value = _png(_enlarge(im, 128, side="height"))

    def _work(self, cfg, image, mask, hooks, note="") -> None:
        t0 = time.perf_counter()
        recorder = None
        if self.record.value:
            from .hooks import Recorder

            recorder = Recorder(size=min(self.size, 128), max_mb=256)
            hooks = [recorder, *hooks]
        try:
            with warnings.catch_warnings():
                if note:  # already shown in the status line
                    warnings.filterwarnings("ignore", message="mask covers the whole image")
                result = edit(self.models, image, mask, cfg, [*hooks, self._hook(cfg)], progress=False)
        except _Stopped:
            self._say(f"stopped after {self.steps_done} steps", "warn")
        except (BlendlabError, ValueError) as exc:
            self._say(str(exc), "error")
        except Exception as exc:  # noqa: BLE001 - shown in the app, never as a traceback
            self._say(f"the edit failed: {type(exc).__name__}: {exc}", "error")
        else:
            self.result = result
            self._show_gallery(result)
            best = float(result.distances.min())
            self._say(f"done: {len(result.images)} images in {time.perf_counter() - t0:.1f} s; "
                      f"best CLIP distance {best:.4f}")
        finally:
            self.recorder = recorder
            if recorder is not None and recorder.steps:
                self.scrubber = StepScrubber(recorder, init_image=image)
                self.scrubber_box.children = (W.HTML("<b>step scrubber</b>"), self.scrubber.widget)
            self._running = False
            self.run_button.disabled, self.stop_button.disabled = False, True

    def _show_gallery(self, result) -> None:
        cards = []
        for rank, (im, dist) in enumerate(result.ranked):
            img = W.Image(value=_png(_enlarge(im, 128)), format="png")
            cards.append(W.VBox([img, W.HTML(f"#{rank + 1} · distance {dist:.4f}")],
                                layout=W.Layout(margin="0 8px 8px 0")))
        self.gallery.children = tuple(cards)
