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
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/blendlab/blendlab/blob/main/notebooks/09_baseline_background_loss.ipynb)
#
# # 9 · The baseline: keep the background with a loss
#
# Before blending, the paper (Sec. 4.1) tries the direct route: **local CLIP-guided diffusion** — guide
# the diffusion of the whole image with the CLIP loss on the masked region only — plus a
# **background-preservation loss** that punishes any change outside the mask:
#
# $$L = \lambda_{\mathrm{clip}} D_{\mathrm{CLIP}}(x_{\mathrm{in}}\odot m) + \lambda_{\mathrm{range}} L_{\mathrm{range}}
#   + \lambda_{L2}\, \operatorname{mean}\big((x_{\mathrm{in}}\odot(1-m) - x_0)^2\big)
#   + \lambda_{\mathrm{LPIPS}}\, \mathrm{LPIPS}\big(x_{\mathrm{in}}\odot(1-m),\ x_0\big)$$
#
# (lesson 04 defines $x_{\mathrm{in}}$, $D$ and the range loss; as in the authors' code the masked-out
# $x_{\mathrm{in}}$ is compared with the whole input). **LPIPS** (Zhang et al., 2018) is a learned
# perceptual distance: both images go through a fixed deep network (VGG here), each layer's feature
# maps are normalised per position, their squared difference is weighted per channel and averaged over
# positions, and the layers' values are summed; 0 means the same image, larger means less alike.
#
# Nothing forces the outside to stay; the loss only pulls it back, and it pulls against the CLIP loss. The paper reports a trade-off: too weak and the
# background drifts, too strong and the edit suffers — which is why it blends instead. This lesson
# measures the baseline in the toy world, next to the one-paste shortcut of lesson 02 and Blended
# Diffusion itself, and reads what the numbers do and do not show.
#
# On a CPU it runs in the toy world (models trained on this project's machines on 32 px scenes of
# coloured shapes; not the paper's results), where the judge checks the edit inside the mask.

# %%
import importlib.util, os, subprocess, sys  # a fresh runtime (e.g. Colab) installs blendlab from $BLENDLAB_SOURCE
source = os.environ.get("BLENDLAB_SOURCE", "git+https://github.com/blendlab/blendlab")  # or your fork (git+https://...) or a local path
if importlib.util.find_spec("blendlab") is None and subprocess.run([sys.executable, "-m", "pip", "install", "-q", source]).returncode:
    sys.exit(f"blendlab could not be installed from {source} (pip says why above); to install your own copy, set BLENDLAB_SOURCE to your fork's git+https URL or a local path (e.g. %env BLENDLAB_SOURCE=/content/blendlab) and run this cell again.")
from blendlab.notebook import setup; env = setup()

# %% [markdown]
# ## The weights, scaled to the image size
#
# The paper's weights are $\lambda_{L2} = 10000$ and $\lambda_{\mathrm{LPIPS}} = 1000$, set for 256 px. Both
# losses are *means* over the image (L2 over its pixels, LPIPS over its feature maps), so the gradient each
# pixel receives is about $\lambda / (H W)$: at 32 px it is $64\times$ larger than at 256 px for the same
# $\lambda$. With the paper's weights a 32 px run overshoots at every step and diverges (the values explode
# to NaN). So we scale both weights by $(\text{size}/256)^2$ — $1/64$ in the toy world, 1 for the paper's
# model — and then try two strengths, $1\times$ and $3\times$ that. In the toy world (and tiny mode) LPIPS runs on a
# randomly initialised VGG, so nothing is downloaded: a distance between random deep features, not the
# published LPIPS; with the real model it is the published one.

# %%
from IPython.display import display

import blendlab as bl
from blendlab import viz
from blendlab.lessons import check, predict
from blendlab.toyworld.judge import judge
from blendlab.toyworld.measured import claims_source, claims_table
from blendlab.table import Table

models = env.load_models()
ex = env.example("insert")  # a toy scene with an empty box, or the photo
# two samples per run (the paper draws 8 batches of 4): the LPIPS network makes every baseline step
# dearer. A short schedule for a CPU: 40 respaced steps, 10 skipped (the paper: 100 and 25)
cfg = env.config(prompt=ex.prompt, timestep_respacing="40", skip_timesteps=10, batch_size=2)
scale = min(1.0, (models.image_size / 256) ** 2)
print(f"image size {models.image_size}: λ_L2 = {cfg.l2_sim_lambda:g} × {scale:g} = {cfg.l2_sim_lambda * scale:g}, "
      f"λ_LPIPS = {cfg.lpips_sim_lambda:g} × {scale:g} = {cfg.lpips_sim_lambda * scale:g}")


def baseline(strength, c=cfg):
    """The paper's Sec. 4.1 baseline: local guidance, no blend, the background loss at strength × the scaled λ."""
    return c.replace(local_clip_guided_diffusion=True, background_preservation_loss=True,
                     l2_sim_lambda=c.l2_sim_lambda * scale * strength,
                     lpips_sim_lambda=c.lpips_sim_lambda * scale * strength)


