"""What the judged runs add up to: Wilson intervals, per-mode summaries with paired time ratios,
the Pareto front and the benchmark's text table.

May import: nothing.
"""

from __future__ import annotations

import math
import statistics

__all__ = ["wilson", "summarize", "pareto_front", "results_table"]


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson score interval of a success rate (robust at 0 % and 100 %)."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def _paired(records: list, baseline: list, key: str) -> dict:
    """Per-edit ratios of ``key`` (same edits, run alternately) and their median; ratio of totals."""
    by_edit = {r["edit"]: r[key] for r in baseline}
    ratios = [r[key] / by_edit[r["edit"]] for r in records if by_edit.get(r["edit"])]
    total = sum(r[key] for r in records) / max(sum(by_edit[r["edit"]] for r in records), 1e-12)
    return dict(median=statistics.median(ratios) if ratios else float("nan"), of_totals=total,
                per_edit=ratios)


def summarize(records: dict, reference: str | None = "reference", default: str = "default") -> dict:
    """Per mode, from ``{mode key: [run_suite_edit records]}``: rates with Wilson intervals, times, counts,
    paired ratios to ``reference`` and ``default`` (when present), the expected CPU time to the first
    judge-correct best-ranked result, and the Pareto flag (best-ranked success vs CPU s per set).

    The expected time to a judge-correct top result: re-running an edit with fresh seeds until its
    best-ranked sample is judge-correct takes on average ``CPU s per ranked set / best success rate``.
    """
    out = {}
    for key, rs in records.items():
        n, samples = len(rs), sum(r["samples"] for r in rs)
        best = sum(r["best_correct"] for r in rs)
        every = sum(sum(r["correct"]) for r in rs)
        s = dict(edits=n, samples=samples,
                 best_success=best / n, best_success_ci=wilson(best, n),
                 all_success=every / samples, all_success_ci=wilson(every, samples),
                 best_colour=sum(r["best_colour_correct"] for r in rs) / n,
                 all_colour=sum(sum(r["colour_correct"]) for r in rs) / samples)
        for k in ("cpu_s", "wall_s", "unet_forwards", "unet_rows", "unet_backwards", "clip_views"):
            s[k] = sum(r[k] for r in rs)
            s[f"{k}_per_set"] = s[k] / n
        s["time_to_first_correct_cpu_s"] = s["cpu_s_per_set"] / s["best_success"] if best else None
        s["time_to_first_correct_colour_cpu_s"] = (s["cpu_s_per_set"] / s["best_colour"]) if s["best_colour"] else None
        for name, base in (("reference", reference), ("default", default)):
            if base in records and base != key:
                s[f"cpu_ratio_vs_{name}"] = _paired(rs, records[base], "cpu_s")
                s[f"wall_ratio_vs_{name}"] = _paired(rs, records[base], "wall_s")
        out[key] = s
    front = pareto_front({k: (v["cpu_s_per_set"], v["best_success"]) for k, v in out.items()})
    for k, v in out.items():
        v["pareto"] = k in front
    return out


def pareto_front(points: dict) -> list:
    """Keys of ``{key: (cost, value)}`` no other point beats: as cheap or cheaper *and* as good or
    better, strictly in one. Sorted by cost."""
    front = [k for k, (c, v) in points.items()
             if not any((c2 <= c and v2 >= v) and (c2 < c or v2 > v) for c2, v2 in points.values())]
    return sorted(front, key=lambda k: points[k][0])


def results_table(results: dict) -> list[str]:
    """The benchmark's per-mode table (a list of text lines) from its results: steps, CPU and wall s
    per ranked set, paired time ratios to the reference loop and the default, UNet forwards and
    backward passes, CLIP views, judge success (best-ranked and all, colour alone), expected CPU s
    to the first judge-correct best result, TFLOP per sample at the real config, Pareto front."""
    r_key = "cpu" if results.get("timing_basis", "cpu") == "cpu" else "wall"
    lines = [f"{'mode':24s}{'steps':>6s}{'CPU s/set':>10s}{'wall s/set':>11s}{'x ref':>7s}{'x dflt':>7s}"
             f"{'UNet fwd':>9s}{'bwd':>5s}{'CLIP views':>11s}{'best ok':>9s}{'95% CI':>12s}{'all ok':>8s}"
             f"{'colour best/all':>16s}{'s to 1st ok':>12s}{'TFLOP/smp':>10s}  front"]
    for key, v in results["modes"].items():
        lo, hi = v["best_success_ci"]
        ttf = v["time_to_first_correct_cpu_s"]
        xr = v.get(f"{r_key}_ratio_vs_reference", {}).get("median", 1.0 if key == "reference" else math.nan)
        xd = v.get(f"{r_key}_ratio_vs_default", {}).get("median", 1.0 if key == "default" else math.nan)
        tf = v.get("real_config", {}).get("tflop_per_sample")
        ci, colour = f"{lo:.0%}-{hi:.0%}", f"{v['best_colour']:.0%}/{v['all_colour']:.0%}"
        lines.append(
            f"{key:24s}{v['steps']:6d}{v['cpu_s_per_set']:10.1f}{v['wall_s_per_set']:11.1f}{xr:7.2f}{xd:7.2f}"
            f"{v['unet_forwards_per_set']:9.0f}{v['unet_backwards_per_set']:5.0f}{v['clip_views_per_set']:11.0f}"
            f"{v['best_success']:9.0%}{ci:>12s}{v['all_success']:8.0%}{colour:>16s}"
            f"{(f'{ttf:.0f}' if ttf else 'never'):>12s}{(f'{tf:.0f}' if tf else '-'):>10s}  "
            f"{'*' if v['pareto'] else ''}")
    return lines
