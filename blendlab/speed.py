"""The speed lab: fast modes of Blended Diffusion, measured by what the edits show.

Blended Diffusion is slow: every one of its 75 steps runs the UNet forward *and backward* and CLIP on
8 augmented views. Each fast mode here is a named set of :class:`~blendlab.EditConfig` overrides that
gives something up for time (the paper's algorithm is the default and stays the default):

- :data:`MODES`: the modes, each with what it gives up; ``mode.config(base)`` applies it;
- :func:`toy_suite`: a fixed, seeded suite of toy-world edits, "a {colour} {shape}" into an empty
  masked area of several scenes, at any image size;
- :func:`run_edit`: one edit of the suite run to a ranked set: CPU and wall time, UNet forwards,
  UNet backward passes, CLIP views, and the toy world's independent judge on every sample;
- :func:`summarize`: per mode, success rates of the best-ranked sample and of all samples (with
  95 % Wilson intervals), time per ranked set, paired time ratios, the expected time to the first
  judge-correct best-ranked result, and whether the mode is on the Pareto front;
- :func:`plot_pareto`: success against CPU seconds, the front drawn; :func:`load_results` reads the
  committed benchmark figures (``docs/quality_per_second.json``).

``benchmarks/quality_per_second.py`` runs the whole comparison (with the reference loop as one more
arm); lesson ``11_speed`` reads its results. Plotting functions return matplotlib ``Figure`` objects.

May import: runner, sampler, masks, toyworld, download.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import random
import statistics
import time
from pathlib import Path

import torch

from .masks import box_mask
from .sampler import EditConfig
from .toyworld import COLORS, SHAPES, random_layout, render_scene
from .toyworld.judge import judge

__all__ = ["Mode", "MODES", "mode", "SuiteEdit", "toy_suite", "run_edit", "wilson", "summarize",
           "pareto_front", "plot_pareto", "results_table", "load_results", "RESULTS_FILE"]

#: Where the benchmark's figures are committed, relative to the repository root.
RESULTS_FILE = "docs/quality_per_second.json"


@dataclasses.dataclass(frozen=True)
class Mode:
    """A named way to run an edit. ``overrides`` go into the base EditConfig; ``steps_fraction``
    respaces to that fraction of the base's steps, with DDIM when ``ddim``, skipping as many as put
    the first step nearest the base's first timestep (the same starting noise level)."""

    key: str
    label: str
    gives_up: str
    overrides: dict = dataclasses.field(default_factory=dict)
    steps_fraction: float | None = None
    ddim: bool = False

    def config(self, base: EditConfig) -> EditConfig:
        """``base`` with this mode applied (``keep`` is capped at the base's batch size)."""
        changes = dict(self.overrides)
        if self.steps_fraction is not None:
            n = max(2, round(base.num_steps_total() * self.steps_fraction))
            respacing = f"ddim{n}" if self.ddim else str(n)
            start = _first_timestep(base.timestep_respacing, base.skip_timesteps)
            skip = min(range(n - 1), key=lambda s: abs(_first_timestep(respacing, s) - start))
            changes.update(timestep_respacing=respacing, ddim=self.ddim, skip_timesteps=skip)
        if "keep" in changes:
            changes["keep"] = min(changes["keep"], base.batch_size)
        return base.replace(**changes)


def _first_timestep(respacing: str, skip: int) -> int:
    """The timestep (of 1000) the first kept step of ``respacing`` after ``skip`` skipped ones stands for."""
    from guided_diffusion.respace import space_timesteps

    kept = sorted(space_timesteps(1000, respacing))
    return kept[len(kept) - 1 - skip]


MODES: tuple[Mode, ...] = (
    Mode("default", "paper (default)", "nothing: every step guided through the UNet, 8 CLIP views"),
    Mode("prune-0.3-keep-1", "prune at 30 %, keep 1",
         "choice: only the candidate whose early x̂0 CLIP liked best is finished; early x̂0 can mislead",
         dict(prune_at=0.3, keep=1)),
    Mode("prune-0.5-keep-2", "prune at 50 %, keep 2", "choice: half the candidates stop halfway",
         dict(prune_at=0.5, keep=2)),
    Mode("steps-1/2", "half the steps", "step size: each step jumps twice as far and guides half as often",
         steps_fraction=0.5),
    Mode("steps-1/4", "quarter of the steps", "step size: 4x larger jumps, a quarter of the guidance",
         steps_fraction=0.25),
    Mode("ddim-1/4", "DDIM, quarter of the steps",
         "noise: deterministic updates (eta 0) cannot wash out a bad early step; fewer steps",
         steps_fraction=0.25, ddim=True),
    Mode("every-2-reuse", "guide every 2nd step, reuse", "freshness: in-between steps apply a one-step-old gradient",
         dict(guidance_every=2)),
    Mode("every-2-none", "guide every 2nd step only", "strength: half the steps are unguided",
         dict(guidance_every=2, guidance_between="none")),
    Mode("every-3-reuse", "guide every 3rd step, reuse", "freshness: gradients up to two steps old",
         dict(guidance_every=3)),
    Mode("mpgd", "Jacobian-free (MPGD)",
         "the UNet's Jacobian: the gradient w.r.t. x̂0 ignores how x̂0 reacts to x_t (stronger, rougher at high noise)",
         dict(guidance_gradient="mpgd")),
    Mode("views-2-late", "2 CLIP views in the 2nd half",
         "averaging: late gradients from 2 views are noisier and easier to satisfy adversarially",
         dict(late_aug_num=2, late_at=0.5)),
    Mode("guide-60", "guide the first 60 % (Adaptive Guidance)", "late steering: the last 40 % follow the prior only",
         dict(guidance_until=0.6)),
    Mode("mpgd-steps-1/4", "MPGD + quarter of the steps", "both: the Jacobian and the step size",
         dict(guidance_gradient="mpgd"), steps_fraction=0.25),
    Mode("mpgd-every-2-prune", "MPGD, guide every 2nd, prune 30 % keep 1", "all three",
         dict(guidance_gradient="mpgd", guidance_every=2, prune_at=0.3, keep=1)),
)