# %% [markdown]
# ## Five results, one seed
#
# The same scene, prompt and seed: Blended Diffusion; local guidance with no background loss, as it comes
# out and with the input pasted back at the end (the shortcut of lesson 02); and the baseline at $1\times$
# and $3\times$ the scaled weights (local mode never pastes: its result is the last $\hat x_0$).

# %%
runs = {"Blended Diffusion": bl.edit(models, ex.image, ex.mask, cfg, progress=False)}
local = bl.edit(models, ex.image, ex.mask, cfg.replace(local_clip_guided_diffusion=True), progress=False)
runs["local, no background loss"] = local
runs["local + paste at the end"] = viz.paste_background(local.images, ex.image, ex.mask)
for strength in (1, 3):
    runs[f"baseline, λ × {strength:g}"] = bl.edit(models, ex.image, ex.mask, baseline(strength), progress=False)
images = {name: getattr(r, "images", r) for name, r in runs.items()}

# %% [markdown]
# Two numbers per run: inside the mask, how many samples the judge finds right (the prompt's colour,
# and colour and shape); outside it, the mean $|\Delta|$ from the input, in $[0, 1]$ units of the picture
# as drawn (0 = the input exactly), for each sample. With two samples a run, the spread between its own
# two samples is the size of the noise: a difference between runs smaller than that says nothing.

# %%
colour, shape = ex.prompt.split()[-2:] if env.toy else (None, None)
keep = 1 - ex.mask


def outside_per_sample(x):
    return ((x.clamp(-1, 1) - ex.image).abs() / 2 * keep).sum(dim=(1, 2, 3)) / (keep.sum() * 3)


def outside_change(x):
    return float(outside_per_sample(x).mean())


def judged(x):
    v = judge(x, ex.mask)
    return {"judge: colour": f"{sum(u.holds(colour) for u in v)}/{len(x)}",
            "judge: colour + shape": f"{sum(u.holds(colour, shape) for u in v)}/{len(x)}"}


Table({"run": name, **(judged(x) if env.toy else {}),
       "mean |Δ| outside": outside_change(x),
       "per sample": ", ".join(f"{float(d):.2f}" for d in outside_per_sample(x)),
       "seam": float(viz.seam_strength(x.clamp(-1, 1), ex.mask).mean())}
      for name, x in images.items())

# %%
viz.image_grid([ex.image[0]] + [x[0] for x in images.values()],
               titles=["input"] + [name.replace(", ", "\n") for name in images], panel=2.1)

# %% [markdown]
# The grid shows sample 0 of each run. The benchmark `benchmarks/toyworld_eval.py` (claim 2) ran the
# same modes with 8 samples each and the paper's schedule (100 steps, 25 skipped), the baseline at 0.3×,
# 1× and 3× the size-equivalent λ and at the paper's raw λ, with the shipped toy weights ("red circle
# %": the judge's verdict inside the mask, out of 8):

# %%
print(claims_source())
claims_table("background")

# %% [markdown]
# **Reading the table.** Blended Diffusion changes nothing outside the mask (0, by construction) and
# draws the object every time. The shortcut is 0 outside too — it pasted the input back — but its
# border is the seam of lesson 02, and without the paste the whole scene is lost. The baseline does
# *not* show the paper's "too strong and the edit suffers" here: from 0.3× to 3× the outside change
# falls (about a third of the way back to the input at 3×) *and* the red circles rise — a loss that
# holds the scene in place seems to help the toy UNet draw a clean circle. (Eight samples a mode make
# a rate a coarse step of 12.5 points; the fall of the outside change is the firmer trend.) Where
# strength does break the baseline is further up: at the paper's raw λ, 64× the size-equivalent one at
# 32 px, the run diverges (Exercise 1). So in the toy world the trade-off is between a background that
# still drifts and a run that explodes — there is no λ at which the baseline keeps the background,
# while blending keeps it exactly *and* draws the object, because it never asks the model to
# *remember* the background: it hands it back every step.
#
# The live two-sample rows above need not follow the table: each holds two samples, with 40 steps, and
# the two samples of one run differ by more than the 1× and 3× means do (the "per sample" column). They
# show the kind of result, not the trend. (In the toy world the LPIPS network is randomly initialised
# once per session, so these rows also move a little from one session to the next.)

# %%
if env.tiny:
    print("Tiny mode: random weights, so the judge's numbers are noise; the measurements and the λ scaling are "
          "the same code the trained models use.")

# %% [markdown]
# ## Exercise 1 · the paper's weights at 32 px
#
# Run the baseline with the paper's weights unscaled: strength `1 / scale` times the scaled ones in the
# toy world. **Predict** below what happens to the background; **Change** the marked line, **run**, and
# **check** the largest value of the result and the outside change.

