"""``blendlab sweep SPEC --out DIR [--backend local|ray] [--address ...]`` and ``--dry-run``: the
sweep subcommand's flags and what it does (the CLI room adds it to its parser).

May import: errors, blendlab.sweep.spec, blendlab.sweep.core, blendlab.sweep.backends.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["add_sweep_parser", "run_sweep_command"]


def add_sweep_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("sweep", help="run a sweep spec (inputs × settings × seeds), resumable, locally or on Ray")
    p.add_argument("spec", help="a .yaml, .toml or .json sweep spec (see blendlab.sweep.spec)")
    p.add_argument("--out", default=None,
                   help="the sweep folder (records, images, results.csv); running again resumes it")
    p.add_argument("--backend", choices=["local", "ray"], default="local")
    p.add_argument("--address", default=None, help="a Ray cluster (default: RAY_ADDRESS, else a local one)")
    p.add_argument("--workers", type=int, default=None, help="Ray actors (default: one per GPU, else per CPU)")
    p.add_argument("--dry-run", action="store_true", dest="dry_run",
                   help="validate, print the row count and an estimated time (one measured step), run nothing")
    p.add_argument("--no_measure", action="store_true", help="with --dry-run: do not load a model to time a step")
    p.add_argument("--no_progress", action="store_true")
    return p


def run_sweep_command(args) -> int:
    """Run (or with ``--dry-run`` estimate) a sweep; exit status 1 when a row failed."""
    from .backends import run_sweep
    from .core import estimate
    from .spec import expand, validate

    if args.dry_run:
        rows = validate(expand(args.spec))
        est = estimate(rows, measure=not args.no_measure)
        line = f"{est['rows']} rows, {est['sample_steps']} sample-steps"
        if "seconds" in est:
            line += (f"; about {est['seconds'] / 60:.1f} min serial on this machine "
                     f"({est['seconds_per_sample_step'] * 1000:.1f} ms per sample-step measured)")
        print(line)
        return 0
    if not args.out:
        print("blendlab sweep: error: give --out DIR (or --dry-run)", file=sys.stderr)
        return 2
    result = run_sweep(args.spec, args.out, backend=args.backend, address=args.address, workers=args.workers,
                       progress=not args.no_progress)
    print(f"sweep {args.out}: {result['done']}/{result['rows']} done, {result['failed']} failed, "
          f"{result['skipped']} skipped (finished before), {result['missing']} missing; "
          f"table: {Path(args.out) / 'results.csv'}")
    return 1 if result["failed"] else 0
