"""The step vocabulary, one for the whole library (figures, widgets, recordings, videos, logs):

- **step** ``k``: the loop's 0-based index over the ``N`` reverse steps actually run
  (``StepState.index``, ``RecordedStep.index``; ``num_steps`` is ``N``). The first step is
  ``step 0/N``, the last ``step N−1/N`` — the same number the step scrubber's slider shows.
- **t**: the timestep of the model's 1000-step schedule that step stands for (``.timestep``); it fixes
  ᾱ_t (``.alpha_bar``), and the input noised to it keeps a fraction ᾱ_t of its variance (noise
  fraction 1 − ᾱ_t).
- the respaced index (``.t``, an index into the sampler's respaced ``diffusion``) is internal to the
  sampler: no label shows it.

:func:`step_label` writes the one label every figure title, scrubber line and video caption uses:
``"step 3/10 · t=473"``.

May import: errors.
"""

from __future__ import annotations

from .errors import InputError

__all__ = ["step_label", "label_of"]

SEPARATOR = " · "


def step_label(index: int, num_steps: int, timestep: int | None = None, sep: str = SEPARATOR) -> str:
    """``"step 3/10 · t=473"``: step ``index`` (0-based) of ``num_steps``, and ``t`` of the 1000-step
    schedule when known (recordings made before blendlab kept it have none: ``"step 3/10"``).
    ``sep`` joins the two parts (``"\\n"`` for narrow panels). ``num_steps`` 0 (unknown) writes
    ``"step 3"``.

    Raises :class:`InputError` for a step outside ``0 … num_steps − 1``: a 1-based number is a bug.
    """
    index, num_steps = int(index), int(num_steps)
    if index < 0 or (num_steps and index >= num_steps):
        raise InputError(f"step {index} is outside 0 … {num_steps - 1}: steps count from 0")
    text = f"step {index}/{num_steps}" if num_steps else f"step {index}"
    return text if timestep is None else f"{text}{sep}t={int(timestep)}"


def label_of(step, sep: str = SEPARATOR) -> str:
    """:func:`step_label` of anything with ``index``, ``num_steps`` and ``timestep`` (a
    :class:`blendlab.StepState`, a recorded step)."""
    return step_label(step.index, getattr(step, "num_steps", 0), getattr(step, "timestep", None), sep)
