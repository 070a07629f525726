"""What the sampler's NaN/infinity check costs per step (issue 15: "< 1 % of a step").

    python benchmarks/bench_nonfinite.py                # tiny preset, 10 steps x 2 samples x 2 views, 7 repeats
    python benchmarks/bench_nonfinite.py --quick        # a smoke run (figures indicative only)

Two measures, both printed:

- **isolated**: :meth:`BlendedSampler.check_finite` timed on the StepStates of a real run (many calls
  each), divided by the median step time of the same run. Steady on a shared machine.
- **whole runs**: the same edit with the check on and off (an instance attribute replaces
  ``check_finite`` by a no-op), alternating, medians per step. Noisy on a shared CPU: the isolated
  figure is the one to read.

Also the check alone on tensors of the real 256 px model's step (4 samples), in microseconds.
The tiny preset is the worst case: its UNet is the cheapest step there is, the check costs the same
per image pixel at any model size.

May import: blendlab, benchmarks.machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import blendlab as bl  # noqa: E402
from benchmarks.machine import machine_info  # noqa: E402


def _run(models, image, mask, cfg, check: bool) -> tuple[float, list]:
    sampler = bl.BlendedSampler(models, image, mask, cfg)
    if not check:
        sampler.check_finite = lambda state: None
    states = []
    t0 = time.perf_counter()
    sampler.run(hooks=[states.append])
    return (time.perf_counter() - t0) / cfg.num_steps, states


def _check_seconds(check, states, calls: int) -> float:
    t0 = time.perf_counter()
    for _ in range(calls):
        for s in states:
            check(s)
    return (time.perf_counter() - t0) / (calls * len(states))


def bench(steps: int, batch: int, aug_num: int, repeats: int, calls: int) -> dict:
    models = bl.load_models("tiny", device="cpu")
    image = bl.sample_image("grace_hopper", size=models.image_size)
    mask = bl.box_mask(models.image_size, (0.25, 0.25, 0.75, 0.75))
    cfg = bl.EditConfig(prompt="a red ball", timestep_respacing=str(2 * steps), skip_timesteps=steps,
                        batch_size=batch, aug_num=aug_num, iterations_num=1, seed=0)
    _run(models, image, mask, cfg, True)  # warm-up
    on, off, states = [], [], []
    for r in range(repeats):
        for check in ((True, False) if r % 2 == 0 else (False, True)):
            dt, states = _run(models, image, mask, cfg, check)
            (on if check else off).append(dt)
    sampler = bl.BlendedSampler(models, image, mask, cfg)
    isolated = statistics.median(_check_seconds(sampler.check_finite, states, calls) for _ in range(repeats))
    big = torch.randn(4, 3, 256, 256)
    real = bl.StepState(index=0, respaced_index=0, x_t=big, pred_x0=big.clone(), pred_x0_guided=big, grad=big, fg=big,
                        bg=big, x_prev=big.clone(), mask=big, alpha_bar=0.5, num_steps=1,
                        loss_tensors={"clip": torch.tensor(1.0), "range": torch.tensor(0.0)})
    real_s = statistics.median(_check_seconds(sampler.check_finite, [real], calls) for _ in range(repeats))
    step_off, step_on = statistics.median(off), statistics.median(on)
    return {"steps": steps, "batch": batch, "aug_num": aug_num, "repeats": repeats, "machine": machine_info(),
            "step_s_check_off": step_off, "step_s_check_on": step_on,
            "whole_run_overhead_pct": 100 * (step_on - step_off) / step_off,
            "check_s": isolated, "isolated_overhead_pct": 100 * isolated / step_off,
            "check_s_256px_batch4": real_s}


def report(res: dict, quick: bool = False) -> str:
    tag = " (quick run: indicative only)" if quick else ""
    return "\n".join([
        f"tiny preset, {res['steps']} steps x {res['batch']} samples x {res['aug_num']} views, "
        f"{res['repeats']} repeats{tag}",
        f"step: {1e3 * res['step_s_check_off']:.2f} ms without the check, {1e3 * res['step_s_check_on']:.2f} ms "
        f"with it (whole runs: {res['whole_run_overhead_pct']:+.2f} %, noise included)",
        f"the check alone: {1e6 * res['check_s']:.0f} µs per step = {res['isolated_overhead_pct']:.2f} % "
        f"of a step (target < 1 %: {'PASS' if res['isolated_overhead_pct'] < 1 else 'FAIL'})",
        f"the check on a 256 px step of 4 samples: {1e6 * res['check_s_256px_batch4']:.0f} µs",
    ])


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--aug-num", type=int, default=2)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--calls", type=int, default=50, help="check calls per state in the isolated measure")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out", type=str, default=None, help="also write the figures as JSON")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.quick:
        args.steps, args.repeats, args.calls = 2, 1, 2
    res = bench(args.steps, args.batch, args.aug_num, args.repeats, args.calls)
    print(report(res, args.quick))
    if args.out:
        Path(args.out).write_text(json.dumps(res, indent=2))
    return res


if __name__ == "__main__":
    main()
