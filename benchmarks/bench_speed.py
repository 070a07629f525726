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
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import blendlab as bl  # noqa: E402
from blendlab.models import Models, build_tiny_clip, build_unet, count_parameters, diffusion_config, unet_config  # noqa: E402

from benchmarks.reference_loop import ReferenceSampler  # noqa: E402

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

#: Target figures (reported, never asserted).
TARGETS = dict(unet_forwards_per_step=1, min_speedup_mid_cpu=1.35, max_recorder_overhead=0.05)

#: The mid-size UNet: the tiny preset's family at 64 px and 64 channels, attention at 16 and 8.
MID_UNET = dict(image_size=64, num_channels=64, channel_mult="1,2,3,4", attention_resolutions="16,8",
                num_head_channels=64, num_res_blocks=1)

METHODS = ("blendlab", "reference", "recorder")

#: Per config: steps and batch of the default run (--quick: 2 steps, batch 2), and the default
#: repeats where they differ from 7. Runs are short and many, so that alternating neighbours see the
#: same load on a shared machine; every step costs the same, so s/sample@75 extrapolates them to the
#: paper's 75 steps. The real config runs the reference's batch of 4.
DEFAULTS = {"tiny": dict(steps=25, batch=2), "mid": dict(steps=10, batch=1),
            "real": dict(steps=25, batch=4, repeats=3)}

PROMPT = "a stone"


# -- machine and models ------------------------------------------------------------------------------
def machine_info() -> dict:
    """CPU model, cores, threads, torch version, and the GPU if any."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = dict(cpu=cpu, cores=os.cpu_count(), torch_threads=torch.get_num_threads(),
                torch=torch.__version__, python=platform.python_version(), platform=platform.platform(),
                blendlab=bl.__version__, gpu=None)
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
        info["cuda"] = torch.version.cuda
    return info


def _fill_zero_weights(unet: torch.nn.Module) -> None:
    # guided_diffusion zero-initialises output convolutions; random weights keep the graph honest
    for p in unet.parameters():
        if p.dim() > 1 and not torch.any(p):
            torch.nn.init.normal_(p, std=0.02)


def build_models(name: str, device: str | torch.device | None = None) -> tuple[Models, dict]:
    """The models of a benchmark config and a description of them.

    ``tiny``: the tiny preset. ``mid``: :data:`MID_UNET` built with ``build_unet`` + the tiny CLIP
    (random weights, seeded). ``real``: the 256-uncond preset if its weights are cached, else random
    weights of the same architecture (timing does not need trained weights), fp16 UNet on CUDA as
    the reference.
    """
    device = torch.device(device) if device is not None else bl.models.default_device()
    if name == "tiny":
        models = bl.load_models("tiny", device=device)
        weights = "random (tiny preset)"
    elif name == "mid":
        config = dict(unet_config("tiny"), **MID_UNET)
        state = torch.random.get_rng_state()
        try:
            torch.manual_seed(0)
            unet = build_unet(config)
            _fill_zero_weights(unet)
        finally:
            torch.random.set_rng_state(state)
        models = Models(unet=unet.to(device).eval().requires_grad_(False),
                        clip=build_tiny_clip().to(device).eval().requires_grad_(False),
                        image_size=MID_UNET["image_size"], preset="tiny-mid64", device=device,
                        unet_config=config, diffusion_config=diffusion_config(), clip_name="tiny")
        weights = "random (seeded)"
    elif name == "real":
        models, weights = _real_models(device)
    else:
        raise ValueError(f"unknown benchmark config {name!r}; choose tiny, mid or real")
    desc = dict(unet_params=count_parameters(models.unet), clip_params=count_parameters(models.clip),
                image_size=models.image_size, clip_size=models.clip_size, clip=models.clip_name,
                weights=weights, device=str(device), precision=models.precision)
    return models, desc


def _real_models(device: torch.device) -> tuple[Models, str]:
    old = os.environ.get("BLENDLAB_OFFLINE")
    os.environ["BLENDLAB_OFFLINE"] = "1"  # a cache hit or nothing: never start a 2 GB download here
    try:
        return bl.load_models("256-uncond", device=device, progress=False), "trained (cached checkpoints)"
    except (bl.WeightsNotFoundError, bl.DownloadError, bl.CheckpointError, FileNotFoundError):
        pass
    finally:
        if old is None:
            os.environ.pop("BLENDLAB_OFFLINE", None)
        else:
            os.environ["BLENDLAB_OFFLINE"] = old
    import clip.model

    from benchmarks.flops import REAL_CLIP

    use_fp16 = device.type == "cuda"
    config = dict(unet_config("256-uncond"), use_fp16=use_fp16)
    state = torch.random.get_rng_state()
    try:
        torch.manual_seed(0)
        unet = build_unet(config, device=device).eval().requires_grad_(False)
        with torch.device(device):
            clip_net = clip.model.CLIP(**REAL_CLIP)
    finally:
        torch.random.set_rng_state(state)
    if use_fp16:  # as load_models and clip.load do on CUDA
        unet.convert_to_fp16()
        clip.model.convert_weights(clip_net)
    else:
        clip_net = clip_net.float()
    models = Models(unet=unet, clip=clip_net.eval().requires_grad_(False), image_size=256,
                    preset="256-uncond", device=device, unet_config=config,
                    diffusion_config=diffusion_config(), clip_name="ViT-B/16",
                    precision="fp16" if use_fp16 else "fp32")
    return models, "random (real architecture; checkpoints not cached)"


def bench_config(steps: int, batch: int, aug_num: int = 8, seed: int = 0, **extra) -> bl.EditConfig:
    """The EditConfig both loops run: the paper's losses and 8 views, the last ``steps`` of 100."""
    return bl.EditConfig(prompt=PROMPT, timestep_respacing="100", skip_timesteps=100 - steps,
                         batch_size=batch, iterations_num=1, aug_num=aug_num, seed=seed, **extra)


