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
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/blendlab/blendlab/blob/main/notebooks/04_guided_latents_step_by_step.ipynb)
#
# # 4 · Guided latents, step by step
#
# `bl.edit` hides a loop. Here we run it one reverse step at a time and look at every tensor it makes:
# the noisy latent $x_t$, the model's guess of the clean image $\hat x_0$, the CLIP gradient, the guided
# proposal, the noised background and their blend. First the two equations behind a guided step, then
# the pictures, then changes to the loop: no guidance, no blending, a hook of our own.
#
# On a CPU this runs in the toy world (a UNet and a CLIP trained on this project's machines on 32 px
# scenes of coloured shapes — not the paper's results), where you can watch the requested object form.

# %%
import importlib.util, os, subprocess, sys  # a fresh runtime (e.g. Colab) installs blendlab from $BLENDLAB_SOURCE
source = os.environ.get("BLENDLAB_SOURCE", "git+https://github.com/blendlab/blendlab")  # or your fork (git+https://...) or a local path
if importlib.util.find_spec("blendlab") is None and subprocess.run([sys.executable, "-m", "pip", "install", "-q", source]).returncode:
    sys.exit(f"blendlab could not be installed from {source} (pip says why above); to install your own copy, set BLENDLAB_SOURCE to your fork's git+https URL or a local path (e.g. %env BLENDLAB_SOURCE=/content/blendlab) and run this cell again.")
from blendlab.notebook import setup; env = setup()

# %% [markdown]
# ## Why "mean + Σ · gradient" is a valid step
#
# An unconditional DDPM samples $x_{t-1} \sim p_\theta(x_{t-1}\mid x_t) = \mathcal N(\mu, \Sigma)$. To
# sample images that also show $y$ (our prompt) we want $p(x_{t-1}\mid x_t, y) \propto
# p_\theta(x_{t-1}\mid x_t)\, p(y\mid x_{t-1})$. The Gaussian is narrow, so near $\mu$ a first-order
# Taylor expansion is enough: $\log p(y\mid x) \approx \log p(y\mid\mu) + (x-\mu)^\top g$ with
# $g = \nabla_x \log p(y\mid x)$. Completing the square,
#
# $$-\tfrac12 (x-\mu)^\top\Sigma^{-1}(x-\mu) + (x-\mu)^\top g
#   = -\tfrac12 (x-\mu-\Sigma g)^\top\Sigma^{-1}(x-\mu-\Sigma g) + \text{const},$$
#
# so the product is again a Gaussian, $\mathcal N(\mu + \Sigma g,\ \Sigma)$: shift the mean by $\Sigma g$
# and sample as usual (classifier guidance; Sohl-Dickstein et al. 2015, Dhariwal & Nichol 2021).
# Blended Diffusion has no classifier: it uses a loss, $p(y\mid x) \propto e^{-L(x)}$, so $g = -\nabla L$,
# and guided-diffusion evaluates it at $x_t$ (`condition_mean`), as the authors' code does.
#
# ## The paper's notation and the code's
#
# The paper writes the CLIP loss on $\hat x_0$ with a cosine distance, $D_{\mathrm{CLIP}}(\hat x_0 \odot m,
# \text{prompt})$, and its gradient with respect to $\hat x_0$. The code (the authors' and blendlab's)
# differentiates with respect to $x_t$, through the UNet, of the loss on a mix that leans on $\hat x_0$
# while the noise is high:
#
# $$x_{\mathrm{in}} = \hat x_0\,\sqrt{1-\bar\alpha_t} + x_t\,\big(1-\sqrt{1-\bar\alpha_t}\big), \qquad
#   D(a, b) = 2\arcsin^2\frac{\lVert \hat a-\hat b\rVert}{2} = \frac{\theta^2}{2},$$
#
# the *spherical* distance between the unit embeddings $\hat a, \hat b$ at angle $\theta$. Since
# $\lVert\hat a-\hat b\rVert = 2\sin(\theta/2)$, $D$ grows with $\theta$ exactly as the cosine distance
# $1-\cos\theta$ does: both rank images the same, only the gradient's scale differs. Next to it stands the
# **range loss**, $L_{\mathrm{range}}(\hat x_0) = \operatorname{mean}\big((\hat x_0 - \operatorname{clamp}(\hat x_0, -1, 1))^2\big)$:
# it is zero while the predicted pixels stay inside the image range $[-1, 1]$ and pulls them back when they
# leave it. The loss of one step, for a batch of $B$ samples and $V$ augmented views (lesson 05), is
#
# $$L = \sum_{b=1}^{B}\Big[\lambda_{\mathrm{clip}}\,\frac1V\sum_{v} D\big(\mathrm{CLIP}(\mathrm{aug}_v(x_{\mathrm{in},b}\odot m)), \mathrm{CLIP}(\text{prompt})\big)
#   + \lambda_{\mathrm{range}}\, L_{\mathrm{range}}(\hat x_{0,b})\Big],$$
#
# a *sum* over the batch, so each sample gets the gradient of its own loss ($\lambda_{\mathrm{clip}} = 1000$,
# $\lambda_{\mathrm{range}} = 50$).

