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
# An unconditional DDPM samples $x_{t-1} \sim p_\theta(x_{t-1}\mid x_t) = \mathcal N(\mu, \Sigma)$ (the UNet's
# $\mu_\theta(x_t)$ and learned $\Sigma_t$ of lesson 03; defined again below). To
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
from blendlab.embeddings import encode_images, encode_text, spherical_distance
from blendlab.toyworld.judge import judge
from blendlab.table import Table
from blendlab.lessons import check, predict
from blendlab.widgets import StepScrubber, SweepSlider

ex = env.example("insert")  # a toy scene with an empty box, or the photo
cfg = env.config(prompt=ex.prompt, timestep_respacing="40", skip_timesteps=10)  # short schedule (paper: 100, 25)
sampler = bl.BlendedSampler(env.load_models(), ex.image, ex.mask, cfg)
viz.mask_overlay(ex.image, ex.mask, title=f'"{ex.prompt}"')

# %% [markdown]
# ## One reverse step
#
# The pieces are the ones you built in lesson 03: $\hat x_0 = \big(x_t - \sqrt{1-\bar\alpha_t}\,\hat\varepsilon\big)/\sqrt{\bar\alpha_t}$,
# the clean image the UNet believes in; $\mu_\theta(x_t)$, the mean of the **posterior**
# $q(x_{t-1}\mid x_t, \hat x_0)$ (the next step's distribution once the clean image is known); and
# $\Sigma_t$, its variance, *learned* by the UNet between $\beta_t$ and $\tilde\beta_t$. "$t-1$" is the next
# **kept** step of the respaced schedule (743 → 717 here), not the timestep one below. For each step the
# sampler does (Algorithm 1 of the paper):
#
# 1. one UNet pass gives $\hat x_0$, $\mu_\theta(x_t)$ and $\Sigma_t$;
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
# ## Where the gradient works, and how big a step it takes
#
# Two different things are called "the gradient". The recorder keeps $g = -\nabla_{x_t} L$ (`state.grad`),
# what the loss asks for; the step the sampler *takes* is $\Sigma_t\, g$, scaled by the learned variance.
# First $\lVert g\rVert$ per pixel (over the colour channels) for sample 0, **on one colour scale for all
# steps**, with the share of $\sum\lVert g\rVert$ that falls inside the mask:

# %%
import torch

maps = [viz.grad_magnitude(s.fields["grad"][0].float()) for s in picked]
inside = [float((m * ex.mask[0, 0].numpy()).sum() / max(m.sum(), 1e-12)) for m in maps]
viz.gradient_maps([s.fields["grad"][0].float() for s in picked],  # one colour scale and its bar by default
                  titles=[f"{s.label}\n{share:.0%} inside" for s, share in zip(picked, inside)],
                  suptitle=f"g (what the loss asks), sample 0, one scale (the mask is {float(ex.mask.mean()):.0%} of the image)")

# %% [markdown]
# $g$ does **not** shrink as $t$ falls: it is large at the first step (spread over the whole image, because
# $\hat x_0$ of almost pure noise reacts to every pixel), small in the middle, and its per-pixel peak grows
# again toward the end, inside the mask — CLIP sees only the masked image. What moves $x_{t-1}$ is
# $\Sigma_t\, g$. $\Sigma_t$ is not recorded, so the next cell asks the UNet for it again at the same $x_t$
# (`diffusion.p_mean_variance`, one pass per step shown) and draws $\Sigma_t\, g$ on one scale:

# %%
def applied(s):
    """Σ_t·g of sample 0 at a recorded step: the shift of the mean the sampler really took."""
    with torch.no_grad():
        out = sampler.diffusion.p_mean_variance(sampler.models.denoiser, s.fields["x_t"][:1].float(),
                                                torch.tensor([s.respaced_index]), clip_denoised=False)
    return out["variance"][0] * s.fields["grad"][0].float()

shifts = [applied(s) for s in picked]
for s, m, shift in zip(picked, maps, shifts):
    print(f"{s.label:>18}: peak |g| {m.max():6.3g}   peak |Σ_t·g| {viz.grad_magnitude(shift).max():.3g}")
viz.gradient_maps(shifts, titles=[s.label for s in picked],
                  suptitle="Σ_t·g (the step taken), sample 0, one scale")

