"""Trajectory files: how long a Recorder takes to save and to load, how big the file is.

    python benchmarks/bench_trajectory.py                 # the issue's case: 75 steps x 4 samples x 256 px x 3 fields, float16
    python benchmarks/bench_trajectory.py --repeats 7 --out trajectory.json
    python benchmarks/bench_trajectory.py --quick         # 8 steps x 2 samples x 32 px: a smoke run

The recording is made by a real :class:`blendlab.Recorder` called with StepStates of random tensors
(the shapes of a real run; no model is needed). For each repeat it saves to a fresh file in a
temporary folder on the same disk as ``--dir`` (default: the system's), then loads it lazily
(``Recorder.load``), loads it eagerly (``lazy=False``: every array read and checked), and reads every
field of a lazy recording. Also times videos of one sample, one frame per step: a GIF (``Recorder.to_gif``) and the lossless
animated PNG ``blendlab edit --vid`` writes.
Medians and maxima over repeats are printed; the targets (save < 2 s, load lazy or < 1 s) are
printed PASS/FAIL, never asserted.

May import: blendlab, benchmarks.machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import blendlab as bl  # noqa: E402
from benchmarks.machine import machine_info  # noqa: E402

TARGETS = {"save_s": 2.0, "load_s": 1.0}
FIELDS = ("x_t", "pred_x0", "x_prev")


def make_recording(steps: int, batch: int, size: int, fields=FIELDS, seed: int = 0) -> bl.Recorder:
    """A Recorder fed ``steps`` StepStates of random (batch, 3, size, size) tensors."""
    g = torch.Generator().manual_seed(seed)
    rec = bl.Recorder(fields=fields, dtype=torch.float16, max_mb=1e6)
    image = torch.rand(1, 3, size, size, generator=g) * 2 - 1
    mask = torch.zeros(1, 1, size, size)
    mask[..., size // 4: 3 * size // 4, size // 4: 3 * size // 4] = 1
    cfg = bl.EditConfig(prompt="benchmark", batch_size=batch)
    for i in range(steps):
        t = steps - 1 - i
        tensors = {name: torch.randn(batch, 3, size, size, generator=g) for name in bl.recorder.FIELDS}
        rec(bl.StepState(index=i, respaced_index=t, mask=mask, alpha_bar=1 - t / steps, num_steps=steps, timestep=t * 10,
                         init_image=image, cfg=cfg, preset="benchmark", sample_ids=torch.arange(batch),
                         loss_tensors={"clip": torch.tensor(0.5)}, **tensors))
    return rec


def _seconds(fn) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def bench(steps: int, batch: int, size: int, repeats: int, folder: str | None = None) -> dict:
    rec = make_recording(steps, batch, size)
    times = {k: [] for k in ("save_s", "load_lazy_s", "load_eager_s", "read_all_lazy_s", "gif_s", "apng_s")}
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        for r in range(repeats):
            path = Path(tmp) / f"run{r}.npz"
            dt, _ = _seconds(lambda: rec.save(path))
            times["save_s"].append(dt)
            dt, lazy = _seconds(lambda: bl.Recorder.load(path))
            times["load_lazy_s"].append(dt)
            dt, _ = _seconds(lambda: [s.fields[n] for s in lazy.steps for n in s.fields])
            times["read_all_lazy_s"].append(dt)
            dt, eager = _seconds(lambda: bl.Recorder.load(path, lazy=False))
            times["load_eager_s"].append(dt)
            assert all(torch.equal(a.fields[n], b.fields[n]) for a, b in zip(rec.steps, eager.steps) for n in a.fields)
            dt, gif = _seconds(lambda: rec.to_gif(Path(tmp) / "x0.gif", field="pred_x0"))
            times["gif_s"].append(dt)
            dt, apng = _seconds(lambda: rec.to_video(Path(tmp) / "x0.apng", field="pred_x0"))
            times["apng_s"].append(dt)
            size_bytes = path.stat().st_size
            gif_bytes, apng_bytes = gif.stat().st_size, apng.stat().st_size
            path.unlink()
    return {
        "steps": steps, "batch": batch, "size": size, "fields": list(FIELDS), "dtype": "float16",
        "recorded_mb": rec.nbytes / 2**20, "file_mb": size_bytes / 2**20, "gif_kb": gif_bytes / 1024, "apng_kb": apng_bytes / 1024,
        "repeats": repeats, "seconds": times,
        "median": {k: statistics.median(v) for k, v in times.items()},
        "max": {k: max(v) for k, v in times.items()},
    }


def report(res: dict, quick: bool = False) -> str:
    m, mx = res["median"], res["max"]
    lines = [
        f"{res['steps']} steps x {res['batch']} samples x {res['size']} px x {len(res['fields'])} fields "
        f"({', '.join(res['fields'])}), {res['dtype']}: {res['recorded_mb']:.1f} MB recorded, "
        f"file {res['file_mb']:.1f} MB, {res['repeats']} repeats",
        "",
        "| measure | median s | max s |",
        "|---|---|---|",
    ]
    names = {"save_s": "save (atomic)", "load_lazy_s": "load, lazy (meta, mask, input)",
             "read_all_lazy_s": "then read every field", "load_eager_s": "load, eager (every array)",
             "gif_s": f"GIF of one sample, {res['steps']} frames ({res['gif_kb']:.0f} kB)",
             "apng_s": f"lossless APNG of the same (what --vid writes; {res['apng_kb']:.0f} kB)"}
    lines += [f"| {names[k]} | {m[k]:.3f} | {mx[k]:.3f} |" for k in names]
    tag = " (quick run: indicative only)" if quick else ""
    save_ok = m["save_s"] < TARGETS["save_s"]
    load_ok = m["load_lazy_s"] < TARGETS["load_s"]
    lines += ["", f"target save < {TARGETS['save_s']:g} s: {'PASS' if save_ok else 'FAIL'}{tag}",
              f"target load lazy or < {TARGETS['load_s']:g} s: {'PASS' if load_ok else 'FAIL'} "
              f"(lazy {m['load_lazy_s']:.3f} s; eager {m['load_eager_s']:.3f} s){tag}"]
    return "\n".join(lines)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=75)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--dir", default=None, help="folder for the temporary files (default: the system's)")
    p.add_argument("--quick", action="store_true", help="8 steps x 2 samples x 32 px, 1 repeat")
    p.add_argument("--out", default=None, help="also write the figures as JSON")
    args = p.parse_args(argv)
    if args.quick:
        args.steps, args.batch, args.size, args.repeats = 8, 2, 32, 1
    res = bench(args.steps, args.batch, args.size, args.repeats, args.dir)
    res["machine"] = machine_info()
    print(report(res, args.quick))
    if args.out:
        Path(args.out).write_text(json.dumps(res, indent=2))
    return res


if __name__ == "__main__":
    main()
