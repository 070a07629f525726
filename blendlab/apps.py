"""The old name of :mod:`blendlab.applications` (it clashed with ``blendlab.widgets.app``, the
EditorApp): the same functions, and a DeprecationWarning on import. Import ``blendlab.applications``.

May import: applications.
"""

from __future__ import annotations

import warnings

from .applications import SCRIBBLE_SKIP, extrapolate, object_edit, replace_background, scribble_edit

__all__ = ["object_edit", "replace_background", "scribble_edit", "extrapolate", "SCRIBBLE_SKIP"]

warnings.warn("blendlab.apps is deprecated: import blendlab.applications (the same functions)", DeprecationWarning,
              stacklevel=2)
