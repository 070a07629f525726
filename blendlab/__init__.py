"""blendlab: learn, run and debug Blended Diffusion (Avrahami, Lischinski & Fried, CVPR 2022).

May import: _openmp, _version, errors, models, images, masks, sampler, progress, recorder, runner.
"""

import warnings as _warnings

from . import _openmp

_openmp.prefer_passive_waiting()  # before torch loads (see blendlab._openmp)

# guided_diffusion and clip warn about deprecated APIs of their own at import time; nothing a user
# of blendlab can act on, so import them once here with those warnings silenced.
with _warnings.catch_warnings():
    _warnings.filterwarnings("ignore", category=FutureWarning, module="guided_diffusion")
    _warnings.filterwarnings("ignore", message="pkg_resources is deprecated")
    _warnings.filterwarnings("ignore", category=DeprecationWarning)
    import clip as _clip  # noqa: F401
    import guided_diffusion.nn as _gd_nn  # noqa: F401

from ._version import __version__
from .errors import (
    BlendlabError,
    BlendlabWarning,
    CheckpointError,
    DownloadError,
    FullMaskWarning,
    InputError,
    MaskResizedWarning,
    NonFiniteError,
    TrajectoryError,
    UnguidedWarning,
    UnknownSettingError,
    WeightsNotFoundError,
)
from .models import Models, load_models
from .images import load_image, sample_image, save_image, to_pil, to_pil_list
from .masks import (
    box_mask,
    dilate_mask,
    ellipse_mask,
    extend_canvas,
    invert_mask,
    load_mask,
)
from .sampler import BlendedSampler, EditConfig, StepState
from .progress import ProgressBar
from .recorder import Recorder, load_trajectory
from .runner import EditResult, edit

__all__ = [
    "BlendlabError",
    "CheckpointError",
    "DownloadError",
    "InputError",
    "NonFiniteError",
    "TrajectoryError",
    "WeightsNotFoundError",
    "UnknownSettingError",
    "BlendlabWarning",
    "MaskResizedWarning",
    "FullMaskWarning",
    "UnguidedWarning",
    "Models",
    "load_models",
    "load_image",
    "sample_image",
    "save_image",
    "to_pil",
    "to_pil_list",
    "load_mask",
    "box_mask",
    "ellipse_mask",
    "dilate_mask",
    "invert_mask",
    "extend_canvas",
    "EditConfig",
    "StepState",
    "BlendedSampler",
    "EditResult",
    "edit",
    "Recorder",
    "load_trajectory",
    "ProgressBar",
]
