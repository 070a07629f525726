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
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/blendlab/blendlab/blob/main/notebooks/08_debugging_a_step.ipynb)
#
# # 8 · Debugging a step: save, reload, compare
#
# Two edits that differ in one setting give different pictures. *Where* did they part? This lesson is
# the debugging routine: record both runs, save them to files (so the comparison can happen later, or
# on another machine), reload them, put them side by side in the step scrubber, plot how far apart
# they are at every step to find the step where they diverge, and export a GIF for a report.
#
# On a CPU the runs are toy-world edits (a UNet and a CLIP trained on this project's machines on 32 px
# scenes of coloured shapes; not the paper's results); the routine is the same for any model.

# %%
import importlib.util, os, subprocess, sys  # a fresh runtime (e.g. Colab) installs blendlab from $BLENDLAB_SOURCE
source = os.environ.get("BLENDLAB_SOURCE", "git+https://github.com/blendlab/blendlab")  # or your fork (git+https://...) or a local path
if importlib.util.find_spec("blendlab") is None and subprocess.run([sys.executable, "-m", "pip", "install", "-q", source]).returncode:
    sys.exit(f"blendlab could not be installed from {source} (pip says why above); to install your own copy, set BLENDLAB_SOURCE to your fork's git+https URL or a local path (e.g. %env BLENDLAB_SOURCE=/content/blendlab) and run this cell again.")
from blendlab.notebook import setup; env = setup()

# %%
import tempfile
from pathlib import Path

from IPython.display import Image as Animation
from IPython.display import display

import blendlab as bl
from blendlab import viz
from blendlab.lessons import check, predict
from blendlab.toyworld.judge import judge
from blendlab.trajectory_compare import pair_steps, step_distances
from blendlab.widgets import StepScrubber

models = env.load_models()
ex = env.example("insert")  # a toy scene with an empty box, or the photo
image, mask = ex.image, ex.mask
# two samples a run, a short schedule for a CPU: 40 respaced steps, 10 skipped (the paper: 100, 25)
cfg = env.config(prompt=ex.prompt, timestep_respacing="40", skip_timesteps=10, batch_size=2)
folder = Path(tempfile.mkdtemp(prefix="blendlab-08-"))  # where the recordings and the GIF go
viz.mask_overlay(image, mask, title=f'"{ex.prompt}"')

# %% [markdown]
# ## Two runs, one setting apart
#
# Run **a** blends at every step; run **b** does not (`local_clip_guided_diffusion=True`: the paper's
# local CLIP-guided diffusion, here without its background loss):
#
# $$x_{t-1}^{(a)} = x_{\mathrm{fg}}\odot m + x_{\mathrm{bg}}\odot(1-m) \qquad\qquad x_{t-1}^{(b)} = x_{\mathrm{fg}}.$$
#
# Everything else is equal, and the seed too: both runs draw the same noise in the same order. So any
# difference between them is the blend's doing. A `Recorder` keeps every step of each.

# %%
fields = ("x_t", "pred_x0", "pred_x0_guided", "grad", "x_prev")
recordings, results = {}, {}
for name, run_cfg in {"blend": cfg, "no blend": cfg.replace(local_clip_guided_diffusion=True)}.items():
    recordings[name] = bl.Recorder(fields=fields)
    results[name] = bl.edit(models, image, mask, run_cfg, hooks=[recordings[name]], progress=False)
print({name: f"{len(rec.steps)} steps, batch {cfg.batch_size}" for name, rec in recordings.items()})
if env.toy:
    print({name: [f"{v.colour} {v.shape}" for v in judge(r.images, mask)] for name, r in results.items()}, "(the judge)")

# %% [markdown]
# ## Save, and load back
#
# `recorder.save(path)` writes one self-describing file: every recorded tensor, the losses, the
# timesteps and $\bar\alpha_t$ of each step, the mask, the input image, the `EditConfig`, the model
# preset and the blendlab version. It is a plain numpy `.npz` with a `meta.json` inside, written
# atomically (a half-written file never appears under the name). `bl.load_trajectory(path)` reads it
# back without running any code from the file (no pickle), and lazily: a step's tensors are read when
# something looks at them. A truncated or foreign file is refused with a message saying what it is.
#
# Sizes: float16 tensors cost 2 bytes per number. The paper's setting — 75 steps, 4 samples at
# 256 px, three fields — makes a file of about **339 MB**, saved in about 0.25 s and loaded lazily in
# milliseconds on a 2-core CPU (`benchmarks/bench_trajectory.py`). Ours (30 steps, 2 samples, 32 px in
# the toy world) are small:

