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
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/blendlab/blendlab/blob/main/notebooks/03_guided_latents_step_by_step.ipynb)
#
# # 3 · Guided latents, step by step
#
# `bl.edit` hides a loop. Here we run that loop ourselves, one reverse step at a time, and look at
# every tensor it makes: the noisy latent $x_t$, the model's guess of the clean image $\hat x_0$, the
# CLIP gradient, the guided proposal, the noised background and their blend. Then we change the loop:
# switch the guidance off, switch the blending off, and write a hook of our own.

# %%
import importlib.util, subprocess, sys  # a fresh runtime (e.g. Colab) installs blendlab from GitHub
if importlib.util.find_spec("blendlab") is None:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "git+https://github.com/blendlab/blendlab"], check=True)
from blendlab.notebook import setup; env = setup()

# %%
import blendlab as bl
from blendlab import viz
from blendlab.widgets import StepScrubber

models = env.load_models()
size = models.image_size
image = bl.sample_image("grace_hopper", size=size)
mask = bl.ellipse_mask(size, center=(0.5, 0.8), radii=(0.28, 0.18))  # her jacket
cfg = env.config(prompt="a knitted woollen sweater")
viz.mask_overlay(image, mask)

# %% [markdown]
# ## One reverse step
#
# For $t = T', \dots, 1$ the sampler does (Algorithm 1 of the paper, with guided-diffusion's posterior):
#
# 1. one UNet pass gives $\hat x_0$ and the posterior $\mathcal N(\mu_\theta(x_t), \Sigma_t)$;
# 2. the CLIP loss is taken on a mix leaning on $\hat x_0$ while the noise is high,
#    $x_{\mathrm{in}} = \sqrt{1-\bar\alpha_t}\,\hat x_0 + \big(1-\sqrt{1-\bar\alpha_t}\big)\,x_t$, and
#    $g = -\nabla_{x_t} L(x_{\mathrm{in}})$;
# 3. the guided proposal is $x_{\mathrm{fg}} \sim \mathcal N(\mu_\theta + \Sigma_t\, g,\ \Sigma_t)$;
# 4. the background is the input noised to this level, $x_{\mathrm{bg}} \sim q(x_t\mid x_0)$;
# 5. $x_{t-1} = x_{\mathrm{fg}}\odot m + x_{\mathrm{bg}}\odot(1-m)$.
#
# `sampler.steps()` yields a `StepState` after each step with all of these tensors. A `Recorder` hook
# keeps copies on the CPU for later.