# %% [markdown]
# The step taken **does** shrink as $t$ falls, with a bump in the middle (the printed peaks): $\Sigma_t$
# falls faster than $g$'s peak grows, so at the last step, where $g$ is largest, $\Sigma_t\, g$ is about a
# thousandth of the first step's. The late gradients barely move the image — the object is decided in the
# early steps, and the last ones only refine it. What leaks past the border is
# harmless: the blend replaces the outside anyway. To see *where* each step's $g$ acts,
# `viz.step_strip(..., field="grad")` scales every panel to its own maximum — compare patterns there,
# not brightness:

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
# ## Guidance strength: $\lambda_{\mathrm{clip}}$ from 0 to beyond the paper's 1000
#
# $\lambda_{\mathrm{clip}}$ scales $g$, so it scales the step $\Sigma_t\, g$. Five edits from the same seed,
# from no guidance to three times the paper's value, each with 2 samples on a shorter schedule (20 respaced
# steps, 5 skipped) so the sweep takes a few seconds per value. They keep the last $\hat x_0$ everywhere
# (`enforce_background=False`): the final paste would make the outside exactly the input at every
# $\lambda$, and here you see what the blend alone keeps. The background change is the mean squared
# difference to the input outside the mask, in $[0, 1]$ units.

# %%
LAMBDAS = (0, 100, 300, 1000, 3000)
sweep_cfg = cfg.replace(timestep_respacing="20", skip_timesteps=5, batch_size=2, enforce_background=False)
swept = {lam: bl.edit(sampler.models, ex.image, ex.mask, sweep_cfg.replace(clip_guidance_lambda=lam),
                      progress=False).images for lam in LAMBDAS}
said = {lam: [f"{v.colour or 'nothing'} {v.shape or ''}".strip() for v in judge(images, ex.mask)] if env.toy
        else ["–"] * len(images) for lam, images in swept.items()}
display(Table({"λ_clip": lam, **{f"judge #{b}": said[lam][b] for b in range(2)},
               **{f"bg change #{b}": float(d) for b, d in enumerate(viz.background_drift(swept[lam], ex.image, ex.mask))}}
              for lam in LAMBDAS))
viz.setting_sweep(swept, ex.image, ex.mask, said, sample=0, setting="λ_clip")

# %% [markdown]
# Read the table and the figure together. With $\lambda = 0$ nothing asks for the object: the box is
# filled to fit the sand, or the model invents something of its own (a sample may hold a shape in a colour
# nobody asked for). A small push is already enough for the colour in this toy world; the paper's 1000
# drives the colour harder, and at three times that the push overshoots: washed-out, burnt colour and
# shapes or colours the prompt did not ask for. The bottom row shows the change confined to the box. The
# background change is the same at every $\lambda$ — the faint grain outside is the last blended
# background's noise, passed through (lesson 03), not the guidance: the blend, not a weak push, keeps the
# outside. Drag the slider to flip through the same precomputed results:

# %%
SweepSlider(swept, ex.image, ex.mask, said, setting="λ_clip")

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
print({name: f"largest {max(v):.3g} at step {v.index(max(v))}, last {v[-1]:.2g}" for name, v in drift.items()})
viz.loss_curves(drift, log=True, title=r"background drift of $\hat x_0$ (mean of the batch, log axis)",
                ylabel="MSE outside the mask")

# %% [markdown]
# On the log axis both runs are readable: both jump at step 1 (the first $\hat x_0$ from nearly pure noise),
# then the blended run's drift falls steadily by two orders of magnitude, while without blending it levels
# off far above — the model has drawn a background of its own (the printed last values).

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
inside_mask = ex.mask.bool().expand_as(guided)
per_sample = [float((guided[b] - half_images[b]).abs()[inside_mask[b]].mean()) for b in range(len(guided))]
print("mean |guided − half-guided| inside the mask, per sample:", [f"{d:.3f}" for d in per_sample], "(range: 2)")
if env.toy:
    print("judge, guided throughout: ", [f"{v.colour} {v.shape}" for v in judge(guided, ex.mask)])
    print("judge, guided first half: ", [f"{v.colour} {v.shape}" for v in judge(half_images, ex.mask)])
viz.image_grid([guided[0], half_images[0], unguided[0]],
               titles=["guided throughout", "guided for the first half", "unguided"])

# %% [markdown]
# Sample 0 looks the same either way: the first half of the steps already decided its object. After the
# switch $g = 0$ (the printed norms), and with guidance kept on $\Sigma_t\, g$ would be small there anyway
# (the maps above). The printed numbers are the honest part: the results are close, not identical, and a
# sample whose object was still weak at the switch can end differently (compare the judge's two rows).
# Guidance matters most at high $t$, where the layout is still open.