# %%
paths = {name: rec.save(folder / f"{name.replace(' ', '_')}.npz") for name, rec in recordings.items()}
for name, path in paths.items():
    print(f"{name}: {path.name}, {path.stat().st_size / 2**20:.2f} MB")
a, b = (bl.load_trajectory(path) for path in paths.values())
print("reloaded:", a.preset, "preset,", repr(a.cfg.prompt), "·", a.steps[0].label, "·",
      "local_clip_guided_diffusion =", b.cfg.local_clip_guided_diffusion)

# %% [markdown]
# ## Side by side in the scrubber
#
# `StepScrubber(a, compare=b)` shows both runs at the same step, with one field and sample selector,
# and a third pane with the per-pixel difference $|a-b|$ (averaged over the colour channels; the colour
# bar runs from 0 to the largest difference in view). Scrub through `x_t`, `x̂0` and `x_{t-1}`: which
# one differs first, and where in the picture?

# %%
StepScrubber(a, compare=b, labels=("blend", "no blend"))

# %% [markdown]
# ## Where they diverge
#
# For each step $k$ we measure the mean per-pixel distance of a field,
# $d_k = \operatorname{mean}_{\text{pixels}} |a_k - b_k|$, and ask for the first step at which any
# pixel differs (`first_divergence()` returns that step $k$, counted from 0 as the labels count). One
# step of the sampler reads $x_t$ and produces $\hat x_0$ from it, then $x_{t-1}$; the blend happens at
# the very end of the step. So:

# %%
distances = {field: step_distances(a, b, field) for field in ("x_t", "pred_x0", "x_prev")}
for field, d in distances.items():
    pair = d.first_divergent_pair()  # (step of a, step of b), or None
    print(f"{field:8s} first differs at", pair[0].label if pair else "no step")
viz.loss_curves(distances, title="blend vs no blend: distance per step", ylabel=r"mean $|a-b|$")

# %% [markdown]
# $x_{t-1}$ differs at step 0 already: the blend puts the noised input outside the mask, run **b**
# keeps its own proposal. Step 1 starts from that different $x_t$, so from step 1 on $x_t$ and
# $\hat x_0$ differ too — and inside the mask as well, because the UNet sees the whole image. The
# static version of the scrubber, for slides (third row: $|a-b|$ on one colour scale):

# %%
viz.compare_strips(a, b, field="x_prev", labels=("blend", "no blend"), max_steps=6, diff=True)

# %% [markdown]
# ## A GIF for the report
#
# `recorder.to_gif(path, field=..., sample=...)` writes one frame per recorded step with the step and
# $t$ under it (`to_video` also writes lossless `.apng`/`.webp`, and `.mp4` when imageio is installed).
# By default the field is the $\hat x_0$ the result is made from, and the last frame gets the
# background pasted as the result does — so the GIF ends on the result.

# %%
gif = a.to_gif(folder / "blend.gif", sample=0, fps=4)
print(f"{gif}: {len(a.steps)} frames, {gif.stat().st_size / 1024:.0f} kB")
Animation(filename=str(gif))

# %%
if env.tiny:
    print("Tiny mode: random weights, so x̂0 never looks like anything and the GIF is noise inside the mask. "
          "The debugging facts above hold for any weights: which tensor differs first, at which step, and "
          "where in the picture.")

# %% [markdown]
# ## Exercise 1 · a setting that changes nothing in the loop
#
# Run **c** is run **a** with `enforce_background=False`. **Predict** below at which step $\hat x_0$ of
# **c** first differs from **a**'s. **Change** the marked line (as it stands, it changes nothing),
# **run** it, and **check**; then try other settings in its place, e.g. `ddim=True` or `aug_num=1`.

