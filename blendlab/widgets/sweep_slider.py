"""SweepSlider: a slider over the values of one setting swept in advance (e.g. λ_CLIP), showing for
each value the edits, what they changed and the verdicts, without running anything.

May import: errors, images, metrics, viz, widgets._common.
"""

from __future__ import annotations

import html
from typing import Mapping

import ipywidgets as W
import numpy as np
from PIL import Image

from ..errors import InputError
from ..images import heatmap, to_uint8
from ..metrics import background_drift
from ..viz import DIFF_CMAP, outside_change
from ._common import _enlarge, _png


class SweepSlider:
    """Scrub over precomputed edits, one per value of a setting.

    Args:
        results: ``value -> (B, 3, H, W)`` images in [-1, 1] (e.g. ``bl.edit(...).images`` per
            ``clip_guidance_lambda``), in slider order.
        init_image: the input ``(1, 3, H, W)``; mask: ``(1, 1, H, W)`` in {0, 1}, 1 = edit.
        verdicts: ``value -> one text per sample`` (the toy judge's "red circle"), or None.
        setting: the swept setting's name for the labels.  display_size: each picture is enlarged
            (NEAREST) until its height is at least this.

    The picture is the batch's edits side by side (top) over ``|edit − input|`` (bottom), on one
    colour scale for every value (the largest change of the whole sweep is the top colour), so the
    brightness compares as you slide. ``info`` is the line under it: the verdicts and the background
    change (:func:`blendlab.metrics.background_drift`) of each sample. ``show(value)`` selects a value.
    """

    def __init__(self, results: Mapping, init_image, mask, verdicts: Mapping | None = None, *,
                 setting: str = "λ_CLIP", display_size: int = 128):
        if not isinstance(results, Mapping) or not results:
            raise InputError("pass a dict {value: images}, e.g. {0: edit_0.images, 1000: edit_1000.images}")
        if verdicts is not None and set(verdicts) != set(results):
            raise InputError("verdicts must have the same values as results (one list of texts per value)")
        self.results, self.verdicts, self.setting = dict(results), verdicts, str(setting)
        self.init_image, self.mask = init_image, mask
        self.display_size = int(display_size)
        self.values = list(self.results)
        self._changes = {v: outside_change(im, init_image) for v, im in self.results.items()}
        self._top = max(float(c.max()) for c in self._changes.values()) or 1.0
        self.drifts = {v: background_drift(im, init_image, mask).tolist() for v, im in self.results.items()}
        self.slider = W.SelectionSlider(options=[(f"{v:g}", v) for v in self.values], value=self.values[0],
                                        description=self.setting, continuous_update=True,
                                        layout=W.Layout(width="420px"))
        self.image = W.Image(format="png")
        self.text = W.HTML()
        self.slider.observe(lambda change: self.show(change["new"]), names="value")
        self.widget = W.VBox([self.slider, self.image, self.text])
        self.show(self.values[0])

    @property
    def value(self):
        return self.slider.value

    @property
    def info(self) -> str:
        """The text under the picture for the value on screen."""
        v = self.value
        parts = []
        for b, drift in enumerate(self.drifts[v]):
            said = f"{self.verdicts[v][b]}, " if self.verdicts is not None else ""
            parts.append(f"#{b}: {said}background change {drift:.2g}")
        return f"{self.setting} = {v:g} · " + " · ".join(parts)

    def render_array(self, value) -> np.ndarray:
        """(2h, B·w, 3) uint8: the edits over their change maps, before enlarging."""
        images = self.results[value]
        top = np.concatenate([to_uint8(x) for x in images], axis=1)
        bottom = np.concatenate([heatmap(c, vmax=self._top, cmap=DIFF_CMAP) for c in self._changes[value]], axis=1)
        return np.concatenate([top, bottom], axis=0)

    def current_image(self) -> Image.Image:
        return _enlarge(Image.fromarray(self.render_array(self.value)), self.display_size, side="height")

    def show(self, value) -> Image.Image:
        """Show ``value`` (one of ``values``); returns the picture on screen."""
        if value not in self.results:
            raise InputError(f"{self.setting} = {value!r} was not swept; pick one of {self.values}")
        if self.slider.value != value:
            self.slider.value = value  # the observer calls show() again
            return self.current_image()
        im = self.current_image()
        self.image.value = _png(im)
        self.text.value = (f"<div style='font-family:monospace;font-size:12px'>{html.escape(self.info)}<br>"
                           "top: the edits; bottom: |edit − input|, one colour scale for all values</div>")
        return im

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)
