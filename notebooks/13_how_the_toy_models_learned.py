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
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/blendlab/blendlab/blob/main/notebooks/13_how_the_toy_models_learned.ipynb)
#
# # 13 · How the toy models learned
#
# Every CPU run of these lessons uses two small models *trained on this project's machine*: a
# guided-diffusion UNet and an OpenAI CLIP, both of the classes the paper uses, learned on the **toy
# world** — 32 px scenes of red, green, blue and yellow circles, squares and triangles on white, black
# or sand, drawn by code. The toy world is to Blended Diffusion what MNIST is to classifiers: small
# enough for a CPU to learn in two hours, rich enough that an edit can visibly work or fail, and judged
# by rules (`blendlab.toyworld.judge`) rather than by the CLIP being steered.
#
# Here you run the project's own training scripts for a minute, watch the loss fall, sample from a
# barely-trained UNet next to the shipped one, and read from the shipped CLIP's card why it needed
# **hard negatives**. This lesson always uses the toy models, on the CPU, as the scripts do.

# %%
import importlib.util, os, subprocess, sys  # a fresh runtime (e.g. Colab) installs blendlab from $BLENDLAB_SOURCE
source = os.environ.get("BLENDLAB_SOURCE", "git+https://github.com/blendlab/blendlab")  # or your fork (git+https://...) or a local path
if importlib.util.find_spec("blendlab") is None and subprocess.run([sys.executable, "-m", "pip", "install", "-q", source]).returncode:
    sys.exit(f"blendlab could not be installed from {source} (pip says why above); to install your own copy, set BLENDLAB_SOURCE to your fork's git+https URL or a local path (e.g. %env BLENDLAB_SOURCE=/content/blendlab) and run this cell again.")
from blendlab.notebook import setup; env = setup()

# %%
import json, tempfile, time
from pathlib import Path

import numpy as np
import torch

import blendlab as bl
from blendlab import viz
from blendlab.checkpoints import load_clip, toy_card
from blendlab.embeddings import encode_images, encode_text, spherical_distance
from blendlab.lessons import check, predict
from blendlab.models import create_diffusion
from blendlab.table import Table
from blendlab.toyworld import train_clip, train_unet
from blendlab.toyworld.world import COLORS, SHAPES, ToyObject, object_mask, render_scene

cpu = torch.device("cpu")
shipped = bl.load_models("toy", device=cpu)
cfg = env.config(timestep_respacing="50", seed=0)      # only the schedule and the seed are used here
workdir = Path(tempfile.mkdtemp(prefix="blendlab-lesson13-"))  # this lesson's training runs go here
batch = train_unet.scene_batch(seed=0, step=0, batch=8)      # the UNet's training batch of step 0
viz.image_grid(batch, suptitle="training data: train_unet.scene_batch(seed=0, step=0), a fresh batch every step")

# %% [markdown]
# ## What the UNet learns
#
# `train_unet.py` draws a fresh batch of scenes $x_0$ at every step (a pure function of the seed and
# the step, so a resumed run sees exactly the data the uninterrupted one would), a timestep
# $t \sim \mathcal U\{0,\dots,999\}$ and noise $\varepsilon \sim \mathcal N(0, I)$ per scene, forms
# $x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\varepsilon$, and calls guided-diffusion's own
# `training_losses`. For a model with a learned $\Sigma$ that is the *hybrid* objective of Nichol &
# Dhariwal (2021):
#
# $$L = \underbrace{\operatorname{mean}\big\lVert \varepsilon - \varepsilon_\theta(x_t, t)\big\rVert^2}_{\texttt{mse}}
#   \;+\; \underbrace{D_{\mathrm{KL}}\big(q(x_{t-1}\mid x_t, x_0)\,\big\Vert\, p_\theta(x_{t-1}\mid x_t)\big)}_{\texttt{vb}},$$
#
# where the second term (in bits per dimension; at $t=0$ the decoder's negative log-likelihood) sees
# the predicted mean with its gradient stopped, so it teaches only $\Sigma_\theta$ — the variance
# lesson 3 read from `p_mean_variance`. Both terms on one training batch, for an untrained UNet and
# for the shipped one:

# %%
from blendlab.presets import build_unet, unet_config
from blendlab.toyworld.training import step_generator

diffusion = create_diffusion(shipped, "")               # the full 1000-step schedule, as in training
g = step_generator(seed=0, step=0, salt=2)              # the script's own draw of t and ε for step 0
t = torch.randint(0, diffusion.num_timesteps, (len(batch),), generator=g)
noise = torch.randn(batch.shape, generator=g)
torch.manual_seed(0)
untrained = build_unet(unet_config("toy")).eval()
rows = []
with torch.no_grad():
    for name, unet in (("untrained (seed 0)", untrained), ("shipped", shipped.unet)):
        terms = diffusion.training_losses(unet, batch, t, noise=noise)
        rows.append({"UNet": name, "mse": terms["mse"].mean().item(), "vb": terms["vb"].mean().item(),
                     "loss": terms["loss"].mean().item()})
