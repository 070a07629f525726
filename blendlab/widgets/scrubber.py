"""StepScrubber: a slider (and Play) over the steps a Recorder kept; two recordings side by side.

May import: errors, images, trajectory_compare, viz, vocabulary, widgets._common.
"""

from __future__ import annotations

import html

import ipywidgets as W
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..errors import InputError
from ..images import grad_heatmap, heatmap, load_image, to_uint8
from ..trajectory_compare import abs_difference, pair_steps
from ..viz import DIFF_CMAP
from ..vocabulary import STEP_FIELDS, label_of
from ._common import _enlarge, _png

_FIELD_LABELS = {f.name: f.description for f in STEP_FIELDS} | {  # the step's fields: blendlab.vocabulary
    "mask": "mask overlay on x_{t-1}",
    "input": "the input image",
}
DIFF_LABEL = "|a − b|"


class _Source:
    """One recording as the scrubber shows it: its steps, mask and input image."""

    def __init__(self, recording, init_image, what: str):
        self.steps = list(getattr(recording, "steps", []))
        if not self.steps:
            raise InputError(
                f"{what} has no steps: pass the Recorder to the edit as a hook "
                "(bl.edit(..., hooks=[recorder])) and run it before building a StepScrubber"
            )
        self.mask = getattr(recording, "mask", None)
        if init_image is None:
            init_image = getattr(recording, "init_image", None)
        self.init = None if init_image is None else load_image(init_image)
        self.fields = [name for name in _FIELD_LABELS if name in self.steps[0].fields]
        self.iterations = sorted({s.iteration for s in self.steps})
        self.batch = next(iter(self.steps[0].fields.values())).shape[0] if self.fields else 0

    def of(self, iteration: int) -> list:
        return [s for s in self.steps if s.iteration == iteration]

    def tensor(self, step, field: str, sample: int) -> torch.Tensor:
        """(3, h, w) the tensor a view of ``field`` is made from (the input at the step's size)."""
        if field == "input":
            size = next(iter(step.fields.values())).shape[-2:]
            return F.interpolate(self.init.float(), size=tuple(size), mode="bilinear", antialias=True,
                                 align_corners=False)[0]
        return step.fields["x_prev" if field == "mask" else field][sample]

    def render(self, step, field: str, sample: int) -> np.ndarray:
        """(h, w, 3) uint8 of one view of one recorded step, before enlarging."""
        x = self.tensor(step, field, sample)
        if field == "grad":
            return grad_heatmap(x)
        if field == "mask":
            base = to_uint8(x).astype(np.float32)
            m = self.mask.float()
            if m.shape[-2:] != base.shape[:2]:
                m = F.interpolate(m, size=base.shape[:2], mode="nearest")
            m = m[0, 0].numpy()[..., None]
            tint = np.array([255, 40, 40], np.float32)
            return (base * (1 - 0.35 * m) + tint * 0.35 * m).round().astype(np.uint8)
        return to_uint8(x)


def _describe(step) -> list[str]:
    parts = [label_of(step), f"ᾱ_t = {step.alpha_bar:.4f}"]
    return parts + [f"{k} loss = {v:.4g}" for k, v in step.losses.items()]


