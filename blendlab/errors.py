"""The small error family blendlab raises.

Every error says what was wrong and what to do about it. They subclass the built-in error a caller
would naturally catch (``ValueError`` for bad arguments, ``FileNotFoundError`` for missing files), so
``except ValueError`` keeps working.

May import: nothing.
"""

from __future__ import annotations


class BlendlabError(Exception):
    """Base class of every error blendlab raises on purpose."""


class InputError(BlendlabError, ValueError):
    """An image, mask, prompt or setting that cannot be used as given."""


class CheckpointError(BlendlabError, ValueError):
    """A checkpoint file that is truncated, corrupt, or of another architecture."""


class DownloadError(BlendlabError, OSError):
    """A file could not be fetched (offline, interrupted, wrong size or hash)."""


class WeightsNotFoundError(BlendlabError, FileNotFoundError):
    """Weights are neither cached nor downloadable; the message says where to put them."""


class TrajectoryError(BlendlabError, ValueError):
    """A saved trajectory file that is truncated, corrupt, of another format or of a newer version."""
