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
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/blendlab/blendlab/blob/main/notebooks/05_applications.ipynb)
#
# # 5 · Applications: one method, four edits
#
# The same algorithm — guide inside the mask, blend with the noised input outside — covers every
# application in the paper. What changes is only *which* region is the mask and *what* the input looks
# like before the edit. `blendlab.apps` packages the four of them as one call each:
#
# | application | mask | input |
# |---|---|---|
# | object editing | the object's region | the photo |
# | background replacement | the **inverse** of the object's region | the photo |
# | scribble-guided editing | a region around the scribble | the photo with a rough colour scribble painted in |
# | text-guided extrapolation | a new band at the border | the photo shifted over, the band empty |

# %%
import importlib.util, subprocess, sys  # a fresh runtime (e.g. Colab) installs blendlab from GitHub
if importlib.util.find_spec("blendlab") is None:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "git+https://github.com/blendlab/blendlab"], check=True)
from blendlab.notebook import setup; env = setup()

# %%
from PIL import Image

import blendlab as bl
from blendlab import apps, viz

models = env.load_models()
size = models.image_size
photo = bl.sample_image("grace_hopper", size=size)
cfg = env.config(iterations_num=1)  # one batch of samples per edit (the paper draws 8 and keeps the best)
if env.tiny:
    print("Tiny mode: random-weight models, so every edited region below is noise-like. Watch *where* each "
          "application edits and what it keeps; the pictures need the real models (Colab, GPU).")

# %% [markdown]
# ## 1. Object editing
#
# Mark an object (or an empty spot) and describe what should be there. Everything outside the mask is
# the input's, pixel for pixel (the final step pastes it back: `enforce_background`).

# %%
hat = bl.ellipse_mask(size, center=(0.5, 0.17), radii=(0.3, 0.15))
viz.mask_overlay(photo, hat, title="mask: the cap")

# %%
edited = apps.object_edit(models, photo, hat, "a red knitted beanie", cfg)
viz.ranked_gallery(edited)

# %% [markdown]
# ## 2. Background replacement
#
# Here the mask marks what to **keep** — the person — and the edit region is its inverse,
# $m_{\mathrm{edit}} = 1 - m_{\mathrm{object}}$ (the reference's `--invert_mask`).

# %%
person = bl.ellipse_mask(size, center=(0.5, 0.62), radii=(0.36, 0.5))
viz.mask_overlay(photo, bl.invert_mask(person), title="edit region: everything but the person")

# %%
replaced = apps.replace_background(models, photo, person, "a library with tall wooden bookshelves", cfg)
viz.ranked_gallery(replaced)

# %% [markdown]
# ## 3. Scribble-guided editing
#
# Paint a rough blob of colour where something should appear, mask a region around it, and describe it.
# The scribble is pasted into the input, and the edit skips *more* of the noisy steps than usual, so
# the noised input still carries the scribble's colour and shape when the model starts: the result
# follows the scribble's layout while CLIP turns it into the prompt. (`scribble_edit` skips half of the
# respaced steps, the paper's 50 of 100 instead of 25; the tiny settings already skip half, so in tiny
# mode the two numbers printed below are equal.)

# %%
scenery = bl.sample_image("shapes", size=size)
region = bl.ellipse_mask(size, center=(0.3, 0.25), radii=(0.2, 0.15))
blob = bl.ellipse_mask(size, center=(0.3, 0.25), radii=(0.12, 0.08))  # inside the region
white = bl.load_image(Image.new("RGB", (size, size), "white"))
scribbled = apps.scribble_edit(models, scenery, region, white, blob, "a fluffy white cloud", cfg)
print(f"skip_timesteps: {cfg.skip_timesteps} for a plain edit, {scribbled.cfg.skip_timesteps} for the scribble "
      f"(of {cfg.num_steps_total()} respaced steps)")
viz.image_grid([scenery[0], scribbled.init_image[0], scribbled.images[scribbled.order[0]]],
               titles=["input", "input + scribble", "scribble-guided edit (best)"])

# %% [markdown]
# ## 4. Text-guided extrapolation
#
# To grow the picture sideways, shift it over by a quarter of its width, leaving an empty band, and edit
# the band with a prompt. Each side gets its own prompt; the paper's example puts "hell" on the left and
# "heaven" on the right. The band is blended with the noised input next to it, so the new content
# continues the old.

# %%
canvas, per_side = apps.extrapolate(models, photo, {"left": "hell", "right": "heaven"}, fraction=0.25, cfg=cfg)
print(f"canvas {tuple(photo.shape[-2:])} -> {tuple(canvas.shape[-2:])}")
viz.image_grid([photo[0], per_side["left"].init_image[0], canvas[0]],
               titles=["input", "shifted right: empty band on the left", '"hell" | input | "heaven"'])

# %% [markdown]
# ## What to remember
#
# - Object editing, background replacement, scribbles and extrapolation are *one* algorithm with
#   different masks and inputs.
# - Inverting the mask replaces the background; pasting a scribble and skipping more steps steers layout
#   and colour; shifting the canvas and masking the new band extends the image.
# - Each call returns an `EditResult` (`.images`, `.distances`, `.ranked`), like `bl.edit`.
