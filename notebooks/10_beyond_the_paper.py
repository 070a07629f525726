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
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/blendlab/blendlab/blob/main/notebooks/10_beyond_the_paper.ipynb)
#
# # 10 · Beyond the paper: typography, text-ness, anti-typography guidance, pruning
#
# An optional lesson on what blendlab adds to the paper's failure cases (lesson 07): a lab for CLIP's
# typographic attack, a **text-ness** score that flags edits which write the prompt instead of drawing
# it, **anti-typography guidance** against that, and **progressive pruning** against the cost of ranking
# many samples. None of these is in the paper.
#
# **Which world?** The typography parts need the real CLIP, which has read a lot of text: open this
# notebook in Colab with a GPU. In the toy world (models trained on this project's machines on 32 px
# coloured shapes) every cell runs, but the toy CLIP used here has never seen writing and this lesson's
# text is drawn for 256 px, so its probabilities and text-ness scores mean nothing (the toy CLIP that
# reads, and the attack on it, are lesson 07's section 3); in tiny mode the weights are random.
# Pruning works the same in every world.

# %%
import importlib.util, os, subprocess, sys  # a fresh runtime (e.g. Colab) installs blendlab from $BLENDLAB_SOURCE
source = os.environ.get("BLENDLAB_SOURCE", "git+https://github.com/blendlab/blendlab")  # or your fork (git+https://...) or a local path
if importlib.util.find_spec("blendlab") is None and subprocess.run([sys.executable, "-m", "pip", "install", "-q", source]).returncode:
    sys.exit(f"blendlab could not be installed from {source} (pip says why above); to install your own copy, set BLENDLAB_SOURCE to your fork's git+https URL or a local path (e.g. %env BLENDLAB_SOURCE=/content/blendlab) and run this cell again.")
from blendlab.notebook import setup; env = setup()

# %% [markdown]
# A still life to attack, drawn by code (no download): an apple on a table, with free space on the right.

# %%
# %matplotlib inline
import time

import torch
from PIL import Image, ImageDraw

import blendlab as bl
from blendlab import ranking, viz
from blendlab import typography as ty
from blendlab.lessons import check, predict

models = env.load_models()
still_life = Image.new("RGB", (256, 256), (222, 212, 192))                  # a pale wall
draw = ImageDraw.Draw(still_life)
draw.rectangle([0, 172, 256, 256], fill=(146, 100, 60))                      # a wooden table
draw.ellipse([30, 84, 102, 184], fill=(190, 28, 36))                         # the apple: two lobes
draw.ellipse([74, 84, 146, 184], fill=(190, 28, 36))
draw.line([88, 90, 96, 62], fill=(84, 56, 28), width=6)                      # the stem
draw.ellipse([98, 56, 132, 74], fill=(72, 150, 52))                          # a leaf
apple = bl.load_image(still_life)                          # 256 px, for CLIP (which resizes to its own input)
scene = bl.load_image(still_life, size=models.image_size)  # the diffusion model's resolution
if not (env.toy or env.tiny):
    print("Real CLIP: the numbers below are the ones this lesson is about.")
else:
    print(f"{'Toy world' if env.toy else 'Tiny mode'}: the CLIP below cannot read, so its probabilities and "
          "text-ness scores are mechanics only; open the notebook in Colab with a GPU for the real CLIP.")

# %% [markdown]
# ## 1. The typographic attack
#
# CLIP classifies zero-shot: each label $k$ is written into caption templates ("a photo of a {}.", ...),
# their unit text embeddings averaged into $\bar e_k$, and an image $x$ gets
# $p(k\mid x) = \operatorname{softmax}_k\big(s \cdot \cos(E_I(x), \bar e_k)\big)$, with CLIP's temperature
# $s = 100$. Now stick a note saying "iPod" on the apple (Goh et al., *Multimodal Neurons*, Distill 2021).

# %%
labels = ["apple", "iPod", "library", "pizza", "toaster"]
on_the_apple = dict(position=(0.34, 0.55), note=True)   # a yellow sticky note on the apple
attack = ty.attack_table(models.clip, apple, "iPod", labels, size=0.1, **on_the_apple)
ty.plot_zero_shot(attack, labels, images=torch.cat([apple, ty.render_text(apple, "iPod", size=0.1, **on_the_apple)]))

