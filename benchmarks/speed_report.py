"""The speed benchmark's verdicts and report: the target figures (:data:`TARGETS`, printed PASS/FAIL,
never asserted), which time they read (:func:`timing_basis`: CPU time for single-threaded CPU runs,
else wall time), and the printed table (:func:`format_report`).

May import: benchmarks.flops.
"""

from __future__ import annotations

__all__ = ["TARGETS", "timing_basis", "evaluate_targets", "format_report"]


#: Target figures (reported, never asserted).
TARGETS = dict(unet_forwards_per_step=1, min_speedup_mid_cpu=1.35, max_recorder_overhead=0.05)


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

