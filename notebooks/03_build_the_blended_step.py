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
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/blendlab/blendlab/blob/main/notebooks/03_build_the_blended_step.ipynb)
#
# # 3 · Build the blended step yourself
#
# Lessons 1 and 2 ran Blended Diffusion through `bl.edit`. Here you write its step: about fifteen lines on
# top of guided-diffusion's own functions — the reverse step, $\hat x_0$, the guidance and the **blend
# line**, the paper's one idea. A check cell then runs blendlab on the same random draws and says whether
# your step *is* Blended Diffusion, and if not, at which step and in which quantity it first differs.
# First you guide with a plain colour loss (no CLIP), then you swap in CLIP.
#
# On a CPU the lesson runs in the toy world (models trained on this project's machines on 32 px scenes of
# coloured shapes; its pictures are not the paper's results); with a GPU, on the paper's photo model.


# %%
import importlib.util, os, subprocess, sys  # a fresh runtime (e.g. Colab) installs blendlab from $BLENDLAB_SOURCE
source = os.environ.get("BLENDLAB_SOURCE", "git+https://github.com/blendlab/blendlab")  # or your fork (git+https://...) or a local path
if importlib.util.find_spec("blendlab") is None and subprocess.run([sys.executable, "-m", "pip", "install", "-q", source]).returncode:
    sys.exit(f"blendlab could not be installed from {source} (pip says why above); to install your own copy, set BLENDLAB_SOURCE to your fork's git+https URL or a local path (e.g. %env BLENDLAB_SOURCE=/content/blendlab) and run this cell again.")
from blendlab.notebook import setup; env = setup()

# %%
import torch

import blendlab as bl
from blendlab import viz
from blendlab.guidance import GuidanceLoss
from blendlab.embeddings import encode_text
from blendlab.lessons import check, predict
from blendlab.models import create_diffusion
from blendlab.step_check import compare_steps, library_draws
from blendlab.toyworld.judge import judge

models = env.load_models()
ex = env.example("insert")              # a scene with an empty box (the photo on a GPU)
dev = models.device
x0, mask = ex.image.to(dev), ex.mask.to(dev)   # x0: (1, 3, H, W) in [-1, 1]; mask: (1, 1, H, W), 1 = edit
cfg = env.config(prompt=ex.prompt, timestep_respacing="20", skip_timesteps=5, batch_size=2, seed=0)
diffusion = create_diffusion(models, cfg.timestep_respacing)  # guided-diffusion's SpacedDiffusion
steps = list(range(diffusion.num_timesteps - cfg.skip_timesteps))[::-1]   # respaced indices, high to low
print(f"{len(steps)} steps; the first is t={int(diffusion.timestep_map[steps[0]])}, "
      f"the next t={int(diffusion.timestep_map[steps[1]])}")

# %% [markdown]
# ## What one reverse step gives you
#
# Twenty respaced steps keep 20 of the schedule's 1000 timesteps; skipping 5 leaves 15. So "$x_{t-1}$"
# means *the next kept step*: from the first $t$ the cell printed, the step goes to the second, not to $t-1$.
# guided-diffusion indexes its respaced schedule by `i` = 14, 13, …, 0 and maps each `i` back to its $t$.
#
# For $x_t$, the UNet predicts the noise $\hat\varepsilon$ it contains (and, for this model, how much
# variance to keep). `diffusion.p_mean_variance` turns that into three things:
#
# - $\hat x_0 = \big(x_t - \sqrt{1-\bar\alpha_t}\,\hat\varepsilon\big)/\sqrt{\bar\alpha_t}$ — the clean image the
#   model believes in (`pred_xstart`), from $x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\varepsilon$;
# - $\mu_\theta(x_t)$ — the mean of the **posterior** $q(x_{t-1}\mid x_t, x_0)$, the distribution of the
#   next step once $x_0$ is known, with $\hat x_0$ in place of $x_0$ (`mean`);
# - $\Sigma_t$ — its variance, *learned*: the UNet picks a value between $\beta_t$ and the posterior's
#   $\tilde\beta_t$ per pixel (`variance`, `log_variance`).
#
# The unguided DDPM step samples $x_{t-1} = \mu_\theta + \Sigma_t^{1/2} z$, with $z \sim \mathcal N(0, I)$
# (no noise at the last step).

