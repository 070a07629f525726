"""``blendlab sweep SPEC --out DIR [--backend local|ray] [--address ...]`` and ``--dry-run``: the
sweep subcommand's flags and what it does (the CLI room adds it to its parser).

The dry run names the preset, the device and every row (the first 20, then how many more);
Ctrl-C during a run keeps every finished row and the same command resumes (:func:`interrupted`
says so in one line).

May import: errors, threads, capacity, blendlab.sweep.spec, blendlab.sweep.core, blendlab.sweep.backends.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["add_sweep_parser", "run_sweep_command", "interrupted"]

#: Rows the dry run lists one by one; beyond them it says how many more.
LISTED_ROWS = 20


def add_sweep_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("sweep", help="run a sweep spec (inputs × settings × seeds), resumable, locally or on Ray")
    p.add_argument("spec", help="a .yaml, .toml or .json sweep spec (see blendlab.sweep.spec)")
    p.add_argument("--out", default=None,
                   help="the sweep folder (records, images, results.csv); running again resumes it")
    p.add_argument("--backend", choices=["local", "ray"], default="local",
                   help="local: serial, in this process; ray: Ray Data actors (the ray extra)")
    p.add_argument("--address", default=None, help="a Ray cluster (default: RAY_ADDRESS, else a local one)")
    p.add_argument("--workers", type=int, default=None, help="Ray actors (default: one per GPU, else per CPU)")
    p.add_argument("--dry-run", action="store_true", dest="dry_run",
                   help="validate, print the row count and an estimated time (one measured step), run nothing")
    p.add_argument("--no_measure", action="store_true", help="with --dry-run: do not load a model to time a step")
    p.add_argument("--no_progress", action="store_true", help="no progress bar")
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads (default: the policy of blendlab.threads for the spec's preset: "
                        "at most two for toy and tiny, torch's default for real presets)")
    return p


def _device():
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _check_batches(rows, device) -> None:
    """Refuse (before any work) a sweep whose batch will not fit here (:mod:`blendlab.capacity`)."""
    from ..capacity import check_batch_fits
    from .spec import row_config

    seen = set()
    for row in rows:
        cfg = row_config(row)
        key = (row["preset"], cfg.batch_size, cfg.aug_num)
        if key not in seen:
            seen.add(key)
            check_batch_fits(*key, device, flag="batch_size")


def _row_line(row) -> str:
    setting = ", ".join(f"{k}={v}" for k, v in row["setting"].items()) or "no grid"
    return f"  {row['id']}  {row['input'].get('name')}  {setting}  seed {row['seed']}"


def interrupted(args, again: str):
    """The line an interrupted ``blendlab sweep`` ends with: how many rows are done and kept, how to resume."""
    def say() -> str:
        if args.dry_run or not args.out:
            return "nothing was run"
        from .core import summary
        from .spec import expand

        counts = summary(args.out, expand(args.spec))
        return (f"{counts['done']}/{counts['rows']} rows done and kept in {args.out} (results.csv is "
                f"rebuilt when the sweep finishes); {again} to resume: finished rows are skipped")
    return say


def run_sweep_command(args) -> int:
    """Run (or with ``--dry-run`` estimate) a sweep; exit status 1 when a row failed."""
    from .backends import run_sweep
    from .core import estimate
    from .spec import expand, validate

    from ..threads import apply_thread_policy

    if not args.dry_run and not args.out:
        print("blendlab sweep: error: give --out DIR (or --dry-run)", file=sys.stderr)
        return 2
    rows = validate(expand(args.spec))  # before any model loads, and before the threads are set
    preset = rows[0]["preset"]
    if args.backend == "local":  # Ray's workers may be other machines: their memory is not ours to judge
        _check_batches(rows, _device())
    apply_thread_policy(preset, args.threads)
    if args.dry_run:
        device = _device()
        print(f"preset {preset} on {device}: {len(rows)} rows")
        for row in rows[:LISTED_ROWS]:
            print(_row_line(row))
        if len(rows) > LISTED_ROWS:
            print(f"  ... and {len(rows) - LISTED_ROWS} more")
        est = estimate(rows, measure=not args.no_measure, device=device)
        line = f"{est['rows']} rows, {est['sample_steps']} sample-steps"
        if "seconds" in est:
            line += (f"; about {est['seconds'] / 60:.1f} min serial on this machine "
                     f"({est['seconds_per_sample_step'] * 1000:.1f} ms per sample-step measured)")
        print(line)
        return 0
    result = run_sweep(args.spec, args.out, backend=args.backend, address=args.address, workers=args.workers,
                       progress=not args.no_progress)
    print(f"sweep {args.out}: {result['done']}/{result['rows']} done, {result['failed']} failed, "
          f"{result['skipped']} skipped (finished before), {result['missing']} missing; "
          f"table: {Path(args.out) / 'results.csv'}")
    return 1 if result["failed"] else 0
