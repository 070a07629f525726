"""The step vocabulary, one for the whole library (figures, widgets, recordings, videos, logs):

- **step** ``k``: the loop's 0-based index over the ``N`` reverse steps actually run
  (``StepState.index``, ``RecordedStep.index``; ``num_steps`` is ``N``). The first step is
  ``step 0/N``, the last ``step N−1/N`` — the same number the step scrubber's slider shows.
- **t**: the timestep of the model's 1000-step schedule that step stands for (``.timestep``); it fixes
  ᾱ_t (``.alpha_bar``), and the input noised to it keeps a fraction ᾱ_t of its variance (noise
  fraction 1 − ᾱ_t).
- the **respaced index** (``.respaced_index``: the index into the sampler's respaced ``diffusion``
  that guided-diffusion's functions take as their ``t``; ``PlannedStep.respaced_index`` in the step plan) is
  internal to the sampler: no label shows it. It was called ``.t`` before; :func:`keeps_old_t` keeps
  that name working, with a ``DeprecationWarning``, for one release.

:func:`step_label` writes the one label every figure title, scrubber line and video caption uses:
``"step 3/10 · t=473"``.

:data:`STEP_FIELDS` declares, once, the image fields of a step (``StepState``'s tensors): name, the
figures' short label and the one-line description the step scrubber shows. The Recorder's
``FIELDS``, the figures' ``LABELS`` and the scrubber's field menu are read from it.

May import: errors.
"""

from __future__ import annotations

import dataclasses
import functools
import warnings

from .errors import InputError

__all__ = ["step_label", "label_of", "StepField", "STEP_FIELDS", "step_field", "STEP_SCALARS",
           "keeps_old_t", "OLD_T"]


@dataclasses.dataclass(frozen=True)
class StepField:
    """One image field of a step: ``name`` (the StepState attribute), ``label`` (a figure's title,
    matplotlib mathtext), ``description`` (one line of plain text: what the tensor holds)."""

    name: str
    label: str
    description: str


#: The image fields of a reverse step, in the order the Recorder lists them.
STEP_FIELDS: tuple[StepField, ...] = (
    StepField("x_t", "$x_t$", "x_t: input of the step"),
    StepField("pred_x0", r"$\hat{x}_0$", "x̂0: the clean image predicted from x_t"),
    StepField("pred_x0_guided", r"$\hat{x}_0$ (guided)", "x̂0 after the guided score (DDIM)"),
    StepField("grad", r"$|\nabla|$ guidance", "|grad|: size of the guidance gradient (normalised per image)"),
    StepField("fg", "fg (guided)", "fg: guided x_{t-1} before blending"),
    StepField("bg", "bg = input noised", "bg: the input noised to step t"),
    StepField("x_prev", "$x_{t-1}$ (blended)", "x_{t-1}: after blending fg and bg by the mask"),
)


#: The numbers every step carries (StepState, RecordedStep, a trajectory file's ``steps``), and what
#: each holds: one name per meaning.
STEP_SCALARS: dict[str, str] = {
    "iteration": "which of cfg.iterations_num sample batches",
    "index": "the step k = 0 … N−1 of the loop (labels: step k/N)",
    "num_steps": "N, the steps run",
    "respaced_index": "internal: the index into the respaced diffusion (guided-diffusion's t argument)",
    "timestep": "t of the 1000-step schedule the step stands for (labels: t=473)",
    "alpha_bar": "ᾱ_t",
}

#: What the old name says when it is used.
OLD_T = ("{cls}.t is deprecated: it is the respaced index, now {cls}.respaced_index; the t of the "
         "1000-step schedule that labels show is {cls}.timestep")


def keeps_old_t(cls):
    """Class decorator for a dataclass with a ``respaced_index`` field: ``obj.t`` (read or set) and
    the ``t=`` keyword keep working as its old name, each use with a ``DeprecationWarning``."""
    message = OLD_T.format(cls=cls.__name__)

    def get(self):
        warnings.warn(message, DeprecationWarning, stacklevel=2)
        return self.respaced_index

    def put(self, value):
        warnings.warn(message, DeprecationWarning, stacklevel=2)
        self.respaced_index = value

    cls.t = property(get, put, doc="Deprecated: the old name of ``respaced_index``.")
    init = cls.__init__

    @functools.wraps(init)
    def __init__(self, *args, **kwargs):
        if "t" in kwargs:
            warnings.warn(message, DeprecationWarning, stacklevel=2)
            kwargs["respaced_index"] = kwargs.pop("t")
        init(self, *args, **kwargs)

    cls.__init__ = __init__
    return cls


def step_field(name: str) -> StepField:
    """The :class:`StepField` called ``name``; InputError naming the choices otherwise."""
    for f in STEP_FIELDS:
        if f.name == name:
            return f
    raise InputError(f"unknown step field {name!r}; choose from {', '.join(f.name for f in STEP_FIELDS)}")

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
