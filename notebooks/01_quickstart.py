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
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/blendlab/blendlab/blob/main/notebooks/01_quickstart.ipynb)
#
# # 1 · Quickstart: paint a mask, write a prompt, edit
#
# **Blended Diffusion** (Avrahami, Lischinski & Fried, CVPR 2022) edits a region of a real photo from a
# text prompt. You give it three things:
#
# - an **image** $x_0$,
# - a **mask** $m$ — 1 where the image may change, 0 where it must stay,
# - a **prompt** — what the masked region should become.
#
# A pretrained diffusion model denoises from a noisy version of the image; at each step CLIP nudges the
# masked region toward the prompt, and the outside is replaced by the input noised to the same level:
#
# $$x_{t-1} = x_{\mathrm{fg}}\odot m + x_{\mathrm{bg}}\odot(1-m).$$
#
# Several samples are drawn and ranked by how well CLIP thinks the masked region matches the prompt.

# %%
import importlib.util, subprocess, sys  # a fresh runtime (e.g. Colab) installs blendlab from GitHub
if importlib.util.find_spec("blendlab") is None:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "git+https://github.com/blendlab/blendlab"], check=True)
from blendlab.notebook import setup; env = setup()

# %% [markdown]
# ## 1. The image and the mask
#
# Paint the region to edit with the brush (or drag a rectangle / ellipse). The mask lives at the
# model's resolution.

# %%
from PIL import Image

import blendlab as bl
from blendlab import apps, viz
from blendlab.widgets import EditorApp, MaskPainter

models = env.load_models()
size = models.image_size
image = bl.sample_image("grace_hopper", size=size)
painter = MaskPainter(image)
painter

# %% [markdown]
# When nothing has been painted (for example when the notebook runs unattended), the next cell sets a
# default mask over the cap with `painter.set_mask(...)` — it then shows in the painter above too. Paint
# your own and run the cell again to use yours.

# %%
if painter.mask.sum() == 0:
    painter.set_mask(bl.ellipse_mask(size, center=(0.5, 0.17), radii=(0.3, 0.15)))
    print("Nothing painted: using a default ellipse over the cap.")
mask = painter.mask
viz.mask_overlay(image, mask)

# %% [markdown]
# ## 2. Prompt and edit
#
# `env.config(...)` gives the paper's settings with the real model (on the GPU: `iterations_num` × `batch_size`
# = 32 samples, a few minutes) and small, fast ones in tiny mode. Every setting is a field of
# `bl.EditConfig`, the same names as the authors' command-line flags.

# %%
prompt = "a red knitted beanie"
cfg = env.config(prompt=prompt)
result = bl.edit(models, image, mask, cfg)
viz.ranked_gallery(result, n=8)

# %% [markdown]
# The samples come back best first: `result.ranked` is a list of `(PIL image, distance)`, where the
# distance is CLIP's spherical distance between the masked region and the prompt (lower is better).
# `result.save_ranked("out/ranked")` writes them to files named by that distance.

# %%
if env.tiny:
    print("Tiny mode: the models have random weights, so the masked region is noise-like. Everything else — "
          "the mask, the blend, the ranking — works exactly as with the real models; the lesson is in the "
          "mechanics. Open this notebook in Colab with a GPU for real edits.")

# %% [markdown]
# ## 3. The four applications at a glance
#
# The same method, with a different mask or input (notebook `05_applications` takes them one by one):
#
# - **object editing** — the mask is the object;
# - **background replacement** — the mask is the *inverse* of the object to keep;
# - **scribble-guided editing** — a rough colour scribble pasted in, more noisy steps skipped;
# - **text-guided extrapolation** — shift the image, edit the empty band, one prompt per side.

# %%
quick = env.config(iterations_num=1)  # one batch per application, for a quick look
person = bl.ellipse_mask(size, center=(0.5, 0.62), radii=(0.36, 0.5))
region = bl.ellipse_mask(size, center=(0.22, 0.3), radii=(0.18, 0.2))
blob = bl.ellipse_mask(size, center=(0.22, 0.3), radii=(0.1, 0.1))
white = bl.load_image(Image.new("RGB", (size, size), "white"))

obj = apps.object_edit(models, image, mask, prompt, quick)
background = apps.replace_background(models, image, person, "a snowy mountain landscape", quick)
scribble = apps.scribble_edit(models, image, region, white, blob, "a white dove", quick)
wide, _ = apps.extrapolate(models, image, {"left": "hell", "right": "heaven"}, cfg=quick)

viz.image_grid([image[0], obj.ranked[0][0], background.ranked[0][0], scribble.ranked[0][0], wide[0]],
               titles=["input", f'object:\n"{prompt}"', 'background:\n"a snowy mountain landscape"',
                       'scribble (white blob):\n"a white dove"', 'extrapolated:\n"hell" | input | "heaven"'])

# %% [markdown]
# ## 4. Everything in one cell
#
# `EditorApp` puts it together: pick or upload an image, paint the mask, type a prompt, adjust the
# settings, press **Run**, watch $\hat x_0$ form, and browse the ranked results (tick *record steps* for a
# step-by-step scrubber).

# %%
EditorApp(env, prompt=prompt)

# %% [markdown]
# **Next:** `02_noised_backgrounds` (why the blend works), `03_guided_latents_step_by_step` (one step
# opened up), `04_augmentation_effects` (what CLIP sees), `05_applications`.
