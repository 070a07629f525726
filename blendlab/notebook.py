"""The first cell of every notebook: install if needed, pick a device and a model preset, say so.

Paste :data:`INSTALL_SNIPPET` at the top of a notebook, then::

    from blendlab.notebook import setup
    env = setup()                  # prints a banner: which models, which device, why
    models = env.load_models()     # cached: later cells may call it again for free
    cfg = env.config(prompt="a red brick wall")

How the preset is chosen (first rule that applies):

1. ``force_tiny=True`` -> tiny; ``force_tiny=False`` -> real weights.
2. ``$BLENDLAB_MODELS`` (e.g. ``tiny``) -> that preset, everywhere.
3. No GPU (a laptop, CI, a Colab CPU runtime) -> ``toy``: the toy world's trained models, shipped
   with blendlab (the real 256x256 model takes hours per edit on a CPU).
4. Google Colab with a GPU -> the paper's ``256-uncond`` weights (downloaded on first use).
5. GPU and the checkpoints already cached under ``blendlab_home()`` -> real weights.
6. GPU, nothing cached: real weights if the download host answers, else toy.

The toy preset is a UNet and a CLIP trained on scenes of coloured shapes (:mod:`blendlab.toyworld`):
the method runs unchanged and its edits work, on toy scenes (:meth:`NotebookEnv.example` gives them).
The tiny preset has random weights: every mechanism runs, but its pictures are noise-like; it stays
for fast mechanics tests (``BLENDLAB_MODELS=tiny``). Quick settings (defined in :mod:`blendlab.presets`,
importable from here too): :data:`TOY_SETTINGS`, :data:`TINY_SETTINGS`.

May import: errors, download, models, presets, examples, sampler, threads.
"""

from __future__ import annotations

import dataclasses
import html
import importlib.util
import os
import socket
import sys
from typing import Any

import torch

from .download import is_offline
from .errors import InputError
# the quick settings per preset live in presets; their names stay importable from here, their old home
from .presets import LESSON_BATCH, REAL_PRESET, TINY_SETTINGS, TOY_PRESET, TOY_SETTINGS, settings_for
from .sampler import EditConfig
from .threads import apply_thread_policy

__all__ = ["REPO_URL", "SOURCE_ENV", "INSTALL_SNIPPET", "LESSON_BATCH", "TINY_SETTINGS", "TOY_SETTINGS", "TOY_PRESET", "REAL_PRESET",
           "settings_for", "NotebookEnv", "setup", "in_colab"]

REPO_URL = "https://github.com/blendlab/blendlab"

#: Where the first cell installs blendlab from unless told otherwise: one setting, ``$BLENDLAB_SOURCE``
#: (a fork's ``git+https://...`` URL or a local copy's path) in the notebook's environment.
SOURCE_ENV = "BLENDLAB_SOURCE"

#: The first lines of every lesson (``tools/sync_first_cell.py`` writes them there): install
#: blendlab from ``$BLENDLAB_SOURCE`` (default: GitHub) when it is not importable. A failed install
#: ends the cell with one sentence (what failed, how to install from your own copy), not a traceback;
#: pip's own error stands above it. Python's import system sees the new package without
#: ``importlib.invalidate_caches()``: pip changes site-packages' modification time, which it checks.
INSTALL_SNIPPET = f"""\
import importlib.util, os, subprocess, sys  # a fresh runtime (e.g. Colab) installs blendlab from ${SOURCE_ENV}
source = os.environ.get("{SOURCE_ENV}", "git+{REPO_URL}")  # or your fork (git+https://...) or a local path
if importlib.util.find_spec("blendlab") is None and subprocess.run([sys.executable, "-m", "pip", "install", "-q", source]).returncode:
    sys.exit(f"blendlab could not be installed from {{source}} (pip says why above); to install your own copy, set {SOURCE_ENV} to your fork's git+https URL or a local path (e.g. %env {SOURCE_ENV}=/content/blendlab) and run this cell again.")
"""