# %%
def reverse_step(x_t, i, noise):
    """Unguided: p_mean_variance's output and the proposal x_{t-1}."""
    t = torch.full((x_t.shape[0],), i, dtype=torch.long, device=x_t.device)
    out = diffusion.p_mean_variance(models.denoiser, x_t, t, clip_denoised=False)
    x_prev = out["mean"] + (i > 0) * torch.exp(0.5 * out["log_variance"]) * noise
    return out, x_prev

start, draws = library_draws(models, x0, cfg)   # the random draws blendlab's sampler would take
t_first = torch.full((cfg.batch_size,), steps[0], dtype=torch.long, device=dev)
x = diffusion.q_sample(x0.expand(cfg.batch_size, -1, -1, -1), t_first, noise=start)  # start from the input
with torch.no_grad():
    out, _ = reverse_step(x, steps[0], draws[0].noise)
viz.image_grid(torch.cat([x, out["pred_xstart"]]), titles=["x_t (sample 0)", "x_t (sample 1)",
                                                           "x̂0 (sample 0)", "x̂0 (sample 1)"])

# %% [markdown]
# At the first kept step $x_t$ is almost pure noise ($\bar\alpha_t$ is below 0.01), and $\hat x_0$ is a
# noisy wash of the scene's average colours: the model's best guess so far, which sharpens step by step.
# Guidance works on that guess.
#
# ## Guidance with a colour loss
#
# Classifier guidance (Sohl-Dickstein et al.; Dhariwal & Nichol) shifts the mean along the gradient of a
# loss on the step's input: with $g = -\nabla_{x_t} L(\hat x_0)$,
#
# $$x_{t-1}^{\text{fg}} \sim \mathcal N\big(\mu_\theta(x_t) + \Sigma_t\, g,\ \Sigma_t\big).$$
#
# Before CLIP, a loss anyone can read: the **mean colour inside the mask** should be red,
# $L = \lambda\,\lVert \operatorname{mean}_{m}(\hat x_0) - \text{red} \rVert^2$. The loss takes the
# arguments blendlab's own `GuidanceLoss` takes, so the library can run it too.

# %%
RED = torch.tensor([1.0, -1.0, -1.0], device=dev).view(1, 3)   # red in [-1, 1]
LAMBDA = 100.0

def colour_loss(x_t, pred_x0, fac, seed=None, mask=mask, aug_num=None):
    """λ ‖mean colour of x̂0 in the mask − red‖², summed over the batch."""
    mean_colour = (pred_x0 * mask).sum((2, 3)) / mask.sum((2, 3))          # (B, 3)
    total = LAMBDA * ((mean_colour - RED) ** 2).sum()
    return total, {"colour": total.detach()}

# %% [markdown]
# ## The blend line
#
# Now the paper's idea. Outside the mask, throw the proposal away and put the **input noised to this
# step's level** there, $x^{\text{bg}} = q\_\text{sample}(x_0, t)$ — one step noisier than the $x_{t-1}$ it
# joins, as the authors' code does — so the next step sees a background that is the input's, at the noise
# level it expects:
#
# $$x_{t-1} = x_{t-1}^{\text{fg}} \odot m + x^{\text{bg}} \odot (1 - m).$$
#
# Your whole step:

# %%
def my_step(x_t, i, draws, loss=colour_loss):
    t = torch.full((x_t.shape[0],), i, dtype=torch.long, device=x_t.device)
    x_t = x_t.detach().requires_grad_()
    out = diffusion.p_mean_variance(models.denoiser, x_t, t, clip_denoised=False)       # x̂0, μ, Σ
    fac = float(diffusion.sqrt_one_minus_alphas_cumprod[i])                           # (CLIP's input mix)
    total, _ = loss(x_t, out["pred_xstart"], fac, seed=draws.seed, mask=mask)
    g = -torch.autograd.grad(total, x_t)[0]                                          # g = −∇ L
    mean = out["mean"] + out["variance"] * g                                          # μ + Σ g
    fg = mean + (i > 0) * torch.exp(0.5 * out["log_variance"]) * draws.noise          # the proposal
    bg = diffusion.q_sample(x0, torch.tensor([i], device=dev), noise=draws.bg_noise)  # the input at t
    x_prev = fg * mask + bg * (1 - mask)                                              # the blend
    return {"pred_x0": out["pred_xstart"].detach(), "fg": fg.detach(), "bg": bg.expand_as(fg), "x_prev": x_prev.detach()}

