"""The speed benchmark's memory probe: peak memory of one run above what the loaded models and inputs
already hold. On CPU every config and arm is measured in a fresh process, this file run as a script
(``python benchmarks/speed_memory.py SPEC --threads N``, SPEC a JSON object of config, method,
steps, batch and device; it prints the result as JSON); on CUDA in process.

May import: blendlab, benchmarks.speed_arms.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import torch

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import blendlab as bl  # noqa: E402
from blendlab.models import Models  # noqa: E402

from benchmarks.speed_arms import bench_config, build_models, inputs, run_once  # noqa: E402

__all__ = ["measure_memory_here", "peak_memory"]


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def _rss_mb() -> float | None:
    try:
        resident = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return resident * os.sysconf("SC_PAGE_SIZE") / 2**20


def _reset_peak_rss() -> bool:
    """Reset this process's RSS high-water mark (Linux ``clear_refs`` 5); also what ru_maxrss reads."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)  # hand freed heap back so the baseline is honest
    except (OSError, AttributeError):
        pass
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def measure_memory_here(config: str, method: str, steps: int, batch: int, device: str | None = None,
                        models: Models | None = None) -> dict:
    """Peak memory of one run of ``method`` in *this* process (see :func:`peak_memory`).

    A one-step warm-up run first (lazy imports, kernel caches), then the measured run. ``models``:
    an already built bundle of ``config`` to reuse (else it is built here)."""
    if models is None:
        models, _ = build_models(config, device)
    image, mask = inputs(models)
    run_once(method, models, image, mask, bench_config(1, batch))
    cfg = bench_config(steps, batch)
    dev = models.device
    gc.collect()
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
        torch.cuda.reset_peak_memory_stats(dev)
        before = torch.cuda.memory_allocated(dev)
        run_once(method, models, image, mask, cfg)
        peak = torch.cuda.max_memory_allocated(dev)
        return dict(kind="cuda max_memory_allocated", baseline_mb=before / 2**20, peak_mb=peak / 2**20,
                    delta_mb=(peak - before) / 2**20)
    if _reset_peak_rss() and _rss_mb() is not None:
        kind, before = "ru_maxrss after a high-water reset, minus RSS before the run", _rss_mb()
    else:
        kind, before = "ru_maxrss growth (no high-water reset: a lower bound)", _maxrss_mb()
    run_once(method, models, image, mask, cfg)
    after = _maxrss_mb()
    return dict(kind=kind, baseline_mb=before, peak_mb=after, delta_mb=after - before)


def peak_memory(config: str, method: str, steps: int, batch: int, device: str | None = None,
                timeout: float = 600, models: Models | None = None) -> dict:
    """Peak memory of one run above what the loaded models and inputs already hold (``delta_mb``).

    On CPU a fresh subprocess per config and method builds the models, warms up, resets its RSS
    high-water mark, notes its RSS, runs once and reads ``ru_maxrss`` (torch's allocations are
    invisible to tracemalloc). On CUDA, in process (reusing ``models`` if given):
    ``max_memory_allocated`` above what is allocated before the run."""
    dev = torch.device(device) if device is not None else bl.models.default_device()
    if dev.type == "cuda":
        return measure_memory_here(config, method, steps, batch, device, models=models)
    spec = json.dumps(dict(config=config, method=method, steps=steps, batch=batch, device=str(dev)))
    cmd = [sys.executable, str(Path(__file__).resolve()), spec, "--threads", str(torch.get_num_threads())]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"memory subprocess for {config}/{method} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])



def main(argv=None) -> dict:
    """The child process of :func:`peak_memory`: measure one run and print the result as JSON."""
    parser = argparse.ArgumentParser(description="peak memory of one run of one arm (a child of bench_speed)")
    parser.add_argument("spec", help='JSON: {"config", "method", "steps", "batch", "device"}')
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    spec = json.loads(args.spec)
    result = measure_memory_here(spec["config"], spec["method"], spec["steps"], spec["batch"], spec["device"])
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