def inputs(models: Models) -> tuple[torch.Tensor, torch.Tensor]:
    size = models.image_size
    return bl.sample_image("grace_hopper", size=size), bl.box_mask(size, (0.25, 0.3, 0.75, 0.8))


# -- measuring ---------------------------------------------------------------------------------------
class ForwardCounter:
    """Counts calls of a module (a forward hook) and the rows (batch entries) they processed."""

    def __init__(self, module: torch.nn.Module):
        self.module = module
        self.calls = 0
        self.rows = 0
        self._handle = None

    def _hook(self, module, args, output):
        self.calls += 1
        self.rows += int(args[0].shape[0]) if args else 0

    def __enter__(self):
        self._handle = self.module.register_forward_hook(self._hook)
        return self

    def __exit__(self, *exc):
        self._handle.remove()
        return False


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_once(method: str, models: Models, image, mask, cfg: bl.EditConfig, recorder_size: int | None = None) -> dict:
    """Run one batch with ``method`` ("blendlab", "reference" or "recorder"); time and count it."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    device = models.device
    hooks = []
    if method == "recorder":
        hooks = [bl.Recorder(every=1, size=recorder_size)]
    with ForwardCounter(models.unet) as counter:
        _sync(device)
        cpu_start = time.process_time()
        start = time.perf_counter()
        if method == "reference":
            torch.manual_seed(cfg.seed)
            out = ReferenceSampler(models, image, mask, cfg).run()
        else:
            out = bl.BlendedSampler(models, image, mask, cfg).run(hooks)
        _sync(device)
        seconds = time.perf_counter() - start
        cpu_seconds = time.process_time() - cpu_start
    if not torch.isfinite(out).all():
        raise RuntimeError(f"{method} produced non-finite images")
    result = dict(seconds=seconds, cpu_seconds=cpu_seconds, load_1min=_load(), steps=cfg.num_steps,
                  batch=cfg.batch_size, unet_forwards=counter.calls,
                  forwards_per_step=counter.calls / cfg.num_steps)
    if method == "recorder":
        result["recorded_steps"] = len(hooks[0])
        result["recorded_mb"] = hooks[0].nbytes / 2**20
    return result


def _load() -> float | None:
    """1-minute load average (other processes on a shared machine skew CPU timings)."""
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


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


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def _rss_mb() -> float | None:
    try:
        resident = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return resident * os.sysconf("SC_PAGE_SIZE") / 2**20


def _reset_peak_rss() -> bool:
    """Reset this process's RSS high-water mark (Linux ``clear_refs`` 5); also what ru_maxrss reads."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)  # hand freed heap back so the baseline is honest
    except (OSError, AttributeError):
        pass
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def measure_memory_here(config: str, method: str, steps: int, batch: int, device: str | None = None,
                        models: Models | None = None) -> dict:
    """Peak memory of one run of ``method`` in *this* process (see :func:`peak_memory`).

    A one-step warm-up run first (lazy imports, kernel caches), then the measured run. ``models``:
    an already built bundle of ``config`` to reuse (else it is built here)."""
    if models is None:
        models, _ = build_models(config, device)
    image, mask = inputs(models)
    run_once(method, models, image, mask, bench_config(1, batch))
    cfg = bench_config(steps, batch)
    dev = models.device
    gc.collect()
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
        torch.cuda.reset_peak_memory_stats(dev)
        before = torch.cuda.memory_allocated(dev)
        run_once(method, models, image, mask, cfg)
        peak = torch.cuda.max_memory_allocated(dev)
        return dict(kind="cuda max_memory_allocated", baseline_mb=before / 2**20, peak_mb=peak / 2**20,
                    delta_mb=(peak - before) / 2**20)
    if _reset_peak_rss() and _rss_mb() is not None:
        kind, before = "ru_maxrss after a high-water reset, minus RSS before the run", _rss_mb()
    else:
        kind, before = "ru_maxrss growth (no high-water reset: a lower bound)", _maxrss_mb()
    run_once(method, models, image, mask, cfg)
    after = _maxrss_mb()
    return dict(kind=kind, baseline_mb=before, peak_mb=after, delta_mb=after - before)


