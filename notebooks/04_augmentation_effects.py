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
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/blendlab/blendlab/blob/main/notebooks/04_augmentation_effects.ipynb)
#
# # 4 · Extending augmentations: what CLIP sees, and why many views
#
# CLIP guidance pushes $\hat x_0$ (the model's guess of the clean image) toward the prompt by following
# the gradient of a CLIP loss. A gradient step on an image classifier is the recipe for an *adversarial
# example*: a faint, high-frequency pattern that changes CLIP's opinion without changing what a person
# sees. The paper's remedy is to score many randomly warped copies of the masked image at once; a
# pattern that fools CLIP in one view rarely survives all the warps, so the gradient that is left is the
# one of a real, visible change.

# %%
import importlib.util, subprocess, sys  # a fresh runtime (e.g. Colab) installs blendlab from GitHub
if importlib.util.find_spec("blendlab") is None:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "git+https://github.com/blendlab/blendlab"], check=True)
from blendlab.notebook import setup; env = setup()

# %%
import blendlab as bl
from blendlab import viz

models = env.load_models()
size = models.image_size
image = bl.sample_image("grace_hopper", size=size)
mask = bl.ellipse_mask(size, center=(0.5, 0.8), radii=(0.28, 0.18))  # her jacket
prompt = "a bouquet of red roses"
viz.mask_overlay(image, mask)

# %% [markdown]
# ## The views
#
# With `aug_num` $=V$, the CLIP loss of one step averages over $V$ views of the masked image
# $x_{\mathrm{in}} \odot m$:
#
# $$L_{\mathrm{CLIP}} = \frac{1}{V}\sum_{v=0}^{V-1} D\big(\mathrm{CLIP}_I(\mathrm{aug}_v(x_{\mathrm{in}}\odot m)),\ \mathrm{CLIP}_T(\text{prompt})\big),
# \qquad D(a, b) = 2\arcsin^2\!\frac{\lVert \hat a-\hat b\rVert}{2},$$
#
# where view 0 is the masked image pooled to CLIP's input size and views $1..V-1$ are random affine +
# perspective warps of it (`blendlab.guidance.ExtendingAugmentations`). Here is what CLIP is shown of our
# input — the same seed gives the same views.

# %%
viz.augmentation_views(image, mask, size=models.clip_size, aug_num=8, seed=0)

# %% [markdown]
# ## One view vs eight, from the same seed
#
# Two edits that differ only in `aug_num`. The seed is the same, so they start from the same noise and
# draw the same noise at every step; any difference comes from the guidance gradient.

# %%
rec1, rec8 = bl.Recorder(fields=("pred_x0", "grad")), bl.Recorder(fields=("pred_x0", "grad"))
cfg = env.config(prompt=prompt, iterations_num=1)  # one batch each (the paper draws 8 and keeps the best)
one = bl.edit(models, image, mask, cfg.replace(aug_num=1), hooks=[rec1])
eight = bl.edit(models, image, mask, cfg.replace(aug_num=8), hooks=[rec8])
runs = {"aug_num=1": rec1, "aug_num=8": rec8}

# %% [markdown]
# The CLIP loss each run *optimised* (averaged over its own views). With one view the loss is easy to
# drive down; that alone says little about the picture.

# %%
viz.loss_curves(runs, term="clip", title="CLIP loss per step (each run's own views)")

# %% [markdown]
# A fairer judge is the distance both results get from the *same* unaugmented view, which is how the
# samples are ranked (lower is better):

# %%
viz.image_grid([image[0], one.images[one.order[0]], eight.images[eight.order[0]]],
               titles=["input", f"aug_num=1, best\nd = {float(one.distances.min()):.3f}",
                       f"aug_num=8, best\nd = {float(eight.distances.min()):.3f}"])

# %% [markdown]
# ## Where the gradient goes
#
# The size of the guidance gradient $\lVert\nabla_{x_t} L\rVert$ per pixel, over the steps. With a single
# view CLIP's gradient tends to be speckled — a pixel-level pattern, the signature of an adversarial
# direction; averaged over warped views it becomes smoother and follows structures that survive the warps.

# %%
viz.step_strip(runs, field="grad", max_steps=6)

# %%
viz.step_strip(runs, field="pred_x0", max_steps=6)

# %%
if env.tiny:
    print("Tiny mode: CLIP and the diffusion model have random weights, so the difference between one and "
          "eight views here is mechanical only (different gradients, different samples). The adversarial "
          "patterns vs natural edits show with the real models (open this notebook in Colab with a GPU).")

# %% [markdown]
# ## What to remember
#
# - CLIP guidance is a gradient attack on CLIP; one view invites imperceptible adversarial patterns.
# - `aug_num` views (random affine + perspective warps of the masked region) average those away, so the
#   gradient that remains makes changes you can see. The paper uses 8.
# - Compare runs with the unaugmented ranking distance, not with the loss each run optimised.