# %%
import torch.nn.functional as F

import blendlab as bl
from blendlab import viz
from blendlab.guidance import encode_images, encode_text, spherical_distance
from blendlab.toyworld.judge import judge
from blendlab.typography import Table
from blendlab.widgets import StepScrubber

ex = env.example("insert")  # a toy scene with an empty box, or the photo
cfg = env.config(prompt=ex.prompt, timestep_respacing="40", skip_timesteps=10)  # short schedule (paper: 100, 25)
sampler = bl.BlendedSampler(env.load_models(), ex.image, ex.mask, cfg)
viz.mask_overlay(ex.image, ex.mask, title=f'"{ex.prompt}"')

# %% [markdown]
# ## One reverse step
#
# For each step the sampler does (Algorithm 1 of the paper, with guided-diffusion's posterior):
#
# 1. one UNet pass gives $\hat x_0$ and the posterior $\mathcal N(\mu_\theta(x_t), \Sigma_t)$;
# 2. $g = -\nabla_{x_t} L$, the loss above;
# 3. the guided proposal $x_{\mathrm{fg}} \sim \mathcal N(\mu_\theta + \Sigma_t\, g,\ \Sigma_t)$;
# 4. the background, the input noised at $t$: $x_{\mathrm{bg}} \sim q(x_t\mid x_0)$ (lesson 02);
# 5. $x_{t-1} = x_{\mathrm{fg}}\odot m + x_{\mathrm{bg}}\odot(1-m)$.
#
# `sampler.steps()` yields a `StepState` after each step with all of these tensors; `state.index` is the
# step $k$ (from 0), `state.timestep` the $t$ of the 1000-step schedule. A `Recorder` hook keeps copies.