def peak_memory(config: str, method: str, steps: int, batch: int, device: str | None = None,
                timeout: float = 600, models: Models | None = None) -> dict:
    """Peak memory of one run above what the loaded models and inputs already hold (``delta_mb``).

    On CPU a fresh subprocess per config and method builds the models, warms up, resets its RSS
    high-water mark, notes its RSS, runs once and reads ``ru_maxrss`` (torch's allocations are
    invisible to tracemalloc). On CUDA, in process (reusing ``models`` if given):
    ``max_memory_allocated`` above what is allocated before the run."""
    dev = torch.device(device) if device is not None else bl.models.default_device()
    if dev.type == "cuda":
        return measure_memory_here(config, method, steps, batch, device, models=models)
    spec = json.dumps(dict(config=config, method=method, steps=steps, batch=batch, device=str(dev)))
    cmd = [sys.executable, str(Path(__file__).resolve()), "--memory-child", spec,
           "--threads", str(torch.get_num_threads())]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"memory subprocess for {config}/{method} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# -- progressive pruning -----------------------------------------------------------------------------
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
            _sync(device)
            cpu_start = time.process_time()
            start = time.perf_counter()
            result = bl.edit(models, image, mask, cfg, progress=False)
            _sync(device)
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


# -- the whole run -----------------------------------------------------------------------------------
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
                                                         load_1min_at_start=_load()),
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


def timing_basis(results: dict) -> str:
    """"cpu" when the runs were single-threaded on a CPU, else "wall".

    With one thread, a run's process CPU time is the time it spent computing, whatever other
    processes did with the cores meanwhile; its wall time also counts the waits for a core. So on a
    single-threaded CPU run the targets read CPU-time ratios; otherwise (several threads may spin
    while they wait for each other, a GPU works while the CPU waits) they read wall time."""
    single = results["machine"].get("torch_threads") == 1
    return "cpu" if single and results["settings"].get("device", "cpu").startswith("cpu") else "wall"


def evaluate_targets(results: dict) -> list[dict]:
    """PASS/FAIL (or n/a) for each target of :data:`TARGETS` (ratios on :func:`timing_basis`)."""
    quick = results["settings"].get("quick", False)
    key = "cpu_median" if timing_basis(results) == "cpu" else "median"
    basis = "CPU time, 1 thread" if key == "cpu_median" else "wall time"
    configs = results["configs"]
    targets = []
    fwd = {name: c["methods"]["blendlab"]["forwards_per_step"] for name, c in configs.items()
           if "blendlab" in c["methods"]}
    ok = bool(fwd) and all(v == [float(TARGETS["unet_forwards_per_step"])] for v in fwd.values())
    targets.append(dict(name="blendlab: exactly 1 UNet forward per step", value=fwd,
                        threshold="== 1", status=("PASS" if ok else "FAIL") if fwd else "n/a"))
    mid = configs.get("mid")
    if mid and "speedup" in mid and mid["models"]["device"] == "cpu":
        v = mid["speedup"][key]
        status = "PASS" if v >= TARGETS["min_speedup_mid_cpu"] else "FAIL"
    else:
        v, status = None, "n/a"
    targets.append(dict(name=f"speed-up vs reference, mid UNet, CPU (median of alternating runs, {basis})",
                        value=v, threshold=f">= {TARGETS['min_speedup_mid_cpu']}x", status=status))
    src = "mid" if mid and "recorder_overhead" in mid else next(
        (n for n in ("real", "tiny") if n in configs and "recorder_overhead" in configs[n]), None)
    if src:
        v = configs[src]["recorder_overhead"][key]
        status = "PASS" if v <= TARGETS["max_recorder_overhead"] else "FAIL"
    else:
        v, status = None, "n/a"
    targets.append(dict(name=f"recorder overhead, every step, downscaled ({src or '-'}, {basis})", value=v,
                        threshold=f"<= {TARGETS['max_recorder_overhead']:.0%}", status=status))
    for t in targets:
        t["note"] = "quick run: indicative only" if quick else ""
    return targets