# %%
parted = predict("With enforce_background=False, x̂0 of c first differs from a's at …",
                 ["step 0", "a later step", "no step: never"])

# %%
changed = cfg.replace()  # <- change to: changed = cfg.replace(enforce_background=False)
c = bl.Recorder(fields=fields)
result_c = bl.edit(models, image, mask, changed, hooks=[c], progress=False)
k = step_distances(a, c, "pred_x0").first_divergence()  # the step k, from 0, as the labels
print("x̂0 first differs at step:", k)
print("largest difference of the results:", float((results["blend"].images - result_c.images).abs().max()),
      "· outside the mask:", float(((results["blend"].images - result_c.images).abs() * (1 - mask)).max()))
check(parted, "no step: never" if k is None else "step 0" if k == 0 else "a later step")

# %% [markdown]
# <details><summary>Answer</summary>
#
# As shipped, `cfg.replace()` changes nothing: no step differs and the results are identical (0). With
# `enforce_background=False` it is still never: `first_divergence()` is `None`, every recorded step is
# identical. `enforce_background` acts after the loop: the result is the last $\hat x_0$ with the input
# pasted outside the mask. So the results differ, and only outside the mask (the two printed maxima are
# the same). (With `ddim=True` the first step's $\hat x_0$ is still the same — the same $x_t$ goes into
# the same UNet — and the runs part at step 1; compare `pred_x0_guided`, which DDIM changes within step 0.)
#
# </details>

# %% [markdown]
# ## Exercise 2 · runs of different lengths
#
# Run **d** skips more steps (`skip_timesteps`), so it has fewer steps and starts from a less noisy
# $x_t$. Say it skips 4 more. When the scrubber shows step 10 of **a**, which step of **d** will it show
# next to it — and by which rule? **Predict** below, **Change** the marked line, **run**, and **check**
# in the printed pairs and the scrubber.

# %%
partner = predict("With 4 more skipped, the step of d shown next to step 10 of a", number=True)

# %%
extra = 0  # <- change to: extra = 4
more_skipped = cfg.replace(skip_timesteps=cfg.skip_timesteps + extra)
d_rec = bl.Recorder(fields=fields)
bl.edit(models, image, mask, more_skipped, hooks=[d_rec], progress=False)
pairs, rule = pair_steps(a.steps, d_rec.steps)
print(f"{extra} more skipped: {len(d_rec.steps)} steps, paired by {rule}:",
      [f"{sa.index}->{sd.index}" for sa, sd in pairs])
display(StepScrubber(a, compare=d_rec, labels=("a", f"d: {extra} more skipped")))
check(partner, next(sd.index for sa, sd in pairs if sa.index == 10), tolerance=0.0)

# %% [markdown]
# <details><summary>Answer</summary>
#
# As shipped (no extra skip) both runs have the same steps and are paired by step: 10 with 10. With 4
# more skipped the step counts differ, so the scrubber pairs steps by the **timestep** $t$ of the
# 1000-step schedule, not by step number (step 0 of one run is a very different noise level from step 0
# of the other). Run **d** starts at a lower $t$, so steps 0 to 4 of **a** all pair with step 0 of **d**
# (its nearest $t$; step 4 of **a** has exactly that $t$), and from there on step $n$ of **a** pairs with
# step $n-4$ of **d**: step 10 with step 6.
# `viz.loss_curves({...}, x="t")` lines the two runs up the same way on a plot.
#
# </details>

# %%
viz.loss_curves({"a": a, f"d: {extra} more skipped": d_rec}, term="clip", x="t",
                title="CLIP loss per sample, by t")

# %% [markdown]
# ## What to remember
#
# - `recorder.save(path)` / `bl.load_trajectory(path)`: one safe, self-describing file per run.
# - `StepScrubber(a, compare=b)` and `viz.compare_strips(a, b)` put two runs side by side, paired by
#   step (or by $t$ when the step counts differ), with $|a-b|$.
# - `step_distances(a, b, field).first_divergence()` names the step where two runs part; look at the
#   fields in the order a step makes them ($x_t$, $\hat x_0$, $x_{t-1}$) to see which operation did it.
# - `recorder.to_gif(...)` for the report.
