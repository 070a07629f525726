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
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/blendlab/blendlab/blob/main/notebooks/06_failure_cases.ipynb)
#
# # 6 · Failure-case lab: when CLIP reads instead of looks
#
# Blended Diffusion sees the world only through CLIP: CLIP steers every step and CLIP ranks the
# samples at the end. So CLIP's blind spots are the method's blind spots. The best known one is
# **typography**: CLIP learned from captioned web images, and written words weigh heavily in what it
# thinks a picture shows. This lab makes the failure reproducible and measurable:
#
# 1. the typographic attack: a paper label "iPod" on an apple can flip CLIP's answer;
# 2. a sweep: how large and how opaque must the word be?
# 3. the "rubber toy" experiment: guided diffusion may *write* the prompt instead of drawing it, and a
#    **text-ness** score that catches it;
# 4. a mitigation: anti-typography guidance, from the same seed;
# 5. the rankings disagree: the paper ranks only the masked region, by CLIP;
# 6. the cost: a live timing table, and progressive pruning.

# %%
import importlib.util, subprocess, sys  # a fresh runtime (e.g. Colab) installs blendlab from GitHub
if importlib.util.find_spec("blendlab") is None:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "git+https://github.com/blendlab/blendlab"], check=True)
from blendlab.notebook import setup; env = setup()

# %% [markdown]
# A still life to attack, drawn by code (no download): an apple on a table, with free space on the
# right where we will later ask for a rubber toy.

# %%
# %matplotlib inline
# (typography and ranking draw plain matplotlib figures; the line above shows them inline)
import itertools
import statistics
import time

import torch
from PIL import Image, ImageDraw

import blendlab as bl
from blendlab import ranking, viz
from blendlab import typography as ty

models = env.load_models()
size = models.image_size

still_life = Image.new("RGB", (256, 256), (222, 212, 192))                 # a pale wall
draw = ImageDraw.Draw(still_life)
draw.rectangle([0, 172, 256, 256], fill=(146, 100, 60))                     # a wooden table
draw.ellipse([34, 172, 150, 192], fill=(110, 74, 44))                       # the apple's shadow
draw.ellipse([30, 84, 102, 184], fill=(190, 28, 36))                        # the apple: two lobes
draw.ellipse([74, 84, 146, 184], fill=(190, 28, 36))
draw.ellipse([52, 104, 74, 134], fill=(232, 112, 112))                      # a highlight
draw.line([88, 90, 96, 62], fill=(84, 56, 28), width=6)                     # the stem
draw.ellipse([98, 56, 132, 74], fill=(72, 150, 52))                         # a leaf

apple = bl.load_image(still_life)              # 256 px, for CLIP (which resizes to its own input)
scene = bl.load_image(still_life, size=size)   # the diffusion model's resolution
if env.tiny:
    print("Tiny mode: CLIP has random weights, so every probability and score below is produced by the "
          "real code path but means nothing; the flips and failures this lab is about need the real "
          "CLIP (open it in Colab with a GPU runtime).")
viz.image_grid([apple[0]], titles=["the still life"], panel=3.0)

# %% [markdown]
# ## 1. The typographic attack
#
# CLIP classifies "zero-shot": each label $k$ is written into a few caption templates ("a photo of a
# {}.", "itap of a {}.", ...), the unit text embeddings of one label are averaged into $\bar e_k$,
# and the image $x$ gets the probabilities
#
# $$p(k \mid x) = \operatorname{softmax}_k\big(s \cdot \cos(E_I(x), \bar e_k)\big),$$
#
# with CLIP's learned temperature $s$ (100). Now stick a note saying "iPod" on the apple.

# %%
labels = ["apple", "iPod", "library", "pizza", "toaster"]
on_the_apple = dict(position=(0.34, 0.55), note=True)   # a yellow sticky note on the apple
attack = ty.attack_table(models.clip, apple, "iPod", labels, size=0.1, **on_the_apple)
attack

# %%
attacked = ty.render_text(apple, "iPod", size=0.1, **on_the_apple)
ty.plot_zero_shot(attack, labels, images=torch.cat([apple, attacked]))