# -- printing ----------------------------------------------------------------------------------------
def format_report(results: dict) -> str:
    m = results["machine"]
    lines = [f"machine: {m['cpu']}, {m['cores']} cores ({m['torch_threads']} torch threads), "
             f"torch {m['torch']}, python {m['python']}" + (f", GPU {m['gpu']}" if m.get("gpu") else ", no GPU")]
    s = results["settings"]
    lines.append(f"settings: quick={s['quick']}, repeats={s['repeats']}, device={s['device']}, "
                 f"targets read {timing_basis(results)} time")
    lines.append("")
    head = (f"{'config':8s}{'arm':11s}{'steps':>6s}{'batch':>6s}{'fwd/step':>9s}{'s/step':>9s}"
            f"{'s/sample':>10s}{'s/sample@75':>12s}{'CPU s/step':>11s}{'peak MB':>9s}")
    lines.append(head)
    lines.append("-" * len(head))
    for name, c in results["configs"].items():
        for method, r in c["methods"].items():
            fps = "/".join(f"{v:g}" for v in r["forwards_per_step"])
            mem = c.get("memory", {}).get(method, {}).get("delta_mb")
            lines.append(f"{name:8s}{method:11s}{c['steps']:6d}{c['batch']:6d}{fps:>9s}{r['s_per_step']:9.3f}"
                         f"{r['s_per_sample']:10.2f}{r['s_per_sample_75_steps']:12.2f}{r['cpu_s_per_step']:11.3f}"
                         f"{(f'{mem:.0f}' if mem is not None else '-'):>9s}")
        d = c["models"]
        extra = []
        if "speedup" in c:
            sp = c["speedup"]
            extra.append(f"speed-up: wall x{sp['median']:.2f} (per repeat "
                         + ", ".join(f"{v:.2f}" for v in sp["per_repeat"])
                         + f"; fastest runs x{sp['ratio_of_minimums']:.2f}), CPU time x{sp['cpu_median']:.2f}")
        if "recorder_overhead" in c:
            ro = c["recorder_overhead"]
            extra.append(f"recorder overhead: wall {ro['median']:+.1%}, CPU time {ro['cpu_median']:+.1%} "
                         f"(size {c['recorder_size']}, {ro['recorded_mb']:.1f} MB kept)")
        lines.append(f"{'':8s}UNet {d['unet_params'] / 1e6:.1f} M params, {d['image_size']} px, CLIP "
                     f"{d['clip']} @{d['clip_size']}, weights {d['weights']}, {d['precision']}")
        lines.extend(f"{'':8s}{e}" for e in extra)
        load = c.get("load_1min_max")
        cores = results["machine"]["cores"] or 1
        if load is not None:
            warn = " (above the core count: other processes were running; timings are noisy" + (
                "; try --threads 1)" if results["machine"]["torch_threads"] > 1 else ")") \
                if load > cores + 0.5 else ""
            lines.append(f"{'':8s}max 1-min load average during the runs: {load:.2f}{warn}")
        lines.append("")
    for name, p in results.get("pruning", {}).items():
        if "skipped" in p:
            lines.append(f"pruning ({name}): {p['skipped']}")
            continue
        lines.append(f"pruning ({name}): {p['candidates']} candidates -> keep {p['keep']} at prune_at "
                     f"{p['prune_at']} ({p['steps_before_prune']} of {p['steps']} steps, batches of {p['batch']}): "
                     f"{p['pruned']['seconds']:.1f} s vs {p['full']['seconds']:.1f} s for {p['candidates']} full "
                     f"samples = x{p['time_ratio']:.3f} wall time (x{p['cpu_time_ratio']:.3f} CPU time; "
                     f"UNet rows x{p['rows_ratio']:.3f}, predicted x{p['predicted_ratio']:.3f}), "
                     f"{p['speedup']:.2f}x faster")
    if results.get("flops"):
        from benchmarks.flops import format_report as flops_report

        lines.append("")
        lines.append(flops_report(results["flops"]))
        lines.append("")
        lines.append(results["flops"]["explanation"])
    lines.append("")
    lines.append("targets:")
    for t in results["targets"]:
        v = t["value"]
        if isinstance(v, float):
            v = f"{v:.3f}"
        lines.append(f"  [{t['status']}] {t['name']}: {v} (target {t['threshold']})"
                     + (f"  [{t['note']}]" if t["note"] else ""))
    lines.append(f"total benchmark time: {results['seconds_total']:.0f} s")
    return "\n".join(lines)


def main(argv=None) -> dict | None:
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
    parser.add_argument("--memory-child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.memory_child:
        spec = json.loads(args.memory_child)
        print(json.dumps(measure_memory_here(spec["config"], spec["method"], spec["steps"], spec["batch"],
                                             spec["device"])))
        return None
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
