"""Notebook widgets: paint a mask, scrub through a recorded trajectory, edit in one cell.

- :class:`MaskPainter`: brush, eraser, rectangle and ellipse on an ipycanvas, with undo/redo;
  ``painter.mask`` is the (1, 1, H, W) {0, 1} mask at the model's resolution.
- :class:`StepScrubber`: a slider (and a Play button) over the steps a :class:`blendlab.Recorder`
  kept: x_t, x̂0, |grad|, fg, bg, x_{t-1}, the mask overlay; with t, ᾱ_t and the losses. With
  ``compare=`` two recordings side by side at the same step, and their difference |a − b|.
- :class:`SweepSlider`: a slider over edits precomputed for several values of one setting (e.g. a
  λ_CLIP sweep): the edits, |edit − input| on one scale, the verdicts and the background change.
- :class:`EditorApp`: image, mask, prompt, settings, Run/Stop, progress, x̂0 preview, ranked gallery;
  its settings form is :class:`EditSettings`.

Pictures reach the browser as PNG bytes (``ipywidgets.Image``) or ``put_image_data`` on a canvas.

May import: widgets.app, widgets.painter, widgets.scrubber, widgets.settings, widgets.sweep_slider.
"""

from .app import EditorApp
from .painter import MaskPainter
from .scrubber import StepScrubber
from .settings import SETTINGS, EditSettings, default_settings
from .sweep_slider import SweepSlider

__all__ = ["MaskPainter", "StepScrubber", "SweepSlider", "EditorApp", "EditSettings", "SETTINGS", "default_settings"]