# %% [markdown]
# Run it: every step from the noised input, as `bl.edit` does.

# %%
def my_loop(step=my_step, **kw):
    """Every step from the noised input; the result is the last x̂0 with the input pasted outside."""
    x = diffusion.q_sample(x0.expand(cfg.batch_size, -1, -1, -1), t_first, noise=start)
    for k, i in enumerate(steps):
        out = step(x, i, draws[k], **kw)
        x = out["x_prev"]
    return out["pred_x0"] * mask + x0 * (1 - mask)

mine = my_loop()
print([f"{v.colour} {v.shape} ({v.coverage:.0%} of the box)" for v in judge(mine, mask)] if env.toy else "")
viz.image_grid(mine, titles=[f"your loop, colour loss: #{k}" for k in range(len(mine))])

# %% [markdown]
# ## Check: is it Blended Diffusion?
#
# `compare_steps` runs blendlab's sampler with your loss and, at every step, your step on the same $x_t$
# with the same noise; it names the first quantity that differs.

# %%
report = compare_steps(my_step, models, x0, mask, cfg, guidance=colour_loss)
print(report)

# %% [markdown]
# ## Swap in CLIP
#
# The paper's loss is CLIP's spherical distance between the prompt and augmented views of the masked
# $x_{\text{in}} = \hat x_0\cdot\sqrt{1-\bar\alpha_t} + x_t\cdot(1-\sqrt{1-\bar\alpha_t})$ (that is what `fac`
# is for), plus a range loss; blendlab's `GuidanceLoss` computes it with the same signature as yours.
# Your step does not change — only the loss you hand it. The check this time is the whole edit: your
# loop against `bl.edit` with the same seed.

# %%
clip_loss = GuidanceLoss(models, cfg, x0, mask, encode_text(models.clip, cfg.prompt))
mine_clip = my_loop(loss=clip_loss)
theirs = bl.edit(models, x0, mask, cfg.replace(iterations_num=1), progress=False).images
print(f"largest difference from bl.edit: {float((mine_clip - theirs).abs().max()):.2e}")
print([f"{v.colour} {v.shape}" for v in judge(mine_clip, mask)] if env.toy else "")
viz.image_grid(torch.cat([mine_clip, theirs]), titles=["yours #0", "yours #1", "bl.edit #0", "bl.edit #1"])

# %% [markdown]
# ## Why the blend keeps the background
#
# Run the model alone — no guidance — from the same noised input, once with the blend line and once
# without (keep the proposal everywhere: `x_prev = fg`). At $t$ near 740 almost nothing of the input is
# left in $x_t$, so without the blend the model is free to draw a scene of its own; with it, the input
# is put back outside the mask at every step. The numbers: how far the last $\hat x_0$ is from the input
# outside the mask, *before* the final paste.

# %%
def no_guidance(x_t, pred_x0, fac, seed=None, mask=None, aug_num=None):
    return (pred_x0 * 0).sum(), {}

def no_blend_step(x_t, i, draws, loss=no_guidance):
    out = my_step(x_t, i, draws, loss)
    return {**out, "x_prev": out["fg"]}      # the proposal everywhere: no blend line

def last_pred_x0(step, **kw):
    x = diffusion.q_sample(x0.expand(cfg.batch_size, -1, -1, -1), t_first, noise=start)
    for k, i in enumerate(steps):
        out = step(x, i, draws[k], **kw)
        x = out["x_prev"]
    return out["pred_x0"]

outside = (1 - mask).expand(cfg.batch_size, 3, -1, -1)
def drift(img):
    return float(((img - x0).abs() * outside).sum() / outside.sum())

with_blend, without = last_pred_x0(my_step, loss=no_guidance), last_pred_x0(no_blend_step)
print(f"mean |x̂0 − input| outside the mask: with the blend {drift(with_blend):.3f}, without {drift(without):.3f}")
viz.image_grid(torch.cat([with_blend, without]), titles=["blend #0", "blend #1", "no blend #0", "no blend #1"])