# %%
recorder = bl.Recorder()
snapshots = {}
for state in sampler.steps(hooks=[recorder]):
    if state.index in (0, state.num_steps // 2, state.num_steps - 1):
        snapshots[state.index] = state
guided = sampler.final_images(state)
print(f"{state.num_steps} steps, batch of {guided.shape[0]}; snapshots at",
      ", ".join(recorder.steps[k].label for k in snapshots))

# %% [markdown]
# **The first step.** $x_t$ is the input noised to the first kept step; $\hat x_0$ is a blurry guess.
# (The title names the step as every label does: "step $k$/$N$ · t=…", with $\bar\alpha_t$.)

# %%
first, middle, last = snapshots.values()
viz.step_panels(first)

# %% [markdown]
# **Halfway** and **the last step**, where $\bar\alpha_t \approx 1$ and $x_{t-1}$ is almost the final image.
# The result is the last $\hat x_0$ with the input pasted outside the mask (`sampler.final_images`).

# %%
viz.step_panels(middle)

# %%
viz.step_panels(last)

# %% [markdown]
# ## $\hat x_0$ turns into the requested object
#
# The model's guess of the clean image over the steps, and — in the toy world — the judge's verdict on
# that guess at the same steps: which colour fills the box, and how much of it.

# %%
picked = recorder.steps[::6] + recorder.steps[-1:]
viz.step_strip(recorder, field="pred_x0", max_steps=8)

# %%
if env.toy:
    display(Table({"step": s.label, **{f"sample {b}": f"{v.colour or '–'} {v.coverage:.0%}"
                                       for b, v in enumerate(judge(s.fields["pred_x0"].float(), ex.mask))}}
                  for s in picked))

# %% [markdown]
# ## Where the gradient works
#
# $\lVert g\rVert$ per pixel (over the colour channels) for sample 0, **on one colour scale for all
# steps**, with the share of $\sum\lVert g\rVert$ that falls inside the mask.

# %%
maps = [viz.grad_magnitude(s.fields["grad"][0]) for s in picked]
inside = [float((m * ex.mask[0, 0].numpy()).sum() / max(m.sum(), 1e-12)) for m in maps]
viz.gradient_maps([s.fields["grad"][0] for s in picked],  # one colour scale and its bar by default
                  titles=[f"{s.label}\n{share:.0%} inside" for s, share in zip(picked, inside)],
                  suptitle=f"|g| of sample 0 on one scale (the mask is {float(ex.mask.mean()):.0%} of the image)")

# %% [markdown]
# On one scale the first steps dominate: while $x_t$ is nearly pure noise the UNet's $\hat x_0$ reacts
# strongly to it, and the gradient through the UNet is large and spread over much of the image. As $t$
# falls it shrinks and gathers inside the mask — CLIP sees only the masked image — where the object is
# being drawn. What leaks past the border is harmless: the blend replaces the outside anyway. To see
# *where* the later, smaller gradients act, `viz.step_strip(..., field="grad")` scales every panel to its
# own maximum — compare patterns there, not brightness:

# %%
viz.step_strip(recorder, field="grad", max_steps=6)

# %% [markdown]
# The loss terms the recorder kept are sums over the batch (the equation above); `viz.loss_curves` divides
# them by the batch and draws per-sample means (`per_sample=False` draws the sums, labelled as such):

# %%
viz.loss_curves(recorder, log=True, title="unweighted loss terms per sample")

# %% [markdown]
# ## Guided vs unguided, from the same seed
#
# With an empty prompt there is no guidance ($g = 0$): the model just fills the hole in a way that fits
# the background. The seed is the same, so both runs draw the same noise; the difference between the
# rows is the CLIP gradient alone.

# %%
unguided_recorder = bl.Recorder(fields=("pred_x0",))
unguided = bl.BlendedSampler(env.load_models(), ex.image, ex.mask, cfg.replace(prompt="")).run(hooks=[unguided_recorder])
viz.step_strip({"guided": recorder, 'unguided (prompt "")': unguided_recorder}, field="pred_x0", max_steps=8)

# %% [markdown]
# ## Without blending: the background drifts
#
# `local_clip_guided_diffusion=True` keeps the CLIP loss on the masked region but skips step 5: the model
# denoises the whole image on its own, and nothing holds the outside of the mask to the input. The drift
# of $\hat x_0$ at every step is its mean squared difference to the input outside the mask.

# %%
local_recorder = bl.Recorder(fields=("pred_x0",))
local_images = bl.BlendedSampler(env.load_models(), ex.image, ex.mask, cfg.replace(local_clip_guided_diffusion=True)).run(
    hooks=[local_recorder])
drift = {name: [float(viz.background_drift(s.fields["pred_x0"], ex.image, ex.mask).mean()) for s in rec.steps]
         for name, rec in (("blended", recorder), ("local, no blending", local_recorder))}
viz.loss_curves(drift, title=r"background drift of $\hat x_0$ (mean of the batch)", ylabel="MSE outside the mask")

# %%
viz.image_grid([ex.image[0], guided[0], unguided[0], local_images[0]],
               titles=["input", "guided + blended", "unguided", "guided, no blending"])

# %% [markdown]
# ## Scrub through the recording
#
# Drag the slider (or press play) to walk through the steps; pick the tensor to show and the sample.

# %%
StepScrubber(recorder, init_image=ex.image)

# %% [markdown]
# ## Changing the loop yourself
#
# - **a hook** — any function `hook(state)` passed in `hooks=[...]`, called after every step. It may just
#   look (return `None`), or change the state: the next step starts from `state.x_prev` as it leaves it.
# - **your own loop** over `sampler.steps()`, which can also change the sampler between steps. The
#   guidance is `sampler.loss`; setting it to `None` turns guidance off from the next step on.
#
# Below: guidance only for the first half of the steps, and a hook that watches the gradient's size.

# %%
gradient_sizes = []

def watch_gradient(state):
    gradient_sizes.append(float(state.grad.norm()))  # looks only: returns None

half = bl.BlendedSampler(env.load_models(), ex.image, ex.mask, cfg)
for state in half.steps(hooks=[watch_gradient]):
    if state.index + 1 == state.num_steps // 2:
        half.loss = None  # no guidance from the next step on
half_images = half.final_images(state)
print("‖g‖ over the batch, every 3rd step:", [f"{g:.3g}" for g in gradient_sizes[::3]])
viz.image_grid([guided[0], half_images[0], unguided[0]],
               titles=["guided throughout", "guided for the first half", "unguided"])

# %%
if env.tiny:
    print("Tiny mode: random weights, so x̂0 never looks like anything and the results are noise-like inside "
          "the mask. Check the mechanics: zero gradient after the switch, the same background everywhere, "
          "the drift without blending.")

# %% [markdown]
# ## Exercise 1 · switch the range loss off
#
# **Predict:** with `range_lambda=0` nothing keeps $\hat x_0$ inside $[-1, 1]$ but the model itself. How far
# outside will the largest $|\hat x_0|$ go — a little, or many times the range?
# **Change** `range_lambda`, **run**, **check** the largest $|\hat x_0|$ per step against the guided run's.

# %%
no_range = bl.Recorder(fields=("pred_x0",))
bl.edit(env.load_models(), ex.image, ex.mask, cfg.replace(range_lambda=0, batch_size=2), hooks=[no_range], progress=False)
print("max |x̂0|, range loss on: ", [round(float(s.fields["pred_x0"].abs().max()), 1) for s in recorder.steps[::4]])
print("max |x̂0|, range loss off:", [round(float(s.fields["pred_x0"].abs().max()), 1) for s in no_range.steps[::4]])

# %% [markdown]
# <details><summary>Answer</summary>
#
# Many times the range. The CLIP gradient is large ($\lambda_{\mathrm{clip}} = 1000$) and CLIP is happy with
# very saturated colours, so without the range loss $\hat x_0$ overshoots far beyond $[-1, 1]$ and stays
# there (in the toy world often 10 or more). The images are clamped when saved, so the overshoot
# shows as flat, burnt colour; the range loss keeps the guess a picture the UNet can keep denoising.
#
# </details>

# %% [markdown]
# ## Exercise 2 · cosine or spherical distance?
#
# **Predict:** rank four prompts by how well they match the edited region, once by the code's spherical
# distance $D = \theta^2/2$ and once by the paper's cosine distance $1-\cos\theta$. Same order?
# **Change** the prompts (any four), **run**, **check**.

# %%
prompts = ["a red circle", "a blue square", "a green triangle", "a yellow circle"]  # <- change these
clip = env.load_models().clip
image_embed = encode_images(clip, guided[:1], mask=ex.mask)  # the masked region, as the ranking sees it
text_embeds = encode_text(clip, prompts)
spherical, cosine = spherical_distance(text_embeds, image_embed), 1 - F.cosine_similarity(text_embeds, image_embed)
Table({"prompt": p, "spherical D": float(s), "cosine 1−cos": float(c)} for p, s, c in zip(prompts, spherical, cosine))

# %% [markdown]
# <details><summary>Answer</summary>
#
# The same order, always: $D = \theta^2/2$ and $1-\cos\theta$ both grow with the angle $\theta$ between the
# embeddings. The numbers differ — for small angles $D \approx 1-\cos\theta$, and $D$ grows faster as the
# angle widens — so the *gradients* differ in scale, which the weight $\lambda_{\mathrm{clip}}$ absorbs.
#
# </details>

# %% [markdown]
# ## What to remember
#
# - Guidance adds $\Sigma_t\, g$ to the posterior mean: the Gaussian times a linearised $p(y\mid x)$ is a
#   Gaussian again. Blended Diffusion's $g = -\nabla_{x_t} L$, with $L$ the spherical CLIP distance on
#   $x_{\mathrm{in}}$ and the range loss, summed over the batch.
# - The colour of the requested object appears in $\hat x_0$ while $t$ is high; the gradient works inside the
#   mask. Without guidance the hole is filled to fit; without blending the background drifts.
# - Hooks observe or change each step; a loop over `steps()` can change the sampler itself.
