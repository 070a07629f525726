"""StepScrubber: a slider (and Play) over the steps a Recorder kept."""

from __future__ import annotations

import html

import ipywidgets as W
import numpy as np
import torch.nn.functional as F
from PIL import Image

from ..errors import InputError
from ..images import load_image

from ..images import grad_heatmap, to_uint8
from ._common import _png, _enlarge

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
            return to_uint8(F.interpolate(self._init.float(), size=tuple(size), mode="bilinear",
                                        antialias=True, align_corners=False)[0])
        if field == "grad":
            return grad_heatmap(step.fields["grad"][sample])
        if field == "mask":
            base = to_uint8(step.fields["x_prev"][sample]).astype(np.float32)
            m = self._mask.float()
            if m.shape[-2:] != base.shape[:2]:
                m = F.interpolate(m, size=base.shape[:2], mode="nearest")
            m = m[0, 0].numpy()[..., None]
            tint = np.array([255, 40, 40], np.float32)
            return (base * (1 - 0.35 * m) + tint * 0.35 * m).round().astype(np.uint8)
        return to_uint8(step.fields[field][sample])

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
