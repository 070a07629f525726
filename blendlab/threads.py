"""How many threads torch uses for a preset: one for the small CPU models unless you say otherwise.

The toy and tiny presets are 1–2 M-parameter networks fed batches of a few 32 px images. Their
operations are too small for torch's intra-op threads to pay for their synchronisation: on an idle
2-core machine two threads save about a quarter of the time, but on a machine with other work the
threads wait on each other and the same demo takes three to four times as long
(``benchmarks/bench_demo.py`` prints the figures). So the CLI, :func:`blendlab.notebook.setup`
and the EditorApp call :func:`apply_thread_policy` with the preset they load:

- an explicit ``threads`` (``--threads N``, ``setup(threads=N)``, ``EditorApp(threads=N)``) wins;
- else ``$BLENDLAB_THREADS``, then ``$OMP_NUM_THREADS`` (torch read it when it started; it is
  left as it is);
- else one thread for the small presets (:data:`SMALL_PRESETS`), and torch's default (one per
  core) for the real ones, whose convolutions are large enough to use every core.

May import: errors.
"""

from __future__ import annotations

import os

import torch

from .errors import InputError

__all__ = ["SMALL_PRESETS", "apply_thread_policy", "threads_for"]

#: The presets whose networks are small enough that one torch thread is the better default.
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
        return 1, f"the {preset} preset's models are small"
    return None, "torch's default"


def apply_thread_policy(preset: str | None, threads: int | None = None) -> int:
    """Set torch's intra-op thread count for ``preset`` (see the module docs); returns the count in force."""
    n, _ = threads_for(preset, threads)
    if n is not None and torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return torch.get_num_threads()
