"""How honest is the batch guard? The estimate of ``blendlab.capacity`` next to the measured
peak memory of one edit, for a few batch sizes of the toy and tiny presets on CPU.

Each arm runs in a fresh process: the resident memory after the imports (before any model loads)
is the baseline, the peak (``ru_maxrss``) after one edit minus it is "measured"; the estimate is
``fixed + batch × per sample``. Run: ``python -m benchmarks.bench_capacity``.

May import: blendlab.
"""

from __future__ import annotations

import json
import subprocess
import sys

ARM = r"""
import json, resource, sys
import blendlab as bl
from blendlab.examples import example
from blendlab import capacity
preset, batch = sys.argv[1], int(sys.argv[2])
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
base = rss()
models = bl.load_models(preset, device="cpu", progress=False)
ex = example("insert", models)
cfg = bl.EditConfig(prompt=ex.prompt, timestep_respacing="4", skip_timesteps=1, iterations_num=1,
                    batch_size=batch, aug_num=8)
bl.edit(models, ex.image, ex.mask, cfg, progress=False)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base
fixed, per_sample = capacity.memory_needed(preset, batch, 8)
print(json.dumps(dict(preset=preset, batch=batch, estimate=fixed + batch * per_sample, measured=peak)))
"""


def main(presets=("tiny", "toy"), batches=(1, 4, 16, 64)) -> list[dict]:
    rows = []
    print(f"{'preset':8} {'batch':>5} {'estimate MB':>12} {'measured MB':>12} {'ratio':>6}")
    for preset in presets:
        for batch in batches:
            out = subprocess.run([sys.executable, "-c", ARM, preset, str(batch)], capture_output=True,
                                 text=True, check=True)
            row = json.loads(out.stdout.strip().splitlines()[-1])
            rows.append(row)
            print(f"{preset:8} {batch:>5} {row['estimate'] / 2**20:>12.0f} {row['measured'] / 2**20:>12.0f} "
                  f"{row['estimate'] / max(row['measured'], 1):>6.2f}")
    return rows


if __name__ == "__main__":
    main()