# %%
if env.tiny:
    print("Tiny mode: random weights, so x̂0 never looks like anything and the results are noise-like inside "
          "the mask. Check the mechanics: zero gradient after the switch, the same background everywhere, "
          "the drift without blending.")

# %% [markdown]
# ## Exercise 1 · switch the range loss off
#
# **Predict** below: with `range_lambda=0` nothing keeps $\hat x_0$ inside $[-1, 1]$ but the model itself.
# What will the largest $|\hat x_0|$ of the *last* step be (the image range ends at 1)?
# **Change** the marked line to `trial_cfg = cfg.replace(range_lambda=0)`, **run**, and **check**. The run
# uses the lesson's seed and batch, so it draws the same noise as the guided run above; the only
# difference is the range loss.

# %%
last_peak = predict("Largest |x̂0| at the last step with range_lambda=0", number=True)

# %%
trial_cfg = cfg  # <- change to: trial_cfg = cfg.replace(range_lambda=0)
trial = bl.Recorder(fields=("pred_x0",))
bl.edit(sampler.models, ex.image, ex.mask, trial_cfg, hooks=[trial], progress=False)
peaks = {name: [float(s.fields["pred_x0"].float().abs().max()) for s in rec.steps] for name, rec in
         (("guided run above (range loss on)", recorder), (f"this run (range_lambda={trial_cfg.range_lambda:g})", trial))}
for name, v in peaks.items():
    print(f"max |x̂0| at every step, {name}:\n ", [round(x, 1) for x in v],
          f"\n  largest {max(v):.1f} (step {v.index(max(v))}), last {v[-1]:.2f}")
check(last_peak, peaks[f"this run (range_lambda={trial_cfg.range_lambda:g})"][-1])

# %% [markdown]
# <details><summary>Answer</summary>
#
# As shipped the cell repeats the guided run (same seed, same batch of 4), and the two rows agree:
# $|\hat x_0|$ jumps to about 29 at step 1 (the guess from nearly pure noise, after the first guided step
# with $\lambda_{\mathrm{clip}} = 1000$), the range loss pulls it down to about 6 at the very next step, and
# it ends at about 1.1, just outside the range. With `range_lambda=0` the same jump happens (the range loss
# had not acted yet), but then it decays slowly — still about 24 at step 2 and about 5.7 at the last step,
# several times the image range. CLIP is happy with very saturated colours and nothing pulls them back;
# the images are clamped when saved, so the overshoot shows as flat, burnt colour.
#
# </details>

# %% [markdown]
# ## Exercise 2 · cosine or spherical distance?
#
# **Predict** below: rank four prompts by how well they match the edited region, once by the code's
# spherical distance $D = \theta^2/2$ and once by the paper's cosine distance $1-\cos\theta$. Same order?
# **Change** the marked line to other prompts (the suggested four, or any of your own), **run**, **check**.

# %%
same = predict("Do the two distances rank the prompts in the same order?", ["same order", "different order"])

# %%
prompts = ["a red circle", "a blue square", "a green triangle", "a yellow circle"]  # <- change to: prompts = ["a green circle", "a blue triangle", "a red square", "a yellow square"]
clip = sampler.models.clip
image_embed = encode_images(clip, guided[:1], mask=ex.mask)  # the masked region, as the ranking sees it
text_embeds = encode_text(clip, prompts)
spherical, cosine = spherical_distance(text_embeds, image_embed), 1 - F.cosine_similarity(text_embeds, image_embed)
display(Table({"prompt": p, "spherical D": float(s), "cosine 1−cos": float(c)} for p, s, c in zip(prompts, spherical, cosine)))
check(same, "same order" if spherical.argsort().tolist() == cosine.argsort().tolist() else "different order")

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
# - The colour of the requested object appears in $\hat x_0$ while $t$ is high. $g$ gathers inside the mask
#   and its peak even grows late, but the step taken, $\Sigma_t\, g$, shrinks with $\Sigma_t$: the object is
#   decided early. $\lambda_{\mathrm{clip}}$ sets how hard it is pushed. Without guidance the hole is
#   filled to fit; without blending the background drifts.
# - Hooks observe or change each step; a loop over `steps()` can change the sampler itself.