# %% [markdown]
# With the real CLIP the bare still life is an apple, and four letters on a scrap of paper pull much of
# the probability to "iPod". How large must the word be? `ty.text_sweep` renders it at several sizes (a
# fraction of the image height) and classifies each; dashed lines are the probabilities without text.

# %%
ty.plot_text_sweep(ty.text_sweep(models.clip, apple, "iPod", labels, param="size",
                                 values=[0.04, 0.07, 0.1, 0.14, 0.2], **on_the_apple))

# %% [markdown]
# ## 2. Text-ness: does the region *write* the prompt?
#
# Drawing the prompt's words is one way to please CLIP, so an edit asked for "rubber toy" may come back
# with the letters "rubber" in it (the paper's own failure case). Let $R(w)$ be CLIP's image embedding of
# the word $w$ written on plain cards, $W(p)$ the prompt and its content words, $N$ a few neutral words
# ("table", "window", ...). Then
#
# $$\mathrm{textness}(x) = \max_{w \in W(p)} \cos\big(\mathrm{CLIP}(x \odot m), R(w)\big)
#   - \frac{1}{|N|} \sum_{n \in N} \cos\big(\mathrm{CLIP}(x \odot m), R(n)\big):$$
#
# positive when the region looks more like *the prompt written out* than like writing in general. A
# calibration: the empty region, and the same region with "rubber toy" written in it.

# %%
prompt = "rubber toy"
region = bl.box_mask(models.image_size, (0.6, 0.42, 0.96, 0.86))
written = ty.render_text(scene, "rubber\ntoy", size=0.1, position=(0.78, 0.64))
calibration = ty.textness(models.clip, torch.cat([scene, written]), prompt, region)
viz.image_grid([scene[0], written[0]], titles=[f"empty region: {calibration[0]:+.2e}",
                                               f"the words: {calibration[1]:+.2e}"], panel=2.5)

# %% [markdown]
# ## 3. Anti-typography guidance
#
# Steer away from exactly that: with the direction $d = R(p) - \frac{1}{|N|}\sum_n R(n)$, add to the
# guidance loss the mean over the augmented views $v$ of the masked region of $\lambda_{\mathrm{typo}}
# \cos\big(\mathrm{CLIP}(v), d\big)$ (`EditConfig.anti_typography_lambda`, 0 = the paper). Same seed, same
# settings, only $\lambda_{\mathrm{typo}}$ differs, so sample $i$ starts from the same noise in both rows.
# $\lambda_{\mathrm{typo}} = 1000$ next to $\lambda_{\mathrm{clip}} = 1000$ is a starting point with the
# real CLIP; with tiny's random CLIP text-ness is of order $10^{-4}$ and this weight barely moves it.
# `enforce_background=False` so that section 4's background PSNR has something to measure.

# %%
cfg = env.config(prompt=prompt, seed=11, enforce_background=False, timestep_respacing="40", skip_timesteps=10)
start = time.perf_counter()
plain = bl.edit(models, scene, region, cfg)
plain_seconds = time.perf_counter() - start
mitigated = bl.edit(models, scene, region, cfg.replace(anti_typography_lambda=1000.0))
scores = {name: ty.textness(models.clip, r.images, prompt, region) for name, r in (("λ=0", plain), ("λ=1000", mitigated))}
viz.image_grid(torch.cat([plain.images, mitigated.images]), ncols=len(plain.images),
               titles=[f"{name} #{i}\ntext-ness {v:+.1e}\nd = {float(r.distances[i]):.3f}"
                       for name, r in (("λ=0", plain), ("λ=1000", mitigated)) for i, v in enumerate(scores[name])])

# %% [markdown]
# Read both numbers: text-ness should drop, and the masked CLIP distance $d$ says whether the region still
# matches the prompt. A mitigation that removes the words *and* the toy is no mitigation.
#
# ## 4. Four rankings of the same samples
#
# `ranking.compare` ranks the samples by the paper's masked CLIP distance, the whole image's CLIP
# distance, the background's PSNR and text-ness; crossing lines are samples the criteria disagree on.

# %%
ranking.plot_rank_disagreement(plain)

# %% [markdown]
# ## 5. Progressive pruning
#
# Many bad samples are recognisable early. With `prune_at=0.3, keep=k`, after 30 % of the steps the batch
# of $B$ candidates is ranked by the masked CLIP distance of its current $\hat x_0$ and only the best $k$
# continue; if a step costs in proportion to the batch, the cost falls to about $0.3 + 0.7\,k/B$. The
# catch is lesson 07's: the early ranking is CLIP's opinion of the masked region too.