def mode(key: str) -> Mode:
    """The mode called ``key`` (see :data:`MODES`)."""
    for m in MODES:
        if m.key == key:
            return m
    raise KeyError(f"no fast mode {key!r}; choose one of {', '.join(m.key for m in MODES)}")


# -- the suite --------------------------------------------------------------------------------------
#: Empty regions (x0, y0, x1, y1) the suite's edits go into; the scenes keep them free.
REGIONS = ((0.5, 0.46, 0.98, 0.94), (0.02, 0.04, 0.5, 0.52), (0.5, 0.02, 0.98, 0.5), (0.02, 0.5, 0.5, 0.98))


@dataclasses.dataclass
class SuiteEdit:
    """One edit: put "a {colour} {shape}" into ``mask`` of ``image`` with ``seed``."""

    index: int
    scene: int
    image: torch.Tensor
    mask: torch.Tensor
    colour: str
    shape: str
    seed: int

    @property
    def prompt(self) -> str:
        return f"a {self.colour} {self.shape}"


def toy_suite(scenes: int = 4, prompts_per_scene: int = 4, size: int = 32, seed: int = 0) -> list[SuiteEdit]:
    """A seeded suite: ``scenes`` toy scenes (two objects, one empty region each) × ``prompts_per_scene``
    prompts, the colour × shape pairs dealt in a seeded order so every colour and shape recurs."""
    pairs = list(itertools.product(COLORS, SHAPES))
    random.Random(seed).shuffle(pairs)
    edits = []
    for s in range(scenes):
        region = REGIONS[s % len(REGIONS)]
        objects, background = random_layout(2000 + 100 * seed + s, n_objects=2, keep_free=region)
        image, mask = render_scene(objects, size, background), box_mask(size, region)
        for p in range(prompts_per_scene):
            k = s * prompts_per_scene + p
            colour, shape = pairs[k % len(pairs)]
            edits.append(SuiteEdit(k, s, image, mask, colour, shape, seed=1000 * seed + k))
    return edits


# -- running and judging ----------------------------------------------------------------------------
def _blendlab_edit(models, image, mask, cfg):
    from .runner import edit  # the runner (a room above the sampler)

    result = edit(models, image, mask, cfg, progress=False)
    return result.images, result.distances, result.sample_masks


def run_edit(models, item: SuiteEdit, cfg: EditConfig, generate=None, keep_images: bool = False) -> dict:
    """Run one suite edit to a ranked set and judge every sample.

    ``generate(models, image, mask, cfg) -> (images, distances, masks)`` makes the ranked set
    (default :func:`blendlab.edit`; the benchmark passes the reference loop). Returns a JSON-ready
    record: ``cpu_s``/``wall_s`` of ``generate``; ``unet_forwards``, ``unet_rows`` (batch entries),
    ``unet_backwards`` (forwards that built a graph; each is back-propagated once), ``clip_views``
    (images CLIP encoded, ranking included); per sample ``correct`` (colour and shape) and
    ``colour_correct``; ``order`` (best first) and the best-ranked sample's verdict; with
    ``keep_images`` also ``images`` (N, 3, H, W), best first (not JSON).
    """
    generate = generate or _blendlab_edit
    cfg = cfg.replace(prompt=item.prompt, seed=item.seed)
    counts = dict(unet_forwards=0, unet_rows=0, unet_backwards=0, clip_views=0)

    def on_unet(module, args, output):
        counts["unet_forwards"] += 1
        counts["unet_rows"] += int(args[0].shape[0])
        counts["unet_backwards"] += int(output.requires_grad)

    def on_clip(module, args, output):
        counts["clip_views"] += int(args[0].shape[0])

    handles = [models.unet.register_forward_hook(on_unet), models.clip.visual.register_forward_hook(on_clip)]
    try:
        cpu0, wall0 = time.process_time(), time.perf_counter()
        images, distances, masks = generate(models, item.image, item.mask, cfg)
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    finally:
        for h in handles:
            h.remove()
    verdicts = judge(images, masks)
    order = torch.argsort(distances.detach().cpu(), stable=True).tolist()
    correct = [v.holds(item.colour, item.shape) for v in verdicts]
    colour_correct = [v.holds(item.colour) for v in verdicts]
    record = dict(edit=item.index, scene=item.scene, prompt=item.prompt, seed=item.seed, cpu_s=cpu, wall_s=wall,
                  **counts, samples=len(verdicts), correct=correct, colour_correct=colour_correct, order=order,
                  best_correct=correct[order[0]], best_colour_correct=colour_correct[order[0]],
                  verdicts=[[v.colour, v.shape] for v in verdicts])
    if keep_images:
        record["images"] = images.detach().cpu()[order]
    return record