# %%
fate = predict("With the paper's unscaled λ, the background is …",
               ["kept better than at 1×", "about as at 1×", "lost: the run blows up"])

# %%
strength = 1   # <- change to: strength = 1 / scale
try:
    unscaled = bl.edit(models, ex.image, ex.mask, baseline(strength), progress=False)
    drift = outside_change(unscaled.images)
    print(f"strength {strength:g}: finished, largest |value| {float(unscaled.images.abs().max()):.3g}, "
          f"mean |Δ| outside {drift:.3f} (the 1× run above: {outside_change(images['baseline, λ × 1']):.3f})")
    outcome = "kept better than at 1×" if drift < outside_change(images["baseline, λ × 1"]) - 0.05 else "about as at 1×"
    picture, title = unscaled.images, f"strength {strength:g}"
except bl.NonFiniteError as err:  # blendlab stops a run at its first NaN/Inf and says where and why
    print(err)
    x0 = err.state.pred_x0.nan_to_num(0)
    print(f"largest |x̂0| at that step: {float(x0.abs().max()):.3g} (an image lies in [-1, 1])")
    outcome = "lost: the run blows up"
    picture, title = x0.clamp(-1, 1), f"x̂0 at {viz.step_label(err.step, err.num_steps, err.t)}"
display(viz.image_grid(picture, titles=[f"{title} #{k}" for k in range(len(picture))]))
check(fate, outcome)

# %% [markdown]
# <details><summary>Answer</summary>
#
# As shipped (strength 1) the cell repeats the 1× baseline — same seed, same numbers, the same
# kind: a drifted background. With the paper's λ it blows up in the toy world: within about ten steps x̂0
# leaves $[-1, 1]$ by orders of magnitude, a loss term becomes infinite and blendlab stops the run with a
# `NonFiniteError` naming the step, its t and the term; the last x̂0, clamped, is burnt: flat saturated colour, noise in the mask. Each step
# adds $\Sigma_t\, g$ with $g \propto \lambda/(HW)$ per pixel, 64 times the step the paper's weights make
# at 256 px, and the step overshoots the input instead of approaching it, more at every step. With the
# paper's model (`scale` = 1) the same line runs the paper's setting.
#
# </details>

# %% [markdown]
# ## Exercise 2 · the baseline without a prompt
#
# Run the baseline with an empty prompt. There is nothing to draw, so only the background loss is left
# to act — will the outside now stay close to the input? **Predict** below, **Change** the marked line,
# **run**, and **check** the outside change and `cfg.guided`.

# %%
stays = predict("With no prompt, the outside ends …", ["close to the input (mean |Δ| under 0.05)",
                                                        "far from it (mean |Δ| over 0.05)"])

# %%
prompt = ex.prompt   # <- change to: prompt = ""
empty = baseline(1, cfg.replace(prompt=prompt, clip_guidance_lambda=cfg.clip_guidance_lambda if prompt else 0))
free = bl.edit(models, ex.image, ex.mask, empty, progress=False)  # (λ_clip 0 with no prompt: unguided is meant)
print(f"prompt {prompt!r} · guided: {empty.guided}; mean |Δ| outside {outside_change(free.images):.3f} "
      f"(the 1× baseline with the prompt: {outside_change(images['baseline, λ × 1']):.3f}, "
      f"no loss: {outside_change(local.images):.3f})")
display(viz.image_grid(free.images, titles=[f"prompt {prompt!r} #{k}" for k in range(len(free.images))]))
check(stays, "close to the input (mean |Δ| under 0.05)" if outside_change(free.images) < 0.05
      else "far from it (mean |Δ| over 0.05)")

# %% [markdown]
# <details><summary>Answer</summary>
#
# Far, both ways. As shipped, the cell repeats the 1× baseline (same seed, same numbers). With an empty
# prompt the outside ends about as far from the input: the reference skips the whole guidance function
# when there is no prompt (its gradient is zero), background loss included, and blendlab does the same
# (`cfg.guided` is False). Local mode then denoises the whole image freely from the noised input, and
# the outside becomes whatever the model makes of it. In Blended Diffusion the same empty prompt keeps
# the background exactly (lesson 01, Exercise 2), because the blend is not part of the guidance.
#
# </details>

# %% [markdown]
# ## What to remember
#
# - The paper's baseline (Sec. 4.1) is local CLIP-guided diffusion **plus** an L2 + LPIPS loss on the
#   background — not "paste the input back at the end".
# - A loss can only pull the background back: in the toy world a stronger loss drifts less (and edits no
#   worse) up to 3×, never reaches the input, and the paper's raw weights at 32 px overshoot and explode.
#   Mean-reduced losses make the right weight depend on the image size: scale by $(\text{size}/256)^2$.
# - Blending replaces the background at every step, so it needs no weight and keeps it exactly.