# %% [markdown]
# With the real CLIP (ViT-B/16) expect the bare still life to be an apple, and the four letters on a
# scrap of paper to pull much of the probability to "iPod": the attack OpenAI reported when they
# studied CLIP's neurons (Goh et al., *Multimodal Neurons in Artificial Neural Networks*, Distill
# 2021). Nothing about the apple changed; a word was added. If the answer does not flip for you, the
# note is too small for this picture: the next section shows how the answer depends on it.

# %% [markdown]
# ## 2. How much text does it take?
#
# `ty.sweep` renders the same word at several sizes (a fraction of the image height) or opacities and
# classifies every version. Dashed lines are the probabilities without text.

# %%
by_size = ty.sweep(models.clip, apple, "iPod", labels, param="size", values=[0.04, 0.07, 0.1, 0.14, 0.2],
                   **on_the_apple)
ty.plot_sweep(by_size)

# %%
by_opacity = ty.sweep(models.clip, apple, "iPod", labels, param="opacity", values=[0.0, 0.2, 0.4, 0.7, 1.0],
                      size=0.1, **on_the_apple)
ty.plot_sweep(by_opacity)

# %% [markdown]
# With real CLIP expect the "iPod" curve to rise once the word becomes legible: small or faint text
# leaves "apple" on top, and somewhere in between the two curves cross. Try other positions
# (`param="position"`), a rotated note (`param="rotation"`), no note (`note=False`), or another word.

# %% [markdown]
# ## 3. The "rubber toy" experiment: text-ness
#
# Blended Diffusion asks CLIP how well the masked region matches the prompt and follows the gradient.
# Drawing the *words* of the prompt is one way to please CLIP, so an edit asked for "a rubber toy"
# may come back with something like the letters "rubber" in it. To catch this, compare what CLIP sees
# in the region with how CLIP sees the prompt's words *rendered as images*. Let $R(w)$ be CLIP's image
# embedding of the word $w$ written on plain cards (black on white and white on black, large and small,
# averaged), $W(p)$ the prompt and each of its content words, $N$ a few neutral words ("table",
# "window", ...). Then
#
# $$\mathrm{textness}(x) \;=\; \max_{w \in W(p)} \cos\!\big(\mathrm{CLIP}(x \odot m),\, R(w)\big)
#   \;-\; \frac{1}{|N|} \sum_{n \in N} \cos\!\big(\mathrm{CLIP}(x \odot m),\, R(n)\big).$$
#
# Positive means: the region looks more like *the prompt written out* than like writing in general.
# Subtracting the neutral words removes what all text has in common, so a picture of generic lettering
# does not score high, only the prompt's own words do.
#
# First, a calibration: the empty table, and the same table with "rubber toy" written in the region.

# %%
prompt = "rubber toy"
toy_region = bl.box_mask(size, (0.6, 0.42, 0.96, 0.86))
written = ty.render_text(scene, "rubber\ntoy", size=0.1, position=(0.78, 0.64))
calibration = ty.textness(models.clip, torch.cat([scene, written]), prompt, toy_region)
fig = viz.image_grid([scene[0], written[0]], titles=[f"empty region: {calibration[0]:+.2e}",
                                                     f"the words: {calibration[1]:+.2e}"], panel=2.5)
fig.suptitle("text-ness of the masked region")
fig

# %% [markdown]
# Now the edit itself. `env.config` gives the paper's step settings with the real model (75 steps,
# 8 augmented views) and a few steps in tiny mode; we draw 2 batches of 4 samples instead of the
# paper's 8 to keep the lab to minutes. We turn `enforce_background` off only so that the background
# PSNR in section 5 has something to measure (with it on, the input is pasted back outside the mask and
# every sample's background PSNR is infinite).

# %%
sizes = dict(skip_timesteps=17) if env.tiny else dict(iterations_num=2)  # tiny: 3 steps, 1 batch
toy_cfg = env.config(prompt=prompt, batch_size=4, seed=11, enforce_background=False, **sizes)
paper = bl.edit(models, scene, toy_region, toy_cfg, progress=not env.tiny)
paper_textness = ty.textness(models.clip, paper.images, prompt, toy_region)
print(f"{len(paper.images)} samples, {toy_cfg.num_steps} steps each; text-ness of the masked region: "
      + ", ".join(f"{v:+.2e}" for v in paper_textness))
viz.ranked_gallery(paper)