# %%
sampler = bl.BlendedSampler(models, image, mask, cfg)
recorder = bl.Recorder()
snapshots = {}
for state in sampler.steps(hooks=[recorder]):
    if state.index in (0, state.num_steps // 2, state.num_steps - 1):
        snapshots[state.index] = state
guided = sampler.final_images(state)
print(f"{state.num_steps} steps, batch of {guided.shape[0]}; snapshots at steps {[i + 1 for i in snapshots]}")

# %% [markdown]
# **The first step.** $x_t$ is the input noised to the first kept level; $\hat x_0$ is a blurry guess.
# The gradient is strongest inside the mask, since CLIP sees only the masked image; but it is taken with
# respect to $x_t$ *through the UNet*, which mixes neighbouring pixels, so some of it leaks past the
# border — harmless, because the blend replaces the outside anyway.

# %%
first, middle, last = snapshots.values()
viz.step_panels(first)

# %% [markdown]
# **Halfway.** The guess $\hat x_0$ has taken shape; the background outside the mask is the input with
# less and less noise.

# %%
viz.step_panels(middle)

# %% [markdown]
# **The last step.** $\bar\alpha_t\approx 1$: $x_{t-1}$ is (almost) the final image. The result is the
# last $\hat x_0$ with the input pasted outside the mask (`sampler.final_images`).

# %%
viz.step_panels(last)

# %%
viz.image_grid([image[0], *guided], titles=["input"] + [f"result {k}" for k in range(len(guided))])

# %% [markdown]
# ## Guided vs unguided, from the same seed
#
# With an empty prompt there is no guidance ($g = 0$): the model just fills the hole in a way that fits
# the background. The seed is the same, so both runs draw the same noise; the difference between the rows
# is the CLIP gradient alone.

# %%
unguided_recorder = bl.Recorder(fields=("pred_x0",))
unguided = bl.BlendedSampler(models, image, mask, cfg.replace(prompt="")).run(hooks=[unguided_recorder])
viz.step_strip({"guided": recorder, 'unguided (prompt "")': unguided_recorder}, field="pred_x0", max_steps=8)

# %% [markdown]
# ## Without blending: the background drifts
#
# `local_clip_guided_diffusion=True` keeps the CLIP loss on the masked region but skips step 5: the
# model denoises the whole image on its own. Nothing holds the outside of the mask to the input, and it
# drifts. We measure the drift of $\hat x_0$ at every step as the mean squared difference to the input
# outside the mask.

# %%
local_recorder = bl.Recorder(fields=("pred_x0",))
local = bl.BlendedSampler(models, image, mask, cfg.replace(local_clip_guided_diffusion=True))
local_images = local.run(hooks=[local_recorder])
drift = {
    "blended": [float(viz.background_drift(s.fields["pred_x0"], image, mask).mean()) for s in recorder.steps],
    "local, no blending": [float(viz.background_drift(s.fields["pred_x0"], image, mask).mean()) for s in local_recorder.steps],
}
viz.loss_curves(drift, title=r"background drift of $\hat x_0$ (MSE outside the mask vs the input)", ylabel="MSE")

# %%
viz.image_grid([image[0], guided[0], local_images[0]],
               titles=["input",
                       f"blended\ndrift {float(viz.background_drift(guided[:1], image, mask)[0]):.4f}",
                       f"local, no blending\ndrift {float(viz.background_drift(local_images[:1], image, mask)[0]):.4f}"])

# %% [markdown]
# ## Scrub through the recording
#
# Drag the slider (or press play) to walk through the steps; pick the tensor to show and the sample.

# %%
StepScrubber(recorder, init_image=image)

# %% [markdown]
# ## Changing the loop yourself
#
# Two ways to intervene:
#
# - **a hook** — any function `hook(state)` passed in `hooks=[...]`; it is called after every step. It may
#   just look (return `None`), or change the state: the next step starts from `state.x_prev` as the hook
#   leaves it.
# - **your own loop** over `sampler.steps()`, which can also change the sampler between steps. The
#   guidance is `sampler.loss`; setting it to `None` turns guidance off from the next step on.
#
# Below: guidance only for the first half of the steps, and a small hook that watches the size of the
# gradient.

# %%
gradient_sizes = []

def watch_gradient(state):
    gradient_sizes.append(float(state.grad.norm()))  # looks only: returns None

half_recorder = bl.Recorder(fields=("pred_x0", "grad"))
half = bl.BlendedSampler(models, image, mask, cfg)
for state in half.steps(hooks=[half_recorder, watch_gradient]):
    if state.index + 1 == state.num_steps // 2:
        half.loss = None  # no guidance from the next step on
half_images = half.final_images(state)
print("‖g‖ per step:", [f"{g:.3g}" for g in gradient_sizes])
viz.step_strip({"guided throughout": recorder, "guidance off after half": half_recorder}, field="grad", max_steps=8)

# %%
viz.image_grid([guided[0], half_images[0], unguided[0]],
               titles=["guided throughout", "guided for the first half", "unguided"])

# %%
if env.tiny:
    print("Tiny mode: random weights, so x̂0 never looks like a photo and the three results above are noise-like "
          "inside the mask. What to check here is the mechanics: zero gradient after the switch, the same "
          "background everywhere, and the drift without blending.")

# %% [markdown]
# ## What to remember
#
# - A step is: one UNet pass, a CLIP gradient on (mostly) $\hat x_0$, a guided sample, a noised
#   background, a blend. `sampler.steps()` shows each of them.
# - Guidance shapes $\hat x_0$ while the noise is high; with the real model, compare how much of the
#   edit survives when it stops halfway.
# - Without blending the background drifts; blending pins it to the input at every noise level.
# - Hooks observe or change each step; a loop over `steps()` can change the sampler itself.
