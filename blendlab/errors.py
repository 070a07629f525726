"""The small error family blendlab raises.

Every error says what was wrong and what to do about it. They subclass the built-in error a caller
would naturally catch (``ValueError`` for bad arguments, ``FileNotFoundError`` for missing files), so
``except ValueError`` keeps working. Warnings blendlab gives on purpose are :class:`BlendlabWarning`
subclasses, so one ``warnings.filterwarnings("ignore", category=...)`` silences exactly one of them.

May import: nothing.
"""

from __future__ import annotations


class BlendlabError(Exception):
    """Base class of every error blendlab raises on purpose."""


class InputError(BlendlabError, ValueError):
    """An image, mask, prompt or setting that cannot be used as given."""


class UnknownSettingError(InputError, TypeError):
    """A keyword that is not a setting (``EditConfig(promt=...)``); the message names the closest one.

    A ``TypeError`` too, as Python's own "unexpected keyword argument" is."""


class CheckpointError(BlendlabError, ValueError):
    """A checkpoint file that is truncated, corrupt, or of another architecture."""


class DownloadError(BlendlabError, OSError):
    """A file could not be fetched (offline, interrupted, wrong size or hash)."""


class WeightsNotFoundError(BlendlabError, FileNotFoundError):
    """Weights are neither cached nor downloadable; the message says where to put them."""


class TrajectoryError(BlendlabError, ValueError):
    """A saved trajectory file that is truncated, corrupt, of another format or of a newer version."""


class NonFiniteError(BlendlabError, FloatingPointError):
    """A reverse step produced NaN or infinity; the run stopped there and nothing was saved.

    Attributes: ``step`` (0-based index of the step) of ``num_steps``, ``t`` (its timestep of the
    1000-step schedule, as ``StepState.timestep``), ``iteration`` (which sample batch), ``term``
    (what became non-finite first: "pred_x0", a loss term such as "range" or "clip", "grad",
    "pred_x0_guided" or "x_prev") and ``state``, the StepState of that step (not pickled) to look at.
    """

    def __init__(self, message: str, *, step: int | None = None, num_steps: int | None = None,
                 t: int | None = None, term: str | None = None, iteration: int = 0, state=None):
        super().__init__(message)
        self.step, self.num_steps, self.t, self.term = step, num_steps, t, term
        self.iteration, self.state = iteration, state

    def __reduce__(self):  # the attributes survive pickling (sweeps, Ray); the tensors stay here
        fields = dict(step=self.step, num_steps=self.num_steps, t=self.t, term=self.term,
                      iteration=self.iteration)
        return _rebuild_non_finite, (str(self), fields)


def _rebuild_non_finite(message: str, fields: dict) -> NonFiniteError:
    return NonFiniteError(message, **fields)


class BlendlabWarning(UserWarning):
    """Base class of every warning blendlab gives on purpose; each says what to do about it."""


class MaskResizedWarning(BlendlabWarning):
    """A mask of the image's aspect ratio but another size was resized (NEAREST) to the image's."""


class FullMaskWarning(BlendlabWarning):
    """The mask covers the whole image: blending keeps nothing of the input."""


class UnguidedWarning(BlendlabWarning):
    """An edit with an empty prompt runs without CLIP guidance, though CLIP guidance is switched on."""
