"""Figures for the lessons: image grids, mask overlays, step strips, noise schedules, loss curves,
and the reference's per-sample source | mask | edited comparison that ``blendlab edit`` saves.

Every function returns a :class:`matplotlib.figure.Figure` built with the object-oriented API
(``pyplot`` is never imported, so this works without a display and never pops up windows). The
figures show themselves as PNG when they are the last expression of a notebook cell.

Inputs follow the library's conventions: images are ``(B, 3, H, W)`` (or ``(3, H, W)``) tensors in
``[-1, 1]``, masks ``(1, 1, H, W)`` in ``{0, 1}`` (1 = edit). What :func:`image_grid` and friends
draw is exactly :func:`to_rgb` of the data passed: ``(x + 1) / 2`` clamped to ``[0, 1]``, as an
``(H, W, 3)`` array. Gradients are drawn as heatmaps of their per-pixel size ``‖g‖₂`` over channels.

The figures live in these rooms, all re-exported here (``blendlab.viz.<name>``):

- :mod:`.base`: what every figure shares, and :func:`image_grid`, :func:`mask_overlay`,
  :func:`gradient_maps`;
- :mod:`.steps`: recorded trajectories (:func:`step_strip`, :func:`compare_strips`,
  :func:`step_panels`, :func:`loss_curves`);
- :mod:`.inputs`: what the algorithm makes of the input (:func:`noise_schedule`,
  :func:`noised_inputs`, :func:`augmentation_views`);
- :mod:`.results`: an edit's results (:func:`ranked_gallery`, :func:`comparison_figure`,
  :func:`seam_comparison`), and one setting swept over several edits (:func:`setting_sweep`);
- :mod:`.training`: how the toy models learned, from their training cards (:func:`training_curves`).

viz only draws: the measures the figures show (:func:`seam_strength`, :func:`background_drift`) live in
:mod:`blendlab.metrics` and are re-exported here, as are :func:`paste_background` and
:func:`grad_magnitude`.

One step vocabulary: every title names a step as :func:`step_label` writes it (from
:mod:`blendlab.vocabulary`, re-exported here): ``"step 3/10 · t=473"``, the step k counted from 0 of
N, and t of the 1000-step schedule. Honest plots: loss curves are per sample unless labelled "sum over
the batch", gradient maps share one colour scale with a colour bar (:func:`gradient_maps`), and at
its default size no figure is wider than ``MAX_WIDTH`` (10) inches or has text under ``MIN_FONT`` (9)
points: long strips wrap into rows.

May import: images, masks, metrics, vocabulary, viz.base, viz.steps, viz.inputs, viz.results, viz.training.
"""

from ..images import grad_magnitude
from ..masks import paste_background
from ..metrics import background_drift, seam_strength
from .base import (  # noqa: F401  (the colours and labels too: widgets and lessons use them)
    DIFF_CMAP,
    GRAD_CMAP,
    LABELS,
    MASK_COLOR,
    MAX_WIDTH,
    MIN_FONT,
    OUTLINE_COLOR,
    PANEL,
    PANEL_FIELDS,
    Figure,
    gradient_maps,
    image_grid,
    mask_overlay,
    to_rgb,
)
from .inputs import augmentation_views, kept_timesteps, noise_schedule, noised_inputs
from .results import (comparison_figure, outside_change, ranked_gallery, save_comparison_figures, seam_comparison,
                      setting_sweep)
from .steps import compare_strips, loss_curves, save_step_strip, step_panels, step_strip
from .training import training_curves
from ..vocabulary import label_of, step_label


def __getattr__(name):  # viz.STEP_FIELDS, the panels' old name, warns (see viz.base.renamed_panel_fields)
    from .base import renamed_panel_fields

    return renamed_panel_fields(__name__, name)

__all__ = [
    "Figure",
    "to_rgb",
    "grad_magnitude",
    "image_grid",
    "mask_overlay",
    "step_strip",
    "compare_strips",
    "step_panels",
    "kept_timesteps",
    "noise_schedule",
    "noised_inputs",
    "loss_curves",
    "training_curves",
    "ranked_gallery",
    "comparison_figure",
    "save_comparison_figures",
    "augmentation_views",
    "gradient_maps",
    "paste_background",
    "seam_strength",
    "background_drift",
    "seam_comparison",
    "setting_sweep",
    "outside_change",
    "save_step_strip",
    "step_label",
    "label_of",
]
