"""What the side-by-side benchmark measured, shipped with the package: Blended Diffusion and Blended
Latent Diffusion on the same toy edits (``benchmarks/bd_vs_bld.py --ship`` writes
:data:`SIDE_BY_SIDE`); the lesson and the README's table read it from here.

May import: errors, table.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import WeightsNotFoundError
from ..table import Table

__all__ = ["SIDE_BY_SIDE", "side_by_side", "side_by_side_table", "ARM_LABELS"]

#: The shipped measurements.
SIDE_BY_SIDE = Path(__file__).resolve().parent / "side_by_side.json"
#: How each (method, background) arm is named in tables.
ARM_LABELS = {("bd", "paste"): "Blended Diffusion (final paste: the paper)",
              ("bd", "none"): "Blended Diffusion, no final paste",
              ("bld", "none"): "Blended Latent Diffusion (no reconstruction: the reference)",
              ("bld", "pixel"): "Blended Latent Diffusion + pixel reconstruction",
              ("bld", "poisson"): "Blended Latent Diffusion + Poisson reconstruction",
              ("bld_wide", "pixel"): "Blended Latent Diffusion + pixel reconstruction, more samples"}


def side_by_side(path: str | Path | None = None) -> dict:
    """The report ``benchmarks/bd_vs_bld.py`` wrote (default: the shipped one)."""
    path = Path(path or SIDE_BY_SIDE)
    if not path.is_file():
        raise WeightsNotFoundError(f"no side-by-side measurements at {path}; run "
                                   "`python benchmarks/bd_vs_bld.py --ship` in a checkout")
    return json.loads(path.read_text())


def _pct(share: float) -> str:
    return f"{100 * share:.0f} %"


def side_by_side_table(report: dict | None = None) -> Table:
    """One row per arm: judged success of the best-ranked sample (colour and shape; colour), of all
    samples, the change outside the mask, the seam, and CPU seconds per sample with the ratio to
    Blended Diffusion's."""
    report = report if report is not None else side_by_side()
    rows = []
    for arm in report["arms"]:
        rows.append({"method": ARM_LABELS[(arm["method"], arm["background"])],
                     "best-ranked correct": _pct(arm["best_success"]), "best-ranked colour": _pct(arm["best_colour"]),
                     "all samples correct": _pct(arm["all_success"]),
                     "outside change (MSE)": f"{arm['outside_mse']:.5f}",
                     "seam (input {:.3f})".format(report["input_seam"]): f"{arm['seam']:.3f}",
                     "samples": arm["samples"], "CPU s / sample": f"{arm['cpu_s_per_sample']:.2f}",
                     "CPU s / ranked set": f"{arm['cpu_s_per_set']:.1f}",
                     "speed-up": f"×{report['speedup'][arm['method']]:.1f}"})
    return Table(rows)
