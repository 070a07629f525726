"""The paper's applications as one-call recipes over :func:`blendlab.edit`.

- :func:`object_edit`: add / replace / alter an object inside the mask (Fig. 1, 4).
- :func:`replace_background`: the mask marks the object to keep; the edit region is its inverse.
- :func:`scribble_edit`: a rough colour scribble pasted into the input, more skipped steps so the
  diffusion keeps its layout and colours while CLIP turns it into the prompt.
- :func:`extrapolate`: open new bands of canvas on chosen sides, one prompt per side, edited one
  after another ("hell" on the left, "heaven" on the right).

Each takes the usual ``EditConfig`` fields as keyword overrides and returns an :class:`EditResult`
(``extrapolate`` returns the final image and the per-side results).

May import: errors, masks, config, runner.
"""

from __future__ import annotations

import torch

from .errors import InputError
from .masks import extend_canvas, paste_scribble
from .runner import EditResult, edit
from .config import EditConfig

__all__ = ["object_edit", "replace_background", "scribble_edit", "extrapolate", "SCRIBBLE_SKIP"]

#: Skipped steps the paper's scribble examples use more of: the input (with the scribble) is kept
#: for longer, so the result follows its colours and layout. Out of 100 respaced steps.
SCRIBBLE_SKIP = 50


def _config(prompt: str, base: EditConfig | None, overrides: dict) -> EditConfig:
    base = base or EditConfig(prompt=prompt)
    return base.replace(prompt=prompt, **overrides)


def object_edit(models, image, mask, prompt: str, cfg: EditConfig | None = None, hooks=(),
                progress: bool = True, **overrides) -> EditResult:
    """Edit the masked object so that it matches ``prompt``."""
    return edit(models, image, mask, _config(prompt, cfg, overrides), hooks, progress=progress)


def replace_background(models, image, object_mask, prompt: str, cfg: EditConfig | None = None,
                       hooks=(), progress: bool = True, **overrides) -> EditResult:
    """Keep the object marked by ``object_mask`` and replace everything else with ``prompt``
    (the reference's ``--invert_mask``)."""
    config = _config(prompt, cfg, dict(overrides, invert_mask=True))
    return edit(models, image, object_mask, config, hooks, progress=progress)


def scribble_edit(models, image, mask, scribble, scribble_mask, prompt: str,
                  cfg: EditConfig | None = None, hooks=(), progress: bool = True,
                  **overrides) -> EditResult:
    """Paint ``scribble`` (image-shaped, [-1, 1]) where ``scribble_mask`` is 1, then edit ``mask``.

    ``skip_timesteps`` defaults to :data:`SCRIBBLE_SKIP` scaled to the respacing, so the scribble's
    colours survive the noise; pass it explicitly to change that.
    """
    if torch.any((scribble_mask > 0) & (mask <= 0)):
        raise InputError("the scribble must lie inside the edit mask; dilate the mask or trim the scribble")
    overrides = dict(overrides)
    if "skip_timesteps" not in overrides:
        steps = (cfg or EditConfig(prompt=prompt)).replace(**overrides, prompt=prompt).num_steps_total()
        overrides["skip_timesteps"] = round(steps * SCRIBBLE_SKIP / 100)
    scribbled = paste_scribble(image, scribble, scribble_mask)
    return edit(models, scribbled, mask, _config(prompt, cfg, overrides), hooks, progress=progress)


def extrapolate(models, image, prompts: dict[str, str], fraction: float = 0.25,
                cfg: EditConfig | None = None, progress: bool = True, **overrides):
    """Text-guided extrapolation: grow the image side by side, one prompt per side.

    For each ``side -> prompt`` in order (sides: left, right, top, bottom), the model-sized window at
    that edge of the current canvas is shifted inward by ``fraction`` of its size, the opened band is
    edited with the prompt, and the band of the best-ranked sample is appended to the canvas. So
    ``{"left": "hell", "right": "heaven"}`` on a 256 image with fraction 0.25 gives a 256 x 384 canvas.

    Returns ``(canvas, results)``: the (1, 3, H', W') canvas and ``results[side]`` (:class:`EditResult`).
    """
    if not prompts:
        raise InputError("give at least one side -> prompt, e.g. {'left': 'hell', 'right': 'heaven'}")
    size = models.image_size
    canvas = image
    results = {}
    for side, prompt in prompts.items():
        _, _, h, w = canvas.shape
        horizontal = side in ("left", "right")
        if (horizontal and h != size) or (not horizontal and side in ("top", "bottom") and w != size):
            raise InputError(
                f"cannot extend {side}: the canvas is {h}x{w} and the model works at {size}; "
                "extend left/right on a canvas of the model's height, top/bottom of its width"
            )
        window = {"left": canvas[..., :, :size], "right": canvas[..., :, w - size:],
                  "top": canvas[..., :size, :], "bottom": canvas[..., h - size:, :]}.get(side)
        if window is None:
            raise InputError(f"side must be left, right, top or bottom, not {side!r}")
        shifted, band = extend_canvas(window, side, fraction)
        result = edit(models, shifted, band, _config(prompt, cfg, overrides), progress=progress)
        results[side] = result
        best = result.images[result.order[0]].unsqueeze(0).to(canvas.device)
        n = int(band.sum().item()) // size
        new = {"left": best[..., :, :n], "right": best[..., :, size - n:],
               "top": best[..., :n, :], "bottom": best[..., size - n:, :]}[side]
        canvas = torch.cat([new, canvas] if side in ("left", "top") else [canvas, new],
                           dim=-1 if horizontal else -2)
    return canvas, results