Table(rows)

# %% [markdown]
# An untrained UNet outputs values near zero, so its `mse` is close to the variance of $\varepsilon$,
# 1; the shipped one's is about two hundred times smaller: it predicts the noise in these scenes almost
# exactly (at every $t$ the batch drew). The `vb` term is small for both — it only tunes $\Sigma$.
#
# ## Train a UNet for a minute
#
# The script's `main` takes the same flags as `python -m blendlab.toyworld.train_unet`. The shipped run
# was `--seed 0 --steps 6000 --batch 32` (5,380 steps, 109 minutes); here: 150 steps of 8 scenes into a
# temporary folder, with a 20-step warm-up instead of 200 (a 150-step run cannot spend 200 warming up).
# It writes what the shipped run wrote — weights, a card, and the state to resume from.

# %%
unet_args = ["--seed", "0", "--batch", "8", "--warmup", "20", "--out", str(workdir)]
t0 = time.time()
train_unet.main(unet_args + ["--steps", "150"])
unet_seconds = time.time() - t0
young_card = json.loads((workdir / "toy_unet.json").read_text())
shipped_unet_card = toy_card("unet")
print(f"{young_card['steps']} steps in {unet_seconds:.0f} s; card's final losses: {young_card['final_losses']}")
viz.training_curves({"this run, batch 8": young_card, "shipped, batch 32": shipped_unet_card},
                    title="toy UNet: hybrid loss (mse + vb)")

# %% [markdown]
# The card records the running mean of each term every 50 steps, so the short run is three points. On
# log axes both runs fall steeply at first; the shipped run keeps falling for thousands of steps,
# where most of its two hours went. Now sample from both — unguided, the same 50-step schedule and the
# same random draws:

# %%
young = bl.load_models("toy", device=cpu, unet_path=workdir / "toy_unet.pt")
sampler = create_diffusion(shipped, cfg.timestep_respacing)

def samples(models, n=6):
    torch.manual_seed(cfg.seed)                       # the same start noise and step noise for both
    with torch.no_grad():
        return sampler.p_sample_loop(models.denoiser, (n, 3, 32, 32), progress=False)

viz.image_grid(torch.cat([samples(young), samples(shipped)]), ncols=6,
               titles=[f"{young_card['steps']} steps #{k}" for k in range(6)] + [f"shipped #{k}" for k in range(6)])

# %% [markdown]
# After 150 small steps the UNet's samples are still coloured noise: its loss is far above the shipped
# one's (the plot), and the sampler compounds its errors over 50 steps. The
# shipped UNet draws flat coloured shapes on two-tone backgrounds — not always clean ones (shapes merge,
# edges wobble), but the world's kind of picture.
#
# ## What the CLIP learns
#
# `train_clip.py` trains OpenAI's `clip.model.CLIP` class on *views*: a scene seen whole or through a
# box or ellipse mask (grey outside, as guidance shows it; black, as ranking does), degraded the way
# guidance's $x_{\text{in}}$ is along the trajectory (blur, washed-out contrast, noise), then through the
# paper's augmentations. Every caption of a fixed vocabulary (61: "a red circle", "a red shape", "a
# circle", "a sand background", …) is scored against every view; $T_{ij} = 1$ when caption $j$ is true
# of view $i$ ("a red circle" *and* "a red shape" are true of a red circle). The loss is a
# multi-positive InfoNCE in both directions, with $s_{ij}$ the scaled cosine similarity:
#
# $$L = \tfrac12\Big[\operatorname{mean}_i \Big(-\sum_j \tfrac{T_{ij}}{\sum_k T_{ik}}\log\operatorname{softmax}_j s_{ij}\Big)
#   + \operatorname{mean}_j \Big(-\sum_i \tfrac{T_{ij}}{\sum_k T_{kj}}\log\operatorname{softmax}_i s_{ij}\Big)\Big].$$
#
# The views, before and after the degradations (top: the four kinds of view its phases added):

# %%
rng = np.random.default_rng(4)
view = train_clip.make_view(rng)
while view[-1] is None:                                    # an object view, to show its shape-swapped twin
    view = train_clip.make_view(rng)
kinds = {"object view": view, "its twin (hard negative)": train_clip.twin_view(rng, view),
         "colour blob": train_clip.make_view(rng, blobs=1.0), "two-colour split": train_clip.make_view(rng, splits=1.0)}