def in_colab() -> bool:
    """True inside Google Colab (its ``google.colab`` package is loaded or importable)."""
    if "google.colab" in sys.modules:
        return True
    try:
        return importlib.util.find_spec("google.colab") is not None
    except (ImportError, ValueError):  # no "google" package at all, or a half-made module
        return False


def _cuda_available() -> bool:
    return torch.cuda.is_available()


def _network_reachable(host: str | None = None, timeout: float = 1.5) -> bool:
    """Can we open a TCP connection to the checkpoint host (the real preset's first URL)? One quick
    try; no data is sent."""
    if host is None:
        from urllib.parse import urlsplit

        from .models import PRESETS

        host = urlsplit(PRESETS[REAL_PRESET]["checkpoint"].urls[0]).hostname
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def checkpoints_cached(preset: str = REAL_PRESET, clip_model: str = "ViT-B/16") -> bool:
    """Whether the UNet and CLIP files of ``preset`` are already in the cache (no network)."""
    from .download import default_cache_dir
    from .models import PRESETS, clip_remote_file

    spec = PRESETS.get(preset)
    if spec is None or spec["checkpoint"] is None:
        return spec is not None
    folder = default_cache_dir()
    names = (spec["checkpoint"].filename, clip_remote_file(clip_model).filename)
    return all((folder / name).is_file() for name in names)


@dataclasses.dataclass
class NotebookEnv:
    """What :func:`setup` decided. ``load_models()`` builds the models once and caches them."""

    in_colab: bool
    device: str
    preset: str
    reason: str = ""
    repo_url: str = REPO_URL
    threads: int | None = None  #: torch's thread count setup() left in force (blendlab.threads)
    _models: Any = dataclasses.field(default=None, repr=False, compare=False)

    @property
    def tiny(self) -> bool:
        """True for the random-weight stand-in: mechanics only, no meaningful pictures."""
        return self.preset.startswith("tiny")

    @property
    def toy(self) -> bool:
        """True for the toy world: models trained here on coloured shapes; edits work, on toy scenes."""
        return self.preset == TOY_PRESET

    def example(self, name: str):
        """Inputs for application ``name`` ("insert", "replace", "background", "scribble",
        "extrapolate") in this preset's world: a toy scene with the toy preset, the photo otherwise.
        See :mod:`blendlab.examples`."""
        from .examples import example

        return example(name, self.load_models())

    def load_models(self):
        """``blendlab.load_models(self.preset, self.device)``, built on the first call only."""
        if self._models is None:
            from .models import load_models

            self._models = load_models(self.preset, device=self.device)
        return self._models

    def config(self, **overrides) -> EditConfig:
        """An :class:`EditConfig`: the paper's guidance with :data:`LESSON_BATCH` (one batch of 4) on
        real weights, :data:`TOY_SETTINGS` in the toy world, :data:`TINY_SETTINGS` in tiny mode;
        keyword arguments override any of them."""
        from .presets import output_size

        base: dict[str, Any] = {**LESSON_BATCH, **settings_for(self.preset)}
        size = output_size(self.preset)
        if size:
            base["model_output_size"] = size
        base.update(overrides)
        return EditConfig(**base)

    # -- the banner ---------------------------------------------------------------------------
    def banner_text(self) -> str:
        where = "Google Colab" if self.in_colab else "this machine"
        lines = [f"blendlab: models {self.preset!r} on {self.device} ({where}). {self.reason}".strip()]
        if self.toy:
            lines.append(
                "TOY WORLD: a UNet and a CLIP trained on this project's machines on scenes of coloured "
                "shapes (circles, squares, triangles in red, green, blue, yellow). The method runs "
                "unchanged and its edits work, on toy scenes. For photos, open this notebook in Google "
                f"Colab with a GPU runtime (Runtime > Change runtime type > GPU); see {self.repo_url}."
            )
        elif self.tiny:
            lines.append(
                "TINY MODE: random-weight stand-in models. Every step of the method runs, but the "
                "pictures are noise-like: results show the mechanics only. For real edits open this "
                f"notebook in Google Colab with a GPU runtime (Runtime > Change runtime type > GPU); "
                f"see {self.repo_url}."
            )
        elif self.device == "cpu":
            lines.append(
                "WARNING: real weights on a CPU are very slow (hours per edit). In Colab choose "
                "Runtime > Change runtime type > GPU, or call setup(force_tiny=True) to try the mechanics."
            )
        return "\n".join(lines)

    def banner_html(self) -> str:
        head, *rest = self.banner_text().split("\n")
        colour = "#fff4e5" if (self.tiny or (self.device == "cpu" and not self.toy)) else "#e8f5e9"
        body = "".join(f"<div style='margin-top:4px'>{html.escape(line)}</div>" for line in rest)
        return (
            f"<div style='background:{colour};border:1px solid #ccc;border-radius:4px;padding:6px 10px'>"
            f"<b>{html.escape(head)}</b>{body}</div>"
        )

    def _repr_html_(self) -> str:
        return self.banner_html()


