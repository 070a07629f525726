"""Speed benchmark: blendlab's one-forward sampler vs the reference's two-forward loop.

    python benchmarks/bench_speed.py                 # default run, CPU: a few minutes
    python benchmarks/bench_speed.py --threads 1     # the same on a shared, busy machine
    python benchmarks/bench_speed.py --quick         # smoke run: under a minute, figures indicative only
    python benchmarks/bench_speed.py --out results.json --repeats 9

For each model config (``tiny``; ``mid``: a 64 px, 64-channel UNet of the same family with the tiny
CLIP; ``real``: the paper's 256-uncond UNet + ViT-B/16, only when CUDA is present) it alternates, in
one process, three arms on the same models, image, mask, steps and batch:

* ``blendlab``: :class:`blendlab.BlendedSampler` (1 UNet forward per step);
* ``reference``: :mod:`benchmarks.reference_loop` (the authors' loop: 2 UNet forwards per step);
* ``recorder``: blendlab with a :class:`blendlab.Recorder` on every step (downscaled copies).

It reports UNet forwards per step (a forward hook), seconds per step and per sample, speed-ups
(median over repeats of the per-repeat ratio), recorder overhead, peak memory (a fresh subprocess
per config and method on CPU: ``ru_maxrss`` growth during one run; on CUDA
``torch.cuda.max_memory_allocated``), progressive pruning (64 candidates -> keep 8 vs 64 full
samples, when ``EditConfig`` has ``prune_at``), and the FLOP model of :mod:`benchmarks.flops`.
Every run records wall and process CPU time; with one torch thread on a CPU the targets read CPU
time (see :func:`timing_basis`). Targets are printed PASS/FAIL; they are never asserted.

This file is the run as a whole (:func:`run_benchmark`, the command line); its parts have rooms of
their own, and their public names are re-exported here: the arms and their inputs
(:mod:`benchmarks.speed_arms`), the alternating comparisons and pruning
(:mod:`benchmarks.speed_harness`), the memory probe (:mod:`benchmarks.speed_memory`), the targets
and the report (:mod:`benchmarks.speed_report`), the machine (:mod:`benchmarks.machine`).

May import: blendlab, benchmarks.machine, benchmarks.speed_arms, benchmarks.speed_harness,
benchmarks.speed_memory, benchmarks.speed_report, benchmarks.flops.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from pathlib import Path

import torch

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import blendlab as bl  # noqa: E402

from benchmarks.machine import load_average, machine_info  # noqa: E402
from benchmarks.speed_arms import (  # noqa: E402, F401  (re-exported)
    DEFAULTS,
    METHODS,
    MID_UNET,
    PROMPT,
    ForwardCounter,
    bench_config,
    build_models,
    inputs,
    run_once,
)
from benchmarks.speed_harness import compare, prune_benchmark, prune_supported  # noqa: E402
from benchmarks.speed_memory import measure_memory_here, peak_memory  # noqa: E402, F401  (re-exported)
from benchmarks.speed_report import TARGETS, evaluate_targets, format_report, timing_basis  # noqa: E402, F401

__all__ = [
    "TARGETS",
    "MID_UNET",
    "machine_info",
    "build_models",
    "bench_config",
    "ForwardCounter",
    "run_once",
    "compare",
    "peak_memory",
    "prune_supported",
    "prune_benchmark",
    "run_benchmark",
    "evaluate_targets",
    "format_report",
    "main",
]


def run_benchmark(configs=None, quick: bool = False, repeats: int | None = None, memory: bool = True,
                  prune_configs=("tiny",), flops: bool = True, device: str | None = None,
                  warmup: int = 1, threads: int | None = None, prune_steps: int = 20, log=print) -> dict:
    """Run the benchmark; returns a JSON-ready dict (machine, settings, configs, pruning, flops, targets).

    ``quick``: 2 steps, batch 2, 1 repeat, pruning 4 -> 2 with 3 steps: a smoke run. ``warmup``:
    untimed rounds before the repeats (first calls pay for oneDNN kernel creation and lazy imports).
    ``threads``: ``torch.set_num_threads`` for the whole run (memory subprocesses inherit it).
    """
    if threads:
        torch.set_num_threads(threads)
    dev = torch.device(device) if device is not None else bl.models.default_device()
    if configs is None:
        configs = ["tiny", "mid"] + (["real"] if dev.type == "cuda" else [])
    repeats_given = repeats
    if repeats is None:
        repeats = 1 if quick else 7
    results = dict(machine=machine_info(), settings=dict(quick=quick, repeats=repeats, warmup=warmup,
                                                         device=str(dev),
                                                         prompt=PROMPT, configs=list(configs),
                                                         load_1min_at_start=load_average()),
                   configs={}, pruning={}, flops=None)
    t_start = time.perf_counter()
    for name in configs:
        steps, batch = (2, 2) if quick else (DEFAULTS[name]["steps"], DEFAULTS[name]["batch"])
        n_rep = repeats if repeats_given is not None or quick else DEFAULTS[name].get("repeats", repeats)
        log(f"[{time.perf_counter() - t_start:6.0f}s] {name}: building models")
        models, desc = build_models(name, dev)
        image, mask = inputs(models)
        cfg = bench_config(steps, batch)
        log(f"[{time.perf_counter() - t_start:6.0f}s] {name}: {steps} steps, batch {batch}, "
            f"{n_rep} repeats x {len(METHODS)} arms")
        entry = dict(models=desc, **compare(models, image, mask, cfg, repeats=n_rep, warmup=warmup))
        if memory:
            log(f"[{time.perf_counter() - t_start:6.0f}s] {name}: peak memory")
            mem_steps = 2 if quick else 3
            entry["memory"] = {m: peak_memory(name, m, mem_steps, batch, str(dev), models=models)
                               for m in ("blendlab", "reference")}
            entry["memory"]["steps"] = mem_steps
        results["configs"][name] = entry
        del models
        gc.collect()
    for name in prune_configs or ():
        if not prune_supported():
            results["pruning"][name] = prune_benchmark(None, None, None)
            log(f"pruning: {results['pruning'][name]['skipped']}")
            continue
        log(f"[{time.perf_counter() - t_start:6.0f}s] pruning on {name}")
        models, _ = build_models(name, dev)
        image, mask = inputs(models)
        kwargs = dict(steps=3, candidates=4, keep=2, batch=4) if quick else dict(steps=prune_steps)
        results["pruning"][name] = prune_benchmark(models, image, mask, **kwargs)
    if flops:
        from benchmarks.flops import explain, flop_model

        log(f"[{time.perf_counter() - t_start:6.0f}s] FLOP model (meta device)")
        results["flops"] = flop_model()
        results["flops"]["explanation"] = explain(results["flops"])
    results["seconds_total"] = time.perf_counter() - t_start
    results["targets"] = evaluate_targets(results)
    return results


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description="blendlab vs the reference loop: time, UNet forwards, "
                                     "memory, recorder overhead, progressive pruning, FLOP model")
    parser.add_argument("--quick", action="store_true", help="2 steps, 1 repeat: a fast smoke run")
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    parser.add_argument("--repeats", type=int, default=None, help="alternating repeats per config (default 7)")
    parser.add_argument("--configs", default=None,
                        help="comma list of tiny,mid,real (default tiny,mid, plus real on CUDA; '' for none)")
    parser.add_argument("--prune-configs", default="tiny",
                        help="configs for the pruning part, comma list ('' to skip; mid takes minutes)")
    parser.add_argument("--prune-steps", type=int, default=20, help="steps of the pruning part (default 20)")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    parser.add_argument("--no-flops", action="store_true", help="skip the FLOP model")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: torch's choice, one per core). On a shared, busy "
                             "machine use 1: two spinning OpenMP threads that lose a core slow down 10x+")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    configs = [c for c in args.configs.split(",") if c] if args.configs is not None else None
    prune = [c for c in args.prune_configs.split(",") if c]
    results = run_benchmark(configs=configs, quick=args.quick, repeats=args.repeats, memory=not args.no_memory,
                            prune_configs=prune, flops=not args.no_flops, device=args.device, threads=args.threads,
                            prune_steps=args.prune_steps,
                            log=lambda msg: print(msg, file=sys.stderr, flush=True))
    print(format_report(results))
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2))
        print(f"wrote {args.out}")
    return results


if __name__ == "__main__":
    main()
