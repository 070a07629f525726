"""How many threads torch uses for a preset: few for the small CPU models, unless you say otherwise.

The toy and tiny presets are 1–2 M-parameter networks fed batches of a few 32 px images. Their
operations are small, so torch's OpenMP threads spend much of a step waiting for each other. When
the waiting threads spin (OpenMP's default) and another process holds a core, a toy batch ran 5.6×
slower with two threads than with one (253 s vs 45 s); when they sleep (``OMP_WAIT_POLICY=PASSIVE``,
which ``import blendlab`` sets before torch loads, see :mod:`blendlab._openmp`) two threads beat one
on that busy machine (34 s). ``benchmarks/bench_demo.py`` times the whole demo: busy, 49.3 s with two
sleeping threads, 52.8 s with one, 115.9 s with two spinning; quiet, 35.2 s, 40.0 s and 27.9 s. The
sleeping threads are the fastest arm when the machine is busy and meet the quiet target (≤ 40 s) too,
a few seconds behind spinning threads there (the README's Speed section). So the CLI,
:func:`blendlab.notebook.setup` and the EditorApp call :func:`apply_thread_policy` with the preset
they load:

- an explicit ``threads`` (``--threads N``, ``setup(threads=N)``, ``EditorApp(threads=N)``) wins;
- else ``$BLENDLAB_THREADS``, then ``$OMP_NUM_THREADS`` (torch read it when it started; it is
  left as it is);
- else, for the small presets (:data:`SMALL_PRESETS`): two threads (at most one per core) when
  OpenMP's idle threads sleep, one thread when they may spin (torch was imported before blendlab,
  or ``OMP_WAIT_POLICY`` says ACTIVE);
- else torch's default (one per core) for the real presets, whose convolutions are large enough to
  use every core.

May import: errors, _openmp.
"""

from __future__ import annotations

import os

import torch

from . import _openmp
from .errors import InputError

__all__ = ["SMALL_PRESETS", "apply_thread_policy", "threads_for"]

#: The presets whose networks are too small for a thread per core to pay: at most two threads.
SMALL_PRESETS = frozenset({"toy", "tiny", "tiny-cond"})


def _positive(value, name: str) -> int:
    try:
        n = int(value)
    except (TypeError, ValueError):
        n = 0
    if n < 1 or (isinstance(value, float) and value != n):
        raise InputError(f"{name} must be a whole number of threads, 1 or more (got {value!r})")
    return n


def threads_for(preset: str | None, threads: int | None = None) -> tuple[int | None, str]:
    """``(thread count to set or None to leave torch's, why)`` for ``preset``; see the module docs."""
    if threads is not None:
        return _positive(threads, "threads"), "asked for"
    env = os.environ.get("BLENDLAB_THREADS")
    if env:
        return _positive(env, "$BLENDLAB_THREADS"), "$BLENDLAB_THREADS"
    if os.environ.get("OMP_NUM_THREADS"):
        return None, "$OMP_NUM_THREADS"
    if preset in SMALL_PRESETS:
        if _openmp.waits_passively():
            return min(2, os.cpu_count() or 1), f"the {preset} preset's models are small; idle threads sleep"
        return 1, f"the {preset} preset's models are small and idle OpenMP threads may spin"
    return None, "torch's default"


def apply_thread_policy(preset: str | None, threads: int | None = None) -> int:
    """Set torch's intra-op thread count for ``preset`` (see the module docs); returns the count in force."""
    n, _ = threads_for(preset, threads)
    if n is not None and torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return torch.get_num_threads()