clean = torch.stack([image * mask for image, mask, *_ in kinds.values()])   # grey outside, as guidance sees
degraded = train_clip.degrade(clean, torch.Generator().manual_seed(1)) * torch.stack([v[1] for v in kinds.values()])
viz.image_grid(torch.cat([clean, degraded]), ncols=4,
               titles=list(kinds) + [f"{k}, degraded" for k in kinds])

# %% [markdown]
# ## Why the shipped CLIP needed hard negatives
#
# Guidance does not ask CLIP a question: it climbs CLIP's score, and it finds whatever raises the score
# most cheaply. The shipped CLIP was trained in four runs, each resumed from the last with new data —
# its card records every run's arguments (`twins`, `blobs`, `splits` are the shares of views of each
# hard kind above):

# %%
clip_card = toy_card("clip")
adds = {1: "contrastive views only", 2: "+ shape-swapped twins", 3: "+ colour blobs", 4: "+ two-colour splits"}
history = {h["step"]: h for h in clip_card["loss_history"]}

def top1_at(step):
    """The card's running top-1 (is the best caption a true one?) at its last record up to ``step``."""
    return history[max(s for s in history if s <= step)]["top1_true"]

Table({"run": k, "steps": f"{r['start_step']}–{r['end_step']}", "lr": r["args"]["lr"],
       "twins": r["args"].get("twins", 0), "blobs": r["args"].get("blobs", 0), "splits": r["args"].get("splits", 0),
       "adds": adds[k], "top-1 at its end": top1_at(r["end_step"])}
      for k, r in enumerate(clip_card["run_log"], start=1))

# %%
viz.training_curves({"shipped CLIP": clip_card}, term="top1_true", log=False,
                    title="toy CLIP: is its best caption a true one (training views)")

# %% [markdown]
# What each run answered (the README's *Training* section tells the story): the first CLIP told
# colours apart but circles from squares poorly, so guidance for "a red circle" filled the mask with
# red. Twins — the same view with the object redrawn as another shape, a negative only shape separates
# — and blobs (true only for "a red shape") made "a red circle" ask for the shape. Then guidance,
# asked for "a red triangle", painted the box **half red, half green along a diagonal**: a red wedge the
# third CLIP accepted as a triangle. The fourth run added views of regions cut into two colours, true
# only for "a red shape" and "a green shape". The dip at its start is the third CLIP meeting the new
# views: its best caption was a false one for many of them, until it learned (the running mean
# restarts with each run, so its first record leans on the run's first batches).
#
# The wedge, next to a real red triangle, scored by the shipped CLIP and by one you train now for 40
# steps (the first run's data and learning rate, batch 32), with the ranking's measure: the spherical
# distance between CLIP's embedding of the masked view and the caption's (lower = a better match).

# %%
t0 = time.time()
train_clip.main(["--seed", "0", "--steps", "40", "--batch", "32", "--warmup", "10", "--out", str(workdir)])
young_clip = load_clip(workdir / "toy_clip.pt", cpu).float().eval()
print(f"40 CLIP steps in {time.time() - t0:.0f} s")

def wedge(size=32):
    """A square box cut along its diagonal: red above, green below (what guidance drew for 'a red triangle')."""
    image = render_scene([], size).clone()
    v, u = torch.meshgrid((torch.arange(size) + 0.5) / size, (torch.arange(size) + 0.5) / size, indexing="ij")
    box = (u > 0.25) & (u < 0.75) & (v > 0.25) & (v < 0.75)
    for name, part in (("red", box & (u > v)), ("green", box & (u <= v))):
        image[0] = torch.where(part, torch.tensor(COLORS[name]).float().view(3, 1, 1) / 127.5 - 1, image[0])
    return image

probe = ToyObject("red", "triangle", 0.5, 0.5, 0.5)
mask = object_mask(probe)
probes = {"a red triangle (drawn)": render_scene([probe]), "the wedge": wedge()}
captions = ["a red triangle", "a red square", "a red circle", "a red shape", "a green shape"]

def distances(clip_model, images, captions, mask):
    """(N images, T captions) spherical distance of the masked views (black outside) to the captions."""
    return spherical_distance(encode_images(clip_model, images, mask=mask)[:, None],
                              encode_text(clip_model, captions)[None])

with torch.no_grad():
    d = {name: distances(m, torch.cat(list(probes.values())), captions, mask)
         for name, m in (("40 steps", young_clip), ("shipped", shipped.clip))}
display(Table({"CLIP": name, "view": view, **{c: float(d[name][i, j]) for j, c in enumerate(captions)},
               "ranked first": captions[int(d[name][i].argmin())]}
              for name in d for i, view in enumerate(probes)))