def _show_banner(env: NotebookEnv) -> None:
    try:
        from IPython import get_ipython
        from IPython.display import HTML, display
    except ImportError:  # pragma: no cover - IPython ships with ipywidgets
        get_ipython = None
    if get_ipython is not None and get_ipython() is not None:
        display(HTML(env.banner_html()))
    else:
        print(env.banner_text())


def _enable_colab_widgets() -> None:
    from google.colab import output  # type: ignore[import-not-found]

    output.enable_custom_widget_manager()  # ipycanvas and other third-party widgets need it


def _choose(force_tiny: bool | None, colab: bool, cuda: bool) -> tuple[str, str]:
    """(preset, reason) following the rules in the module docstring."""
    from .models import PRESETS

    env_preset = os.environ.get("BLENDLAB_MODELS", "").strip()
    if env_preset and env_preset not in PRESETS:
        raise InputError(
            f"BLENDLAB_MODELS={env_preset!r} is not a model preset; use one of {', '.join(sorted(PRESETS))}"
        )
    if force_tiny is True:
        return "tiny", "Chosen by setup(force_tiny=True)."
    if force_tiny is False:
        preset = env_preset if env_preset and not env_preset.startswith("tiny") else REAL_PRESET
        return preset, "Chosen by setup(force_tiny=False)."
    if env_preset:
        return env_preset, f"Chosen by BLENDLAB_MODELS={env_preset}."
    if not cuda:
        return TOY_PRESET, "No GPU found, so the toy world (the real model would take hours on a CPU)."
    if colab:
        return REAL_PRESET, "Colab with a GPU: the paper's model (downloaded on first use)."
    if checkpoints_cached(REAL_PRESET):
        return REAL_PRESET, "GPU found and the checkpoints are cached."
    if is_offline() or not _network_reachable():
        return TOY_PRESET, "GPU found, but the checkpoints are not cached and the download host is unreachable."
    return REAL_PRESET, "GPU found; the checkpoints will be downloaded on first use."


def setup(repo_url: str | None = None, force_tiny: bool | None = None, *, banner: bool = True,
          threads: int | None = None) -> NotebookEnv:
    """Prepare a notebook: Colab widgets, device, model preset; show a banner; return a NotebookEnv.

    Args:
        repo_url: where readers get blendlab (shown in the banner); default :data:`REPO_URL`.
        force_tiny: True/False to force the tiny preset or real weights; None decides automatically
            (see the module docstring).
        banner: display the HTML banner (text outside IPython).
        threads: torch's thread count; default: :func:`blendlab.threads.apply_thread_policy`'s for
            the chosen preset (two at most for the small toy and tiny models).
    """
    colab = in_colab()
    if colab:
        _enable_colab_widgets()
    cuda = _cuda_available()
    preset, reason = _choose(force_tiny, colab, cuda)
    n_threads = apply_thread_policy(preset, threads)
    env = NotebookEnv(
        in_colab=colab,
        device="cuda" if cuda else "cpu",
        preset=preset,
        reason=reason,
        repo_url=repo_url or REPO_URL,
        threads=n_threads,
    )
    if banner:
        _show_banner(env)
    return env
