"""Before torch loads: ask OpenMP's idle threads to sleep rather than spin while they wait.

torch's CPU kernels run on OpenMP threads that, by default, spin on a core between parallel regions.
With the toy world's small operations on a machine with other work, a spinning thread holds a core
another process needs, and the threads then wait on each other: one toy batch of 4 at the paper's
settings took 34 s with two passive threads, 45 s with one thread and 253 s with two spinning threads
on a busy 2-core machine (measured by hand; the whole demo, by ``benchmarks/bench_demo.py``: 49.3 s,
52.8 s and 115.9 s busy; 35.2 s, 40.0 s and 27.9 s on an idle machine, where spinning is cheap). OpenMP reads ``OMP_WAIT_POLICY`` once, when torch
loads, so ``import blendlab`` sets it to ``PASSIVE`` first — only if torch is not loaded yet and the
user has not set it. :mod:`blendlab.threads` reads :func:`waits_passively` to pick a thread count.

May import: nothing.
"""

from __future__ import annotations

import os
import sys

#: OMP_WAIT_POLICY as it was when this module saw torch load (None: torch was loaded before blendlab,
#: so the policy torch started with is not known).
_POLICY_AT_TORCH_LOAD: str | None = None


def prefer_passive_waiting() -> None:
    """Set ``OMP_WAIT_POLICY=PASSIVE`` unless torch is already loaded or the user chose a policy."""
    global _POLICY_AT_TORCH_LOAD
    if "torch" in sys.modules:
        return
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    _POLICY_AT_TORCH_LOAD = os.environ["OMP_WAIT_POLICY"]


def waits_passively() -> bool:
    """True when torch's OpenMP threads are known to sleep while idle (set before torch loaded)."""
    return (_POLICY_AT_TORCH_LOAD or "").upper() == "PASSIVE"