# %% [markdown]
# Without the blend the model drew scenes of its own; with it the input's shapes stayed. The grain left
# outside the mask in the blended $\hat x_0$ is the background's own noise: the last step's $x_t$ holds the
# input noised at the *previous* kept $t$ — one step noisier than the model expects at $t = 0$ — so the
# model passes it through. That is why the result pastes the input outside the mask at the end
# (`enforce_background`, as the authors' code does).

# %% [markdown]
# ## Exercise 1 · blend with the clean input
#
# **Predict** below: if the background were the clean input $x_0$ instead of $q\_\text{sample}(x_0, t)$,
# where would the check first find a difference? **Change** the marked line to `bg = x0`, **run**, and
# **check**.

# %%
where = predict("Where does the check first find a difference?",
                ["x̂0", "the guided proposal", "the noised background", "x_{t−1}", "nowhere"])

# %%
def exercise_step(x_t, i, draws, loss=colour_loss):
    out = my_step(x_t, i, draws, loss)
    bg = diffusion.q_sample(x0, torch.tensor([i], device=dev), noise=draws.bg_noise)   # <- change to: bg = x0
    x_prev = out["fg"] * mask + bg * (1 - mask)
    return {**out, "bg": bg.expand_as(out["fg"]), "x_prev": x_prev}

ex1 = compare_steps(exercise_step, models, x0, mask, cfg, guidance=colour_loss)
print(ex1)
names = {"pred_x0": "x̂0", "fg": "the guided proposal", "bg": "the noised background", "x_prev": "x_{t−1}"}
check(where, "nowhere" if ex1.ok else names[ex1.first["quantity"]])

# %% [markdown]
# <details><summary>Answer</summary>
#
# With `bg = x0` the check names the noised background, at the very first step, outside the mask only: the clean input is not what
# $q\_\text{sample}$ gives at that $t$ (inside the mask nothing changes, since the proposal is kept there).
# From then on the model sees a sharp background around a noisy hole — an image no training example
# looked like — and it has to reconcile the two at the seam. Noising the background to the step's level
# is what lets the seam heal.
#
# </details>

# %% [markdown]
# ## Exercise 2 · no guidance at all
#
# **Predict** below what share of the box the judge will call red with $\lambda = 0$ (the loss's
# gradient vanishes and only the blend is left). **Change** `LAMBDA` in the cell to `0.0`, **run**, and
# **check**.

# %%
red_share = predict("Share of the box that is red with λ = 0 (e.g. 0.1 or 10%)", number=True)

# %%
LAMBDA = 100.0   # <- change to: LAMBDA = 0.0
unguided = my_loop()
verdicts = judge(unguided, mask) if env.toy else []
share = sum(v.colour_shares["red"] for v in verdicts) / max(len(verdicts), 1)
print([f"{v.colour} {v.shape} ({v.colour_shares['red']:.0%} red)" for v in verdicts])
check(red_share, share)
shown, LAMBDA = LAMBDA, 100.0   # back to the lesson's value for the cells below
viz.image_grid(unguided, titles=[f"λ = {shown:g}: #{k}" for k in range(len(unguided))])

# %% [markdown]
# <details><summary>Answer</summary>
#
# Close to none (the cell as shipped, λ = 100, paints most of the box red). With $\lambda = 0$ the step is the unguided DDPM step plus the blend: the toy model,
# started from the noised input, redraws the empty box as empty sand, because nothing in the input
# asks for an object there. Everything red in the guided run came from the gradient $\Sigma_t g$.
#
# </details>

# %% [markdown]
# ## What to remember
#
# - One step: `p_mean_variance` gives $\hat x_0$, $\mu_\theta$ and the learned $\Sigma_t$; guidance adds
#   $\Sigma_t g$ to the mean; the DDPM sample adds $\Sigma_t^{1/2} z$.
# - The blend line $x_{t-1} = x^{\text{fg}}_{t-1}\odot m + q\_\text{sample}(x_0, t)\odot(1-m)$ is the method.
# - Any loss with `GuidanceLoss`'s signature plugs into the same step — a colour, CLIP, or your own.