# %%
def pruned_run(keep):
    c = cfg.replace(prune_at=0.3, keep=keep)
    start = time.perf_counter()
    out = len(bl.edit(models, scene, region, c, progress=False).images)
    early = c.prune_index + 1  # steps run on the whole batch
    return {"run": f"prune_at=0.3, keep={keep}", "samples out": out,
            "fraction of time": (time.perf_counter() - start) / plain_seconds,
            "ideal": (early + (c.num_steps - early) * keep / c.batch_size) / c.num_steps}

ty.Table([{"run": f"all {cfg.batch_size} finish", "samples out": len(plain.images), "fraction of time": 1.0,
           "ideal": 1.0}, pruned_run(keep=1)])

# %% [markdown]
# (Fixed overheads and a busy machine blur the measured fraction; the ideal column is the arithmetic.)

# %% [markdown]
# ## Exercise 1 · keep two
#
# **Predict** below: with `keep=2` of the 4 candidates, what fraction of the plain run's time does the
# edit take? **Change** `keep` in the marked line, **run**, **check** against the measured fraction and
# the ideal.

# %%
fraction = predict("Fraction of the plain run's time with keep=2 (e.g. 0.5)", number=True)

# %%
row = pruned_run(keep=1)  # <- change to: row = pruned_run(keep=2)
check(fraction, round(row["fraction of time"], 2), tolerance=0.2)
ty.Table([row])

# %% [markdown]
# <details><summary>Answer</summary>
#
# With `keep=2`: two samples, in about $0.3 + 0.7 \cdot 2/4 = 0.65$ of the time (the cell as shipped,
# `keep=1`, gives one sample in about $0.3 + 0.7/4 \approx 0.48$): 9 of the 30 steps run on all four
# candidates, the other 21 on two. The measured fraction sits near the ideal when the batch dominates the
# cost of a step, and above it when fixed costs (the UNet's per-call overhead, CLIP's text side) do.
#
# </details>

# %% [markdown]
# ## Exercise 2 · which word scores?
#
# **Predict** below: write a neutral word ("window") in the region instead of the prompt. Is its
# text-ness higher or lower than the prompt's written words (section 2) — with the real CLIP, and with
# yours? **Change** the word in the marked line, **run**, **check**.

# %%
order = predict('"window" written, against the prompt written: its text-ness is…',
                ["higher", "lower", "about the same"])

# %%
word = "rubber\ntoy"  # <- change to: word = "window"
other = ty.render_text(scene, word, size=0.1, position=(0.78, 0.64))
score = float(ty.textness(models.clip, other, prompt, region)[0])
print(f'text-ness for "{prompt}": {word!r} written {score:+.2e}, '
      f'the prompt written {calibration[1]:+.2e}, empty {calibration[0]:+.2e}')
gap = score - float(calibration[1])
check(order, "about the same" if abs(gap) <= 0.1 * abs(float(calibration[1])) + 1e-9 else
      ("higher" if gap > 0 else "lower"))

# %% [markdown]
# <details><summary>Answer</summary>
#
# As shipped, the cell writes the prompt exactly as section 2 did, so the score is the same. With
# "window", and the real CLIP: lower — around or below zero: text-ness subtracts the mean similarity to neutral
# words written out ("window" is one of them), so writing in general cancels and only the prompt's own
# words score high. With the toy CLIP (or tiny's random one) the order is anyone's guess: it never learned
# to read, so "written rubber toy" and "written window" are just two grey-and-black patterns to it. That is
# why the toy world's typographic failure needs the toy CLIP that reads (lesson 07, section 3: a card
# naming another colour flips its answer; `toy_clip_reads.pt`).
#
# </details>

# %% [markdown]
# ## What to remember
#
# - **CLIP reads:** a small word can outweigh the object in CLIP's zero-shot answer.
# - **Text-ness** (prompt's words rendered minus neutral words rendered) flags regions that spell the
#   prompt; **anti-typography guidance** pushes away from them — judge it by text-ness *and* CLIP distance.
# - **Progressive pruning** (`prune_at`, `keep`) cuts the cost of ranking many candidates, by CLIP's taste.