# %% [markdown]
# ## 4. A mitigation: anti-typography guidance
#
# If CLIP can be fooled by the prompt written out, steer away from exactly that. Take the direction
# $d = R(p) - \frac{1}{|N|}\sum_n R(n)$ (text-ness's contrast, for the whole prompt) and add to the
# guidance loss the mean over the augmented views $v$ of the masked region
#
# $$\mathcal{L} \;=\; \lambda_{\mathrm{clip}}\, D_{\mathrm{clip}} \;+\; \lambda_{\mathrm{range}}\, \mathcal{L}_{\mathrm{range}}
#    \;+\; \lambda_{\mathrm{typo}} \cdot \overline{\cos\big(\mathrm{CLIP}(v), d\big)} .$$
#
# This is not in the paper; it is `anti_typography_lambda` in `EditConfig` (0 = the paper). Same
# seed, same settings, only $\lambda_{\mathrm{typo}}$ differs, so sample $i$ in the top row and in the
# bottom row of the figure start from the same noise.
#
# How large? In tiny mode the random CLIP embeds everything in almost the same direction, so
# text-ness is of order $10^{-4}$ and the term needs a weight like $10^5$ to show at all (the test suite
# uses that too). With the real CLIP a modest weight next to $\lambda_{\mathrm{clip}} = 1000$ is a
# starting point: treat it as a knob to try (too large and the region stops following the prompt).

# %%
typo_lambda = 1e5 if env.tiny else 1000.0
mitigated = bl.edit(models, scene, toy_region, toy_cfg.replace(anti_typography_lambda=typo_lambda),
                    progress=not env.tiny)
mitigated_textness = ty.textness(models.clip, mitigated.images, prompt, toy_region)
ty.Table({"sample": i, "text-ness, λ=0": f"{a:+.2e}", f"text-ness, λ={typo_lambda:g}": f"{b:+.2e}",
          "masked CLIP distance, λ=0": float(paper.distances[i]),
          f"masked CLIP distance, λ={typo_lambda:g}": float(mitigated.distances[i])}
         for i, (a, b) in enumerate(zip(paper_textness, mitigated_textness)))

# %%
n = len(paper.images)
viz.image_grid(torch.cat([paper.images, mitigated.images]), ncols=n,
               titles=[f"λ=0  #{i}  {v:+.1e}" for i, v in enumerate(paper_textness)]
               + [f"λ={typo_lambda:g}  #{i}  {v:+.1e}" for i, v in enumerate(mitigated_textness)],
               suptitle="same seeds: the paper (top) and anti-typography guidance (bottom), with text-ness")

# %% [markdown]
# Read both numbers: text-ness should drop, and the masked CLIP distance tells you whether the region
# still matches the prompt. A mitigation that removes the words *and* the toy is no mitigation.

# %% [markdown]
# ## 5. The rankings disagree
#
# Blended Diffusion draws many samples and keeps the best by the **masked** CLIP distance
# $D\big(\mathrm{CLIP}(x \odot m), \mathrm{CLIP}_{\mathrm{text}}(p)\big)$: only the region inside the mask,
# on black, compared with the prompt. It never asks whether the edit fits its surroundings, whether the
# background survived, or whether the region merely spells the prompt. `ranking.compare` ranks the
# same samples four ways:
#
# | metric | what | better |
# |---|---|---|
# | `masked_clip` | the paper's ranking: CLIP distance of the masked region | lower |
# | `whole_clip` | the same for the whole image | lower |
# | `psnr` | background fidelity outside the mask (dB) | higher |
# | `textness` | the score of section 3, inside the mask | lower |

# %%
table = ranking.compare(paper)
print(table.to_string(precision=5))

# %%
ranking.plot_rank_disagreement(paper, table=table)

# %% [markdown]
# Each line is one sample; flat lines mean the metrics agree, crossing lines mean the "best" sample
# depends on whom you ask (the `spread` column). The sample the paper hands you is the one at the top
# of the first column; follow its line to see what the other criteria think of it.

# %% [markdown]
# ## 6. The cost: a live timing table
#
# Every reverse step runs the UNet forward *and backward* (the guidance gradient goes through it) and
# CLIP on `aug_num` augmented views of every sample. The paper's recipe multiplies that by the number
# of steps and by the number of samples it ranks. Time a few steps of this very edit:

