"""A 16-row toy-world sweep (4 toy edits × aug_num 1/8 × λ 100/1000) on the ``local`` backend and on
``ray`` with 2 workers, and Ray's fixed start-up cost (``ray.init``, the first actor's model load).

    python benchmarks/bench_sweep.py [--out DIR] [--workers 2]

Prints a table and writes ``sweep_bench.json`` in ``--out``. Needs the ``ray`` extra.

May import: blendlab.sweep.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import blendlab.sweep as sw

SPEC = dict(preset="toy", config=dict(timestep_respacing="20", skip_timesteps=8, iterations_num=1, batch_size=2),
            grid=dict(aug_num=[1, 8], clip_guidance_lambda=[100, 1000]), seeds=[0],
            inputs=[{"toy": {"scenes": 2, "prompts_per_scene": 2, "seed": 0}}])


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=None)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args(argv)
    root = Path(args.out or tempfile.mkdtemp(prefix="bench_sweep_"))
    shutil.rmtree(root / "local", ignore_errors=True)
    shutil.rmtree(root / "ray", ignore_errors=True)
    t0 = time.perf_counter()
    local = sw.run_sweep(SPEC, root / "local", progress=False)
    local_s = time.perf_counter() - t0

    import ray

    t0 = time.perf_counter()
    ray.init(num_cpus=args.workers, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
                                       "PYTHONPATH": os.environ.get("PYTHONPATH", "")}})
    init_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    on_ray = sw.run_sweep(SPEC, root / "ray", backend="ray", workers=args.workers, progress=False)
    ray_s = time.perf_counter() - t0
    ray.shutdown()
    rows = [json.loads(p.read_text()) for p in (root / "local" / "records").glob("*.json")]
    per_row = sum(r["wall_s"] for r in rows) / len(rows)
    loads = [json.loads(p.read_text())["seconds"] for p in (root / "ray" / "loads").glob("*.json")]
    result = dict(rows=local["rows"], local_s=local_s, ray_init_s=init_s, ray_run_s=ray_s, ray_total_s=init_s + ray_s,
                  seconds_per_row=per_row, actor_model_load_s=loads, workers=args.workers,
                  cpus=os.cpu_count(), local=local, ray=on_ray)
    (root / "sweep_bench.json").write_text(json.dumps(result, indent=1))
    print(f"{result['rows']} toy rows, {per_row:.2f} s per row serially, {os.cpu_count()} cores")
    print(f"local           {local_s:7.1f} s")
    print(f"ray, {args.workers} workers  {init_s + ray_s:7.1f} s  (ray.init {init_s:.1f} s + run {ray_s:.1f} s; "
          f"actor model loads {', '.join(f'{s:.1f}' for s in loads)} s)")
    return result


if __name__ == "__main__":
    main()