# -- summaries --------------------------------------------------------------------------------------
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
    """Per mode, from ``{mode key: [run_edit records]}``: rates with Wilson intervals, times, counts,
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


def plot_pareto(summary: dict, labels: dict | None = None, title: str | None = None):
    """Two panels, success rate against CPU seconds per ranked set (log scale): the best-ranked
    sample (left) and all samples (right), 95 % Wilson intervals, the Pareto front of the left
    panel drawn. Points are numbered; the key underneath names them (``labels`` maps mode keys to
    display names; default the keys)."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FormatStrFormatter

    labels = labels or {}
    fig, axes = plt.subplots(1, 2, figsize=(10, 7.4), sharex=True, sharey=True)
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.36, top=0.9, wspace=0.06)
    numbers = {key: n for n, key in enumerate(summary, start=1)}
    front = sorted((k for k, v in summary.items() if v.get("pareto")), key=lambda k: summary[k]["cpu_s_per_set"])
    for ax, metric, what in ((axes[0], "best_success", "best-ranked sample"), (axes[1], "all_success", "all samples")):
        for key, v in summary.items():
            lo, hi = v[f"{metric}_ci"]
            x, y = v["cpu_s_per_set"], 100 * v[metric]
            style = dict(marker="X", color="black", ms=10) if key == "reference" else \
                dict(marker="*", color="tab:red", ms=15) if key == "default" else \
                dict(marker="o", color="tab:blue" if v.get("pareto") else "tab:gray", ms=7)
            ax.errorbar(x, y, yerr=[[y - 100 * lo], [100 * hi - y]], fmt="none", capsize=2, lw=0.7, alpha=0.4,
                        ecolor=style["color"])
            ax.plot(x, y, linestyle="none", **style)
            ax.annotate(str(numbers[key]), (x, y), textcoords="offset points", xytext=(4, 3), fontsize=9)
        if metric == "best_success" and front:
            ax.step([summary[k]["cpu_s_per_set"] for k in front], [100 * summary[k][metric] for k in front],
                    where="post", color="tab:blue", lw=1, alpha=0.6, label="Pareto front")
            ax.legend(loc="lower right", fontsize=9)
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FormatStrFormatter("%g"))
        ax.xaxis.set_minor_formatter(FormatStrFormatter("%g"))
        ax.tick_params(axis="x", which="minor", labelsize=9)
        ax.set_xlabel("CPU seconds per ranked set (log scale)")
        ax.set_title(f"judge-correct: {what}")
        ax.grid(alpha=0.3, which="both")
    axes[0].set_ylabel("judge-correct (colour and shape), % (95 % interval)")
    keys = [f"{n:2d}  {labels.get(k, k)}" for k, n in numbers.items()]
    half = (len(keys) + 1) // 2  # the key in two columns under the panels: the figure fits a notebook column
    for x, column in ((0.08, keys[:half]), (0.53, keys[half:])):
        fig.text(x, 0.25, "\n".join(column), va="top", ha="left", fontsize=9, family="monospace")
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


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


def load_results(path=None, url: str | None = None) -> dict | None:
    """The committed benchmark results: ``path``, else :data:`RESULTS_FILE` in this checkout (or
    under the working directory or its parent), else, when ``url`` is given and blendlab is not
    offline, that URL (e.g. the file on GitHub). None when there is none."""
    candidates = [Path(path)] if path else [Path(__file__).resolve().parents[1] / RESULTS_FILE,
                                            Path.cwd() / RESULTS_FILE, Path.cwd().parent / RESULTS_FILE]
    for p in candidates:
        if p.is_file():
            return json.loads(p.read_text())
    if url and not path:
        import urllib.request

        from .download import is_offline

        if not is_offline():
            try:
                with urllib.request.urlopen(url, timeout=5) as f:
                    return json.loads(f.read())
            except (OSError, ValueError):
                return None
    return None