# %%
def sync():  # GPU work is asynchronous: wait for it before reading the clock
    if models.device.type == "cuda":
        torch.cuda.synchronize()

timed = bl.BlendedSampler(models, scene, toy_region, toy_cfg)
stamps = [time.perf_counter()]
for state in itertools.islice(timed.steps(), 3 if env.tiny else 6):
    sync()
    stamps.append(time.perf_counter())
per_step = statistics.median(b - a for a, b in zip(stamps, stamps[1:]))
per_sample = per_step * toy_cfg.num_steps / toy_cfg.batch_size
ty.Table([
    {"what": f"one step (batch of {toy_cfg.batch_size}, {toy_cfg.aug_num} views each)", "seconds": per_step},
    {"what": f"one sample ({toy_cfg.num_steps} steps, batch shared)", "seconds": per_sample},
    {"what": "the paper's default set (8 batches × 4 = 32 samples)", "seconds": per_sample * 32,
     "minutes": per_sample * 32 / 60},
    {"what": "a ranked set of 64 samples", "seconds": per_sample * 64, "minutes": per_sample * 64 / 60},
])

# %% [markdown]
# With the real model on a GPU, the last rows are why a 64-sample ranked edit is a coffee break rather
# than a click; on a CPU the same set takes hours. (In tiny mode the numbers are for a 32-pixel toy
# network with a handful of steps and say nothing about the real cost.)
#
# **Progressive pruning** is the library's mitigation: many bad samples are recognisable early. With
# `prune_at=0.3, keep=k`, after 30 % of the steps the batch of $B$ candidates is ranked by the masked
# CLIP distance of its current prediction $\hat x_0$ and only the best $k$ continue. If a step costs
# in proportion to the batch, the cost falls to about $0.3 + 0.7\,k/B$ of finishing all $B$. Measured,
# on a small batch from the same seed:

# %%
candidates, keep = 4, 1
full_cfg = toy_cfg.replace(batch_size=candidates, iterations_num=1, seed=3)
pruned_cfg = full_cfg.replace(prune_at=0.3, keep=keep)
seconds, finished = {}, {}
for name, c in (("all", full_cfg), ("pruned", pruned_cfg)):
    sync()
    start = time.perf_counter()
    finished[name] = len(bl.edit(models, scene, toy_region, c, progress=False).images)
    sync()
    seconds[name] = time.perf_counter() - start
early = pruned_cfg.prune_index + 1  # steps run on the whole batch
ideal = (early + (pruned_cfg.num_steps - early) * keep / candidates) / pruned_cfg.num_steps
ty.Table([
    {"run": f"{candidates} candidates, all finish", "samples out": finished["all"],
     "seconds": seconds["all"], "fraction of time": 1.0},
    {"run": f"prune_at=0.3, keep={keep} (after {early} of {pruned_cfg.num_steps} steps)",
     "samples out": finished["pruned"], "seconds": seconds["pruned"],
     "fraction of time": seconds["pruned"] / seconds["all"]},
    {"run": "ideal: batch-proportional cost", "fraction of time": ideal},
])

# %% [markdown]
# The pruned run returns only the `keep` survivors: the best of the candidates at about half the
# price. The catch is the one of section 5: the early ranking is a masked CLIP distance too, so it
# prunes by CLIP's taste, typography included. (In tiny mode fixed overheads dominate a toy network's
# steps and the machine may be busy, so the measured fraction there is a rough check only.)

# %% [markdown]
# ## What to remember
#
# - **CLIP reads.** A small written word can outweigh the object itself in CLIP's zero-shot answer, and
#   the sweep shows how the flip depends on the word's size and opacity.
# - **Guided diffusion can write instead of draw.** Text-ness — max similarity to the prompt's words
#   rendered as images minus the mean over neutral words — flags regions that spell the prompt.
# - **Anti-typography guidance** pushes the region away from the prompt written out; its weight is a
#   knob (huge in tiny mode, modest with real CLIP) to be judged by text-ness *and* CLIP distance.
# - **The paper's ranking is one opinion:** masked-region CLIP distance only. Whole-image CLIP,
#   background PSNR and text-ness can order the same samples differently.
# - **It is slow:** every step is a UNet forward and backward plus CLIP on many views, times steps,
#   times samples. Progressive pruning (`prune_at`, `keep`) cuts the cost of ranking many candidates.
