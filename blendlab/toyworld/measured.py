"""What the shipped toy weights do: the paper's claims as ``benchmarks/toyworld_eval.py`` measured them.

The benchmark writes ``weights/toy_eval.json`` next to the weights it measured (with their sha256),
and the lessons show these tables instead of numbers typed into prose:

    >>> from blendlab.toyworld.measured import claims_table
    >>> claims_table("guided")          # claim 1: "a {colour} {shape}" into an empty area

:func:`measured_claims` raises a clear error when the file is missing or was measured on other weights
than the ones shipped (re-run the benchmark after retraining).

May import: checkpoints, errors, table.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..checkpoints import toy_card
from ..errors import CheckpointError
from ..table import Table

__all__ = ["EVAL_FILE", "CLAIMS", "measured_claims", "claims_table", "claims_source", "converged",
           "ATTACK_FILE", "measured_attack", "measured_attack_table", "attack_table", "attack_row"]

#: The shipped measurements (package data, next to the weights and their cards).
EVAL_FILE = Path(__file__).resolve().parent / "weights" / "toy_eval.json"

#: The zero-shot typographic attack as ``benchmarks/typography_attack.py --ship`` measured it.
ATTACK_FILE = EVAL_FILE.with_name("toy_attack_eval.json")
_RERUN_ATTACK = "re-run `python benchmarks/typography_attack.py --ship`"

#: The claims :func:`claims_table` can show.
CLAIMS = ("guided", "background", "augmentations", "ranking")

_RERUN = ("re-run `python benchmarks/toyworld_eval.py --claims 1,4 --out a.json` and `--claims 2,3 --out b.json`, "
          f"then `--merge a.json b.json --out {EVAL_FILE.relative_to(EVAL_FILE.parents[3])}`")


def converged(mode: dict) -> bool:
    """Whether a mode of the background claim stayed finite and near the image range (an exploding
    baseline reaches values of millions: mean |Δ| outside the mask, in [0, 1] units, cannot exceed 1
    for images in range)."""
    return mode.get("finite", True) and mode.get("outside_abs_change", 2.0) <= 1.0


def measured_claims(path: str | Path | None = None, check_weights: bool = True) -> dict:
    """The benchmark's JSON report. With ``check_weights``, the weights it names must be the shipped ones."""
    path = Path(path) if path is not None else EVAL_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no toy-world measurements at {path}: {_RERUN}")
    report = json.loads(path.read_text())
    if check_weights:
        measured = report.get("weights")
        if not measured:
            raise CheckpointError(f"{path} does not say which weights it measured: {_RERUN}")
        for kind in ("unet", "clip"):
            card = toy_card(kind)
            if measured.get(kind) != card["sha256"]:
                raise CheckpointError(
                    f"{path} measured other toy {kind} weights (sha256 {str(measured.get(kind))[:12]}…) than the "
                    f"shipped ones ({card['sha256'][:12]}…): {_RERUN}")
    return report


def claims_source(report: dict | None = None) -> str:
    """One line saying where the numbers come from (for a lesson to print under a table)."""
    r = report if report is not None else measured_claims()
    m, s = r["machine"], r["settings"]
    return (f"measured by benchmarks/toyworld_eval.py with the shipped toy weights on {m.get('cpu', '?')} "
            f"({m.get('cores', '?')} cores), the paper's settings: λ_clip {s['clip_guidance_lambda']:g}, "
            f"λ_range {s['range_lambda']:g}, {s['aug_num']} views, {s['timestep_respacing']} steps with "
            f"{s['skip_timesteps']} skipped")


