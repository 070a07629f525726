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

May import: errors, blendlab.cli.parser, blendlab.cli.edit, blendlab.cli.demo, blendlab.cli.download,
sweep.
"""

from __future__ import annotations

import sys

from ..sweep import command as sweep_command
from .demo import run_demo
from .download import run_download
from .edit import run_edit
from .parser import UsageError, build_parser, config_from_args

__all__ = ["main", "build_parser", "config_from_args", "run_edit", "run_demo", "run_download"]


def main(argv: list[str] | None = None) -> int:
    from ..errors import BlendlabError

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "edit":
            run_edit(args)
        elif args.command == "demo":
            run_demo(args)
        elif args.command == "sweep":
            return sweep_command.run_sweep_command(args)
        else:
            run_download(args)
    except UsageError as exc:
        parser.error(str(exc))
    except (BlendlabError, FileNotFoundError, ValueError) as exc:
        print(f"blendlab {args.command}: error: {exc}", file=sys.stderr)
        return 1
    return 0

