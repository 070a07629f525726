"""The speed benchmark's comparisons: the arms alternate on the same models and inputs, their order
rotating every repeat, and are compared run by run (:func:`compare`: speed-up, recorder overhead);
progressive pruning runs many candidates pruned early against as many full samples
(:func:`prune_benchmark`).

May import: blendlab, benchmarks.speed_arms.
"""

from __future__ import annotations

import dataclasses
import gc
import statistics
import time

import blendlab as bl
from blendlab.models import Models

from benchmarks.speed_arms import METHODS, ForwardCounter, bench_config, run_once, sync

__all__ = ["compare", "prune_supported", "prune_benchmark"]


def _median(values):
    return statistics.median(values) if values else float("nan")


def _ratios(num: list, den: list, minus: float = 0.0) -> dict:
    """Per-repeat ratios of neighbouring runs (``num/den − minus``), on wall time and on CPU time,
    with their medians, plus the ratio of medians and of the fastest runs (wall)."""
    wall = [a["seconds"] / b["seconds"] - minus for a, b in zip(num, den)]
    cpu = [a["cpu_seconds"] / b["cpu_seconds"] - minus for a, b in zip(num, den)]
    return dict(per_repeat=wall, median=_median(wall), cpu_per_repeat=cpu, cpu_median=_median(cpu),
                ratio_of_medians=_median([a["seconds"] for a in num]) / _median([b["seconds"] for b in den]) - minus,
                ratio_of_minimums=min(a["seconds"] for a in num) / min(b["seconds"] for b in den) - minus)


def compare(models: Models, image, mask, cfg: bl.EditConfig, repeats: int = 3, warmup: int = 1,
            methods=METHODS, recorder_size: int | None = None) -> dict:
    """Alternate the arms ``repeats`` times (after ``warmup`` rounds), rotating their order.

    Returns per-method run lists and medians (s/step, s/sample), forwards per step, and per-repeat
    ratios: ``speedup`` = reference / blendlab, ``recorder_overhead`` = recorder / blendlab − 1.
    """
    methods = list(methods)
    if recorder_size is None:
        recorder_size = max(8, models.image_size // 2)
    runs = {m: [] for m in methods}
    for r in range(warmup + repeats):
        k = r % len(methods)
        for method in methods[k:] + methods[:k]:
            res = run_once(method, models, image, mask, cfg, recorder_size=recorder_size)
            if r >= warmup:
                runs[method].append(res)
            gc.collect()
    loads = [x["load_1min"] for rs in runs.values() for x in rs if x["load_1min"] is not None]
    out = dict(steps=cfg.num_steps, batch=cfg.batch_size, aug_num=cfg.aug_num, repeats=repeats,
               warmup=warmup, recorder_size=recorder_size, load_1min_max=max(loads, default=None),
               methods={})
    for method, rs in runs.items():
        secs = [x["seconds"] for x in rs]
        med = _median(secs)
        out["methods"][method] = dict(
            seconds=secs, cpu_seconds=[x["cpu_seconds"] for x in rs], median_s=med,
            s_per_step=med / cfg.num_steps,
            cpu_s_per_step=_median([x["cpu_seconds"] for x in rs]) / cfg.num_steps,
            s_per_sample=med / cfg.batch_size,
            s_per_sample_75_steps=med / cfg.num_steps / cfg.batch_size * 75,
            forwards_per_step=sorted({x["forwards_per_step"] for x in rs}),
        )
    if "blendlab" in runs and "reference" in runs:
        out["speedup"] = _ratios(runs["reference"], runs["blendlab"])
    if "blendlab" in runs and "recorder" in runs:
        over = _ratios(runs["recorder"], runs["blendlab"], minus=1.0)
        over["recorded_mb"] = runs["recorder"][-1]["recorded_mb"]
        out["recorder_overhead"] = over
    return out


def prune_supported() -> bool:
    """Whether this blendlab's EditConfig has progressive pruning (``prune_at``/``keep``)."""
    return "prune_at" in {f.name for f in dataclasses.fields(bl.EditConfig)}


def prune_benchmark(models: Models, image, mask, steps: int = 20, candidates: int = 64, keep: int = 8,
                    prune_at: float = 0.3, batch: int = 16, aug_num: int = 8) -> dict:
    """``candidates`` samples pruned to ``keep`` at ``prune_at`` vs ``candidates`` full samples.

    Both go through :func:`blendlab.edit` in ``candidates / batch`` batches; each batch keeps
    ``keep · batch / candidates`` rows. Reports seconds, UNet rows processed (a forward hook), and
    the ratio the step counts predict.
    """
    if not prune_supported():
        return dict(skipped="EditConfig has no prune_at field: progressive pruning is not implemented "
                            "in this blendlab, so this part was not run")
    if candidates % batch or (keep * batch) % candidates:
        raise ValueError(f"candidates={candidates} must split into batches of {batch} that each keep "
                         f"an integer share of keep={keep}")
    iterations = candidates // batch
    keep_per_batch = keep * batch // candidates
    base = bench_config(steps, batch, aug_num=aug_num).replace(iterations_num=iterations)
    cfgs = {"full": base, "pruned": base.replace(prune_at=prune_at, keep=keep_per_batch)}
    res = dict(candidates=candidates, keep=keep, prune_at=prune_at, steps=steps, batch=batch,
               iterations=iterations, keep_per_batch=keep_per_batch)
    for name, cfg in cfgs.items():
        device = models.device
        with ForwardCounter(models.unet) as counter:
            sync(device)
            cpu_start = time.process_time()
            start = time.perf_counter()
            result = bl.edit(models, image, mask, cfg, progress=False)
            sync(device)
            seconds = time.perf_counter() - start
            cpu_seconds = time.process_time() - cpu_start
        res[name] = dict(seconds=seconds, cpu_seconds=cpu_seconds, images=int(result.images.shape[0]),
                         unet_rows=counter.rows,
                         unet_forwards=counter.calls)
        gc.collect()
    before = cfgs["pruned"].prune_index + 1
    res["steps_before_prune"] = before
    res["time_ratio"] = res["pruned"]["seconds"] / res["full"]["seconds"]
    res["cpu_time_ratio"] = res["pruned"]["cpu_seconds"] / res["full"]["cpu_seconds"]
    res["rows_ratio"] = res["pruned"]["unet_rows"] / res["full"]["unet_rows"]
    res["predicted_ratio"] = (before * batch + (steps - before) * keep_per_batch) / (steps * batch)
    res["speedup"] = 1 / res["time_ratio"]
    return res