viz.image_grid([img * mask - (1 - mask) for img in probes.values()],      # black outside, as ranking shows CLIP
               titles=[f"{name}, as CLIP sees it" for name in probes])

# %% [markdown]
# Read the table row by row. The young CLIP ranks a colour caption first — "a red shape" for the
# triangle, "a green shape" for the wedge — and "a red triangle" and "a red square" tie for either
# picture: shape is not yet in its embedding, so to it a wedge is nearly as much "a red triangle" as a
# triangle is. The shipped CLIP tells them apart: for the drawn triangle "a red
# triangle" is a close second to "a red shape" and far ahead of square and circle, while for the wedge
# "a red triangle" is the *worst* of the five — the two-colour views taught it that a region split in
# two is no triangle.

# %% [markdown]
# ## Exercise 1 · train for longer
#
# The run above stopped after its steps; the same command with a larger `--steps` **resumes** from the
# state it left in the folder and continues with the same data stream. **Predict** the loss the card
# will record after 100 more steps. **Change** the marked line to `steps = 250`, **run** (about half a
# minute), and **check**.

# %%
more = predict("The card's loss (running mean) after 100 more steps", number=True)

# %%
steps = 150   # <- change to: steps = 250
train_unet.main(unet_args + ["--steps", str(steps)])
longer = json.loads((workdir / "toy_unet.json").read_text())
print(f"step {longer['steps']}: {longer['final_losses']}; history: {[h['loss'] for h in longer['loss_history']]}")
check(more, longer["final_losses"]["loss"])

# %% [markdown]
# <details><summary>Answer</summary>
#
# Resumed to 250 steps (on this project's machine) the card records about 0.035 — a fifth of the
# 0.17 it showed at step 150, a bigger fall than most guesses. Part of it is real learning, part is
# bookkeeping: the card's running mean (each step weighs 2 %) *lags* the loss — at step 150 it still
# remembered the first steps' losses near 1 — and a resumed run restarts it from its first step's
# loss, so the lag is gone. The shipped card, averaged over thousands of steps, settles near 0.01.
# Unchanged (`steps = 150`), the run resumes at its last step, has nothing to do and writes the same
# card again.
#
# </details>

# %% [markdown]
# ## Exercise 2 · what the young CLIP sees in a whole scene
#
# So far the CLIPs saw the box around the object. **Predict** which caption of the whole vocabulary
# the 40-step CLIP ranks first when it sees the *whole* scene — a red triangle on sand, nothing
# masked. **Change** the marked line to `view_mask = torch.ones_like(mask)`, **run**, and **check**.

# %%
first = predict("The 40-step CLIP's first caption for the whole scene",
                ["a red triangle", "a red shape", "a sand background", "a white background", "a black background",
                 "something else"])

# %%
view_mask = mask   # <- change to: view_mask = torch.ones_like(mask)
vocabulary = clip_card["vocabulary"]
with torch.no_grad():
    dist = distances(young_clip, probes["a red triangle (drawn)"], vocabulary, view_mask)[0]
order = dist.argsort().tolist()
print("40-step CLIP, best five:", [(vocabulary[j], round(float(dist[j]), 3)) for j in order[:5]])
top = vocabulary[order[0]]
check(first, top if top in first.choices else "something else")

# %% [markdown]
# <details><summary>Answer</summary>
#
# A background — and not even the right one. On this project's machine the young CLIP ranks "a white
# background" first, a hair ahead of "a sand background" (sand is a light colour), with the triangle's
# captions far behind. Unchanged, the box view is black outside, and its first caption over the whole
# vocabulary is "a black background": it reads the black fill as the scene's background (the five
# captions of the table above hid that). A barely-trained CLIP knows what covers the most pixels;
# telling what an object *is* comes much later — and for guidance, only the hard negatives made it
# matter.
#
# </details>

# %% [markdown]
# ## What to remember
#
# - The toy UNet learns guided-diffusion's hybrid loss: the ε-MSE plus the variational bound that
#   teaches the learned Σ. A minute gives colours and backgrounds; shapes took the shipped two hours.
# - The toy CLIP learns a multi-positive contrastive loss on the views guidance shows it. Guidance
#   exploits whatever CLIP does not check, so each run of its training closed a door guidance had
#   found: shape-swapped twins, colour blobs, two-colour splits. Its card records every run.
# - Both scripts are seeded and resumable: the same command continues a run, and the card says how
#   every shipped weight file was made.

# %%
import shutil
shutil.rmtree(workdir, ignore_errors=True)  # the training runs of this lesson were only for it
