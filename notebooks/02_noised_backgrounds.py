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
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/blendlab/blendlab/blob/main/notebooks/02_noised_backgrounds.ipynb)
#
# # 2 · Noised backgrounds: blending at every noise level
#
# Blended Diffusion never lets the diffusion model touch the background directly. At every reverse
# step it takes the model's guided proposal *inside* the mask and, *outside* the mask, the input image
# **noised to exactly the same level**. This lesson looks at that noised background: where it comes
# from (the forward process), how much of the image survives at each step (ᾱ and the SNR), and why
# blending at every level gives seamless edits where a single paste at the end leaves a seam.

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
mask = bl.ellipse_mask(size, center=(0.25, 0.3), radii=(0.2, 0.22))  # the flag behind her
cfg = env.config(prompt="a framed oil painting of a ship", iterations_num=1)  # one batch (the paper draws 8)
viz.mask_overlay(image, mask)

# %% [markdown]
# ## The forward process in one jump
#
# The diffusion model was trained to undo a fixed noising process. Its key property is that we can
# jump from a clean image $x_0$ to any noise level $t$ in one step:
#
# $$q(x_t \mid x_0) = \mathcal{N}\!\left(\sqrt{\bar\alpha_t}\,x_0,\ (1-\bar\alpha_t)\,I\right),
# \qquad x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\varepsilon,\quad \varepsilon\sim\mathcal N(0, I),$$
#
# with $\bar\alpha_t = \prod_{s\le t}(1-\beta_s)$ falling from 1 (clean) to almost 0 (pure noise).
# A handy single number is the signal-to-noise ratio
#
# $$\mathrm{SNR}(t) = \frac{\bar\alpha_t}{1-\bar\alpha_t}.$$
#
# Blended Diffusion does not start from pure noise: it *skips* the first `skip_timesteps` of the
# respaced steps and starts from the input noised to the first kept step, $x_{T'} \sim q(x_{T'}\mid x_0)$.
# The plot marks the steps the sampler will actually visit with these settings
# (`timestep_respacing` picks which of the 1000 training steps are used at all).

# %%
print(f"timestep_respacing={cfg.timestep_respacing!r}, skip_timesteps={cfg.skip_timesteps}: "
      f"{cfg.num_steps} reverse steps")
viz.noise_schedule(models, cfg)

# %% [markdown]
# Above the shaded region the SNR is tiny: an image noised that far has lost nearly everything, so
# skipping those steps loses little — and starting lower keeps the input's layout and colours.

# %% [markdown]
# ## The input at every kept step
#
# Here is $q(x_t\mid x_0)$ of our input at every step the sampler visits (one shared $\varepsilon$, so
# you can watch the image come out of the noise).

# %%
viz.noised_inputs(models, image, cfg)

# %% [markdown]
# ## Exactly the backgrounds the blend uses
#
# One reverse step of Blended Diffusion ends with
#
# $$x_{t-1} = x_{\mathrm{fg}} \odot m + x_{\mathrm{bg}} \odot (1-m), \qquad x_{\mathrm{bg}} \sim q(x_t\mid x_0),$$
#
# where $x_{\mathrm{fg}}$ is the CLIP-guided sample of the diffusion model and $m$ the mask; as in the
# paper's Algorithm 1 (and the authors' code) the background is the input noised to the step's own
# level $t$. The sampler exposes $x_{\mathrm{bg}}$ as `state.bg`; a `Recorder` hook keeps it (with fresh
# noise at every step, as the method draws it).

# %%
recorder = bl.Recorder(fields=("fg", "bg", "x_prev"))
blended = bl.edit(models, image, mask, cfg, hooks=[recorder])
viz.step_strip(recorder, field="bg", max_steps=10)

# %% [markdown]
# And the blend itself: inside the mask the guided sample, outside the noised input — at the same
# noise level, so the two halves always have the same statistics.

# %%
viz.step_strip(recorder, field="x_prev", max_steps=10)

# %% [markdown]
# ## Why blend at every step? One paste at the end leaves a seam
#
# The obvious alternative is *local CLIP-guided diffusion*: guide the whole image with the CLIP loss
# on the masked region only, and when it is done, paste the input back outside the mask. The model
# never saw the real background, so what it made near the border does not continue what is really
# there: the paste leaves a seam. Blending at every noise level lets each denoising step see the true
# surroundings and adapt the border to them — the seam heals.
#
# `cfg.local_clip_guided_diffusion=True` runs that baseline (no blending); `viz.paste_background`
# does the one paste at the end.

# %%
local = bl.edit(models, image, mask, cfg.replace(local_clip_guided_diffusion=True))
pasted = viz.paste_background(local.images, image, mask)

best_blended = blended.images[blended.order[0]]
best_pasted = pasted[local.order[0]]
viz.image_grid([image[0], best_blended, local.images[local.order[0]], best_pasted],
               titles=["input", "blended at every step", "local guided (no blend)", "... + one paste at the end"])

# %% [markdown]
# A seam is a jump in the image right on the mask border. `viz.seam_strength` measures it: the mean of
# $|\partial_x I| + |\partial_y I|$ over the pixels on the border (±1 px). The input's own value is the
# reference — what the border looks like with no edit at all.

# %%
print("seam strength, input:               ", f"{float(viz.seam_strength(image, mask)[0]):.3f}")
print("seam strength, blended (each sample):", [round(v, 3) for v in viz.seam_strength(blended.images, mask).tolist()])
print("seam strength, pasted  (each sample):", [round(v, 3) for v in viz.seam_strength(pasted, mask).tolist()])
viz.seam_comparison({"input": image, "blended": best_blended, "one paste at the end": best_pasted}, mask)

# %%
if env.tiny:
    print("Tiny mode: the models have random weights, so both results are noise-like inside the mask and the "
          "seam numbers only show that the measurement works. With the real model (Colab, GPU) the pasted "
          "result shows a visible border and a clearly higher seam strength than the blended one.")

# %% [markdown]
# ## What to remember
#
# - $q(x_t\mid x_0)$ gives the input at any noise level in one jump; ᾱ and the SNR say how much survives.
# - Blended Diffusion starts from the input noised to the first kept step and, at every step, replaces
#   the outside of the mask by a fresh $q(x_t\mid x_0)$ sample of the input.
# - Because the guided region is always denoised *next to the real background at the same noise level*,
#   the border is coherent; a single paste at the end cannot fix a border the model never saw.
#
# Next: `03_guided_latents_step_by_step` opens one reverse step.
