"""``blendlab edit | demo | download | sweep``: argparse over the same :class:`EditConfig`.

``blendlab edit`` takes the reference ``main.py`` flags (same names, same defaults) and writes what
the reference writes into ``<output_path>``:

- ``<stem>_i_<iteration>_b_<batch index>.png`` per sample: source | mask | edited, titled with the
  prompt and the sample's CLIP distance (:func:`blendlab.viz.comparison_figure`; no mask panel
  without ``--mask``); ``--no_figures`` skips them;
- ``ranked/<distance>_<stem>_i_<iteration>_b_<batch index>.png``: every result, named by its CLIP
  distance (``0.7731`` -> ``07731``);
- with ``--export_assets``, ``assets/``: the input as ``<output_file>``, the mask as
  ``<stem>_mask.png`` (with ``--mask``) and every result as ``<stem>_i_<iteration>_b_<batch index>.png``;
- with ``--vid``, an animated GIF per sample (the reference: AVI).

blendlab adds one file: ``ranked.json``, the prompt, the preset and the ranked files, best first.

The model: ``--model_output_size`` picks a real preset (256 -> "256-uncond", 512 -> "512-cond");
``--preset`` names one directly, and a ``--model_output_size`` that contradicts a real preset is an
error. The tiny presets are mechanics-only stand-ins at 32 px, not constrained by the size (``tiny``
for 256-uncond, ``tiny-cond`` for 512-cond). Every input is checked before any checkpoint is located.

The room's files: :mod:`~blendlab.cli.parser` (the flags), :mod:`~blendlab.cli.edit`,
:mod:`~blendlab.cli.demo`, :mod:`~blendlab.cli.download` (one command each); ``sweep`` runs
:mod:`blendlab.sweep.command`.

Every command runs through :func:`blendlab.cli.console.run`: a mistake is one line
``blendlab <command>: error: ...`` and status 1 (a usage mistake argparse finds: status 2), Ctrl-C one
line saying what was kept and how to resume, status 130; no traceback reaches a user.

May import: blendlab.cli.parser, blendlab.cli.console, blendlab.cli.edit, blendlab.cli.demo,
blendlab.cli.download, blendlab.cli.latent, sweep.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from ..sweep import command as sweep_command
from . import console
from .demo import run_demo
from .download import run_download
from .edit import run_edit
from .latent import run_latent_edit
from .parser import UsageError, build_parser, config_from_args

__all__ = ["main", "build_parser", "config_from_args", "run_edit", "run_demo", "run_download"]


def _files(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if p.is_file()} if folder.is_dir() else set()


def _kept(out: Path, before: set[Path], again: str) -> callable:
    """What an interrupted ``edit`` or ``demo`` kept in ``out`` (every file is written atomically)."""
    def say() -> str:
        new = sorted(_files(out) - before)
        if not new:
            return f"nothing was written to {out} (results are written once every batch is done); {again}"
        return (f"kept {len(new)} finished file(s) in {out}, none half-written, the rest not written; "
                f"{again} to write them all")
    return say


def main(argv: list[str] | None = None) -> int:
    """Run one ``blendlab`` command line; returns the exit status (0 done, 1 an error or a failed
    sweep row, 2 a usage mistake, 130 interrupted)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    again = f"run the same command again ({shlex.join(['blendlab', *(sys.argv[1:] if argv is None else argv)])})"
    run = {"edit": run_latent_edit if getattr(args, "method", "bd") == "bld" else run_edit, "demo": run_demo, "download": run_download,
           "sweep": sweep_command.run_sweep_command}[args.command]
    if args.command in ("edit", "demo"):
        out = Path(args.output_path)
        interrupted = _kept(out, _files(out), again)
    elif args.command == "sweep":
        interrupted = sweep_command.interrupted(args, again)
    else:
        interrupted = lambda: f"no partial download was kept; {again}"  # noqa: E731

    def command() -> int | None:
        try:
            status = run(args)
        except UsageError as exc:
            parser.error(str(exc))
        return status if isinstance(status, int) else 0

    return console.run(args.command, command, interrupted)