def claims_table(claim: str, report: dict | None = None) -> Table:
    """One claim's measurements as a :class:`~blendlab.table.Table` (rates in %)."""
    if claim not in CLAIMS:
        raise ValueError(f"unknown claim {claim!r}; choose one of {', '.join(CLAIMS)}")
    r = report if report is not None else measured_claims()
    if claim not in r:
        raise KeyError(f"the measurements hold no {claim!r} claim: {_RERUN}")
    c = r[claim]
    pct = lambda v: None if v is None else round(100 * v)  # noqa: E731
    if claim == "guided":
        rows = [dict(request="all", samples=c["samples"], **{"colour %": pct(c["colour_rate"]),
                                                              "shape %": pct(c["shape_rate"]),
                                                              "both %": pct(c["both_rate"])})]
        rows += [dict(request=f"{k} (any shape)", **{"colour %": pct(v)}) for k, v in c["by_colour"].items()]
        rows += [dict(request=f"{k} (any colour)", **{"shape %": pct(v)}) for k, v in c["by_shape"].items()]
        u = c["unguided"]
        rows.append(dict(request="unguided (empty prompt)", samples=u["samples"],
                         **{"colour %": pct(u["colour_rate"]), "shape %": pct(u["shape_rate"])}))
        return Table(rows)
    if claim == "background":
        rows = []
        for name, v in c["modes"].items():
            if converged(v):
                rows.append({"mode": name, "mean |Δ| outside": v["outside_abs_change"], "seam": v["seam"],
                             "red %": pct(v["colour_rate"]), "red circle %": pct(v["success_rate"])})
            else:
                rows.append({"mode": name, "mean |Δ| outside": "diverged"})
        return Table(rows)
    if claim == "augmentations":
        return Table([{"views": k, "guiding CLIP distance": v["clip_distance"], "judge colour %": pct(v["colour_rate"]),
                       "colour + shape %": pct(v["success_rate"]), "samples": v["samples"]} for k, v in c.items()])
    return Table([{"pick": "CLIP's best of the batch", "judge-correct %": pct(c["top1_correct"])},
                  {"pick": "a random sample", "judge-correct %": pct(c["random_correct"])}])


def measured_attack(path: str | Path | None = None, check_weights: bool = True) -> dict:
    """The attack benchmark's JSON report (``rows``: one per CLIP, placement and letter scale). With
    ``check_weights``, the CLIPs it measured must be the shipped "clip" and "clip_reads"."""
    path = Path(path) if path is not None else ATTACK_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no typographic-attack measurements at {path}: {_RERUN_ATTACK}")
    report = json.loads(path.read_text())
    if check_weights:
        for kind, sha in report.get("weights", {}).items():
            shipped = toy_card(kind)["sha256"]
            if sha != shipped:
                raise CheckpointError(f"{path} measured other toy {kind} weights (sha256 {sha[:12]}…) than the "
                                      f"shipped ones ({shipped[:12]}…): {_RERUN_ATTACK}")
        if set(report.get("weights", {})) != {"clip", "clip_reads"}:
            raise CheckpointError(f"{path} does not name the two CLIPs it measured: {_RERUN_ATTACK}")
    return report


def attack_row(clip: str, placement: str, scale: int, report: dict | None = None) -> dict:
    """One measured row: ``clip`` "clip" or "clip_reads", ``placement`` "beside" or "on", letter ``scale``."""
    r = report if report is not None else measured_attack()
    for row in r["rows"]:
        if (row["kind"], row["placement"], row["scale"]) == (clip, placement, scale):
            return row
    raise KeyError(f"no measured row for {clip} / {placement} / scale {scale}: {_RERUN_ATTACK}")


def measured_attack_table(report: dict | None = None) -> Table:
    """The shipped attack measurements as a :class:`~blendlab.table.Table`: shares in % with 95 %
    intervals (:func:`blendlab.typography.attack_table` runs the attack on one image instead)."""
    r = report if report is not None else measured_attack()

    def pct(row, key):
        lo, hi = row[f"{key}_ci"]
        return f"{100 * row[key] / row['n']:.0f} [{100 * lo:.0f}-{100 * hi:.0f}]"

    names = {"clip": "toy CLIP (shipped)", "clip_reads": "toy CLIP that reads"}

    def letters(row):
        if row["at_scale"] == row["n"] or row["scale"] == 1:
            return f"×{row['scale']}"
        return f"×{row['scale']} where it fits ({row['at_scale']}/{row['n']}), else ×1"

    return Table({"CLIP": names[row["kind"]], "card": row["placement"], "letters": letters(row),
                  "scenes": row["n"], "flipped to the word %": pct(row, "flipped"),
                  "blank card changed %": pct(row, "blank_changed"), "card alone read %": pct(row, "alone_read")}
                 for row in r["rows"])


def attack_table(report: dict | None = None) -> Table:
    """Deprecated: :func:`measured_attack_table` (the name clashed with
    :func:`blendlab.typography.attack_table`, which runs the attack)."""
    import warnings

    warnings.warn("blendlab.toyworld.measured.attack_table is deprecated: it is the shipped measurements' table, now "
                  "measured_attack_table (blendlab.typography.attack_table runs the attack on an image)",
                  DeprecationWarning, stacklevel=2)
    return measured_attack_table(report)