class StepScrubber:
    """Browse what a :class:`blendlab.Recorder` kept, step by step; or two recordings side by side.

    Args:
        recording: a Recorder that was passed as a hook to ``bl.edit`` / ``BlendedSampler.run``
            (or one loaded with ``bl.load_trajectory``).
        init_image: the input (1, 3, H, W) in [-1, 1], adds an "input" view (default: the input the
            recorder kept).
        display_size: shown images are enlarged (NEAREST) until their long side is at least this.
        interval: milliseconds per frame of the Play button.
        compare: a second recording: shown next to the first at the same step, with the same field
            and sample selectors, and a third pane with the per-pixel difference ``|a − b|`` (mean
            over channels, colour bar from 0 to the view's maximum).
        labels: names of the two recordings, e.g. ``("blend", "no blend")``.
        sync: how a step of the first recording finds its partner in the second: ``"step"`` (same
            step index), ``"timestep"`` (nearest t of the 1000-step schedule) or ``"auto"``
            (``"step"`` when both runs have the same number of steps, else ``"timestep"``).

    ``scrubber.show(step_pos, field=..., sample=...)`` selects a view (``step_pos`` indexes the
    recorded steps of the current iteration of the first recording); ``current_image()`` is the PIL
    image on screen (the first recording's) and ``info`` the text under it. The step on screen is named
    as everywhere in blendlab (:func:`blendlab.vocabulary.step_label`): ``step_text`` beside the
    slider and ``info`` say ``"step 3/10 · t=473"`` (step from 0, t of the 1000-step schedule). In compare mode
    ``current_images()`` gives all three panes, ``pair`` the two steps shown and ``difference``
    ``(max, mean)`` of ``|a − b|``.
    """

    def __init__(self, recording, init_image=None, display_size: int = 256, interval: int = 300, *,
                 compare=None, labels=("a", "b"), sync: str = "auto"):
        if init_image is not None and hasattr(init_image, "steps"):
            raise InputError("init_image is a recording: to compare two recordings pass it as compare= "
                             "(StepScrubber(rec_a, compare=rec_b, labels=('a', 'b')))")
        if len(labels) != 2:
            raise InputError(f"labels must be two names, e.g. ('blend', 'no blend'); got {labels!r}")
        self.recording = recording
        self.display_size = int(display_size)
        self.labels = tuple(str(v) for v in labels)
        self._a = _Source(recording, init_image, "the recording")
        self._b = None if compare is None else _Source(compare, None, "the compared recording")
        self.sync = sync
        sources = [self._a] + ([self._b] if self._b else [])
        recorded = [n for n in self._a.fields if all(n in s.fields for s in sources)]
        if not recorded:
            hint = " in common" if self._b else ""
            raise InputError(f"the recordings hold no image fields{hint}; record e.g. fields=('x_t', 'pred_x0')")
        options = [(_FIELD_LABELS[n], n) for n in recorded]
        self._mask = self._a.mask
        if "x_prev" in recorded and all(s.mask is not None for s in sources):
            options.append((_FIELD_LABELS["mask"], "mask"))
        if all(s.init is not None for s in sources):
            options.append((_FIELD_LABELS["input"], "input"))
        self._init = self._a.init
        self.iterations = [i for i in self._a.iterations if all(i in s.iterations for s in sources)]
        if not self.iterations:
            raise InputError(f"the recordings share no iteration: {self._a.iterations} vs {self._b.iterations}")
        batch = min(s.batch for s in sources)

        # the slider moves over the recorded steps; the label beside it names the step on screen
        # ("step 3/10 · t=473"), which differs from the slider's position when not every step was kept
        self.slider = W.IntSlider(value=0, min=0, max=0, description="step", continuous_update=True,
                                  readout=False, layout=W.Layout(width="420px"))
        self.step_text = W.Label()
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
        self._panes: dict = {}
        self._quiet = False
        self._select_iteration(self.iterations[0])
        for w in (self.slider, self.field, self.sample):
            w.observe(self._on_widget, names="value")
        self.iteration.observe(self._on_iteration, names="value")
        pictures = self.image
        if self._b is not None:
            self.image_b = W.Image(format="png")
            self.diff_image = W.Image(format="png")
            self.diff_scale = W.HTML()
            self.colorbar = W.Image(value=_png(Image.fromarray(heatmap(np.tile(np.linspace(0, 1, 128), (10, 1)),
                                                                       cmap=DIFF_CMAP))),
                                    format="png", layout=W.Layout(width="128px", height="10px"))

            def pane(title, *children):
                return W.VBox([W.HTML(f"<b>{html.escape(title)}</b>"), *children],
                              layout=W.Layout(align_items="flex-start", margin="0 8px 0 0"))

            pictures = W.HBox([
                pane(self.labels[0], self.image),
                pane(self.labels[1], self.image_b),
                pane(f"{DIFF_LABEL} ({self.labels[0]} vs {self.labels[1]})", self.diff_image,
                     W.HBox([W.HTML("0&nbsp;"), self.colorbar, self.diff_scale])),
            ], layout=W.Layout(align_items="flex-start"))
        self.widget = W.VBox([
            W.HBox([self.play, self.slider, self.step_text]),
            W.HBox([self.field, self.sample, self.iteration]),
            pictures,
            self.info_html,
            self.caption,
        ], layout=W.Layout(align_items="flex-start"))  # images at their own size, not stretched
        self._render()

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)

    # -- selection ----------------------------------------------------------------------------
    def _select_iteration(self, iteration: int) -> None:
        self._steps = self._a.of(iteration)
        if self._b is not None:
            pairs, self.sync_used = pair_steps(self._steps, self._b.of(iteration), self.sync)
            self._steps_b = [b for _, b in pairs]
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
        """The RecordedStep on screen (of the first recording)."""
        return self._steps[self.slider.value]

    @property
    def pair(self):
        """Compare mode: ``(step_a, step_b)`` on screen."""
        if self._b is None:
            raise InputError("pair is for compare mode: StepScrubber(rec_a, compare=rec_b)")
        return self.step, self._steps_b[self.slider.value]

    def current_image(self) -> Image.Image:
        return self._current

    def current_images(self) -> dict:
        """The PIL images on screen by pane: the first recording's label, the second's, and
        ``"|a − b|"`` in compare mode; one entry otherwise."""
        return dict(self._panes)

    @property
    def info(self) -> str:
        return self._info

    # -- rendering ----------------------------------------------------------------------------
    def render_array(self, step, field: str, sample: int) -> np.ndarray:
        """(h, w, 3) uint8 of one view of one recorded step of the first recording, before enlarging."""
        return self._a.render(step, field, sample)

    def _screen(self, arr: np.ndarray, field: str, mask) -> Image.Image:
        im = _enlarge(Image.fromarray(arr), self.display_size)
        if field == "mask":  # outline the mask at screen resolution, one pixel wide
            big = F.interpolate(mask.float(), size=(im.height, im.width), mode="nearest")[0, 0] > 0.5
            inner = -F.max_pool2d(-big.float()[None, None], 3, 1, 1)[0, 0] > 0.5
            edge = (big & ~inner).numpy()
            arr = np.asarray(im).copy()
            arr[edge] = (255, 230, 0)
            im = Image.fromarray(arr)
        return im

    def _render(self) -> None:
        step = self.step
        field, sample = self.field.value, self.sample.value
        self.step_text.value = label_of(step)
        self._current = self._screen(self._a.render(step, field, sample), field, self._a.mask)
        self.image.value = _png(self._current)
        parts = _describe(step)
        if len(self.iterations) > 1:
            parts.append(f"batch {step.iteration + 1}")
        if field == "grad" and not bool(step.fields["grad"][sample].abs().sum() > 0):
            parts.append("(grad is zero: no guidance)")
        self._panes = {self.labels[0]: self._current}
        self._info = " · ".join(parts)
        if self._b is not None:
            self._info = f"{self.labels[0]}: {self._info}  ‖  " + self._render_b(step, field, sample)
        self.info_html.value = f"<code>{html.escape(self._info)}</code>"
        self.caption.value = f"<i>{html.escape(_FIELD_LABELS[field])}</i>"

    def _render_b(self, step_a, field: str, sample: int) -> str:
        step_b = self._steps_b[self.slider.value]
        im_b = self._screen(self._b.render(step_b, field, sample), field, self._b.mask)
        diff = abs_difference(self._a.tensor(step_a, field, sample), self._b.tensor(step_b, field, sample)).numpy()
        peak, mean = float(diff.max()), float(diff.mean())
        im_d = _enlarge(Image.fromarray(heatmap(diff, cmap=DIFF_CMAP)), self.display_size)
        if im_b.size != self._current.size:  # kept at another size: shown at the first one's
            im_b = im_b.resize(self._current.size, Image.NEAREST)
        self.image_b.value = _png(im_b)
        self.diff_image.value = _png(im_d)
        self.diff_scale.value = f"&nbsp;{peak:.3g}" + (" (identical)" if peak == 0 else "")
        self.difference = (peak, mean)
        self._panes.update({self.labels[1]: im_b, DIFF_LABEL: im_d})
        sync = "same step" if self.sync_used == "step" else "nearest t"
        return (f"{self.labels[1]}: " + " · ".join(_describe(step_b)) + f" ({sync})  ‖  "
                f"{DIFF_LABEL}: max {peak:.3g}, mean {mean:.3g}")
