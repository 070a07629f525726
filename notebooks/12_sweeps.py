# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/blendlab/blendlab/blob/main/notebooks/12_sweeps.ipynb)
#
# # 12 · Sweeps: the paper's ablations, resumable, on one machine or many
#
# An ablation is a grid: inputs × settings × seeds. `blendlab.sweep` expands a small spec into rows,
# checks every row before any model loads, runs each row once (a re-run skips finished rows), records a
# failed row with its error instead of stopping, and writes `results.csv`. Here: a toy-world ablation of
# `aug_num` (1 vs 8 CLIP views) × λ (`clip_guidance_lambda` 100 vs 1000).

# %%
import importlib.util, os, subprocess, sys  # a fresh runtime (e.g. Colab) installs blendlab from $BLENDLAB_SOURCE
source = os.environ.get("BLENDLAB_SOURCE", "git+https://github.com/blendlab/blendlab")  # or your fork (git+https://...) or a local path
if importlib.util.find_spec("blendlab") is None and subprocess.run([sys.executable, "-m", "pip", "install", "-q", source]).returncode:
    sys.exit(f"blendlab could not be installed from {source} (pip says why above); to install your own copy, set BLENDLAB_SOURCE to your fork's git+https URL or a local path (e.g. %env BLENDLAB_SOURCE=/content/blendlab) and run this cell again.")
from blendlab.notebook import setup; env = setup()

# %% [markdown]
# ## The spec
# The same dict can live in a YAML or TOML file for `blendlab sweep SPEC --out DIR`. `toy` inputs are
# seeded toy scenes with an empty region and a prompt "a {colour} {shape}".

# %%
import tempfile

import pandas as pd
from IPython.display import display

import blendlab.sweep as sw
from blendlab.lessons import check, predict

fixed = dict(timestep_respacing="20", skip_timesteps=8, iterations_num=1, batch_size=2)  # short toy edits
env.config(**fixed)  # a valid EditConfig: the spec's settings are EditConfig fields
spec = dict(
    preset=env.preset,
    config=fixed,
    grid=dict(aug_num=[1, 8], clip_guidance_lambda=[100, 1000]),
    seeds=[0],
    inputs=[{"toy": {"scenes": 1, "prompts_per_scene": 2, "seed": 0}}],
)
rows = sw.validate(sw.expand(spec))
print(len(rows), "rows; the first:", rows[0]["id"], rows[0]["setting"])

# %% [markdown]
# ## Run it locally
# Each row writes `records/<id>.json` atomically; running the same call again finds them and runs nothing.

# %%
out = tempfile.mkdtemp(prefix="sweep_")
print(sw.run_sweep(spec, out))
print(sw.run_sweep(spec, out, progress=False))  # resumed: every row skipped
table = pd.read_csv(f"{out}/results.csv")
cols = ["input", "prompt", "set_aug_num", "set_clip_guidance_lambda", "clip_distance", "seam_strength", "wall_s"]
table[cols + [c for c in ("judge_correct",) if c in table]]

# %% [markdown]
# ## The paper-style grid and a metric per setting
# Rows are inputs, columns a swept setting; each cell shows the best-ranked sample over the other settings.

# %%
sw.grid_figure(out, "aug_num");

# %%
sw.metric_plot(out, "clip_guidance_lambda");

# %% [markdown]
# ## The same spec on Ray
# Save the spec as `ablation.yaml` and run it with the `ray` extra (`pip install "blendlab[ray]"`): one
# model load per actor, a killed worker's row retried by Ray, `RAY_ADDRESS` (or `--address`) picks a
# cluster. The command (not run here):
#
# ```bash
# blendlab sweep ablation.yaml --dry-run          # rows and an estimated time
# blendlab sweep ablation.yaml --out runs/ablation --backend ray --address auto
# ```

# %% [markdown]
# ## Exercise 1 · a third setting
#
# Add `skip_timesteps: [4, 8]` to the grid (it leaves the fixed config). **Predict** below how many rows
# a run into the same `out` computes — think about how many rows the spec has now, too.
# **Change** the marked line, **run**, and **check** `ran` and `skipped` in the summary.

# %%
computed = predict("Rows computed with skip_timesteps: [4, 8] added to the grid", number=True)

# %%
extra_grid = {}  # <- change to: extra_grid = {"skip_timesteps": [4, 8]}
bigger = dict(spec, config={k: v for k, v in fixed.items() if k not in extra_grid},
              grid=dict(spec["grid"], **extra_grid))
summary = sw.run_sweep(bigger, out, progress=False)
print(len(sw.expand(bigger)), "rows in the spec;", summary)
check(computed, summary["ran"], tolerance=0.0)

# %% [markdown]
# <details><summary>Answer</summary>
#
# As shipped nothing is added: the same 8 rows, all finished, so the run computes 0 (skipped 8). With
# the new setting: 2 inputs × 2 × 2 × 2 settings × 1 seed = 16 rows. A row's id hashes its full config, and the 8 rows
# with `skip_timesteps=8` have the same config as before, so they are skipped: the run computes 8.
# </details>

# %% [markdown]
# ## Exercise 2 · a row that fails
#
# A row function that raises for λ = 100 runs the first spec into a fresh folder; a second run without
# the fault follows. **Predict** below how many rows the second run computes, and think about what the
# first summary says. **Change** the marked condition (then try others), **run**, and **check** both
# summaries and the `status` column of `results.csv`.

# %%
second = predict("Rows the second run (no fault) computes", number=True)

# %%
def faulty(models, row, out):
    if row["setting"]["clip_guidance_lambda"] == 100:  # <- change to: if row["setting"]["aug_num"] == 8:
        raise RuntimeError("a fault injected for the exercise")
    return sw.run_row(models, row, out)


fresh = tempfile.mkdtemp(prefix="sweep_")
print("with the fault:", sw.run_sweep(spec, fresh, progress=False, fn=faulty))
again = sw.run_sweep(spec, fresh, progress=False)
print("without it:", again)
display(pd.read_csv(f"{fresh}/results.csv")[["set_aug_num", "set_clip_guidance_lambda", "status"]])
check(second, again["ran"], tolerance=0.0)

# %% [markdown]
# <details><summary>Answer</summary>
#
# The 4 rows with λ = 100 (or, changed, with 8 views: also 4 of the 8) are recorded as `failed` with
# their error and the other 4 finish: done 4, failed 4, nothing aborted. The second run skips the 4 finished rows and computes only the 4 failed ones
# (ran 4, skipped 4), after which every row is done.
# </details>
