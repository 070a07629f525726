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
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/blendlab/blendlab/blob/main/notebooks/11_speed.ipynb)
#
# # 11 · Speed: quality per second
#
# Slowness is the method's first limitation: every sample takes tens of seconds on a GPU, and a good
# ranked set needs many samples (the authors' follow-up, *Blended Latent Diffusion*, puts a good result
# at about 25 minutes on one GPU). This lesson measures what can be bought back, and at
# what price: each **fast mode** is one `EditConfig` setting (the paper's algorithm stays the default),
# and each is judged by what its edits *show* — the toy world's independent judge, not the CLIP that
# steers them. You will read the benchmark's Pareto plot, see what each mode gives up, run a small live
# comparison, and learn how to choose.

# %%
import importlib.util, os, subprocess, sys  # a fresh runtime (e.g. Colab) installs blendlab from $BLENDLAB_SOURCE
source = os.environ.get("BLENDLAB_SOURCE", "git+https://github.com/blendlab/blendlab")  # or your fork (git+https://...) or a local path
if importlib.util.find_spec("blendlab") is None and subprocess.run([sys.executable, "-m", "pip", "install", "-q", source]).returncode:
    sys.exit(f"blendlab could not be installed from {source} (pip says why above); to install your own copy, set BLENDLAB_SOURCE to your fork's git+https URL or a local path (e.g. %env BLENDLAB_SOURCE=/content/blendlab) and run this cell again.")
from blendlab.notebook import setup; env = setup()

# %%
import torch

from IPython.display import display

from blendlab import speed, viz
from blendlab.lessons import check, predict

models = env.load_models()
results = speed.load_results()  # the benchmark's figures, shipped with blendlab
if results is None:
    print("No benchmark results here: run `python benchmarks/quality_per_second.py --out "
          f"{speed.RESULTS_FILE}` in a checkout of {env.repo_url}")
else:
    m = results["machine"]
    print(f"benchmark: preset {results['preset']!r}, {results['suite']['edits']} edits, ranked sets of "
          f"{results['settings']['batch']}, on {m['cpu']} ({m['torch_threads']} thread), torch {m['torch']}")

# %% [markdown]
# ## Where the time goes
#
# One step of Algorithm 1 runs the UNet on $x_t$ *with gradients*, encodes $V$ augmented views of the
# masked $x_{\mathrm{in}} = \hat x_0\sqrt{1-\bar\alpha_t} + x_t(1-\sqrt{1-\bar\alpha_t})$ with CLIP, and
# back-propagates the loss through CLIP **and the UNet** to get $-\nabla_{x_t}\mathcal L$. Counted at the
# paper's configuration (UNet-256 and ViT-B/16, `benchmarks/flops.py`), one step of one sample is about
#
# $$\underbrace{2.24}_{\text{UNet forward}} + \underbrace{0.28 + 0.29}_{\text{CLIP, 8 views, fwd + bwd}}
#   + \underbrace{2.25}_{\text{UNet backward}} \approx 5.1\ \text{TFLOP},$$
#
# times 75 steps. So there are four levers, and each mode pulls one:
#
# | lever | modes | what they give up |
# |---|---|---|
# | fewer steps | half / quarter of the steps, DDIM | larger jumps; fewer chances to steer |
# | fewer UNet backward passes | guide every $k$-th step (reuse the gradient or not), guide only the first 60 % (*Adaptive Guidance*), Jacobian-free guidance (*MPGD*) | stale, missing or approximate gradients |
# | fewer CLIP views | 2 views in the second half | a noisier, easier-to-fool loss late |
# | fewer finished candidates | progressive pruning | the ranking chooses early, from a blurry $\hat x_0$ |
#
# The Jacobian-free mode (`guidance_gradient="mpgd"`) takes the gradient with respect to $\hat x_0$
# and maps it to $x_t$ as if the UNet's noise estimate $\hat\epsilon$ did not depend on $x_t$:
# $\hat x_0 = (x_t-\sqrt{1-\bar\alpha_t}\,\hat\epsilon)/\sqrt{\bar\alpha_t}$ gives
# $\partial\hat x_0/\partial x_t \approx 1/\sqrt{\bar\alpha_t}$ — the shortcut of *Manifold Preserving
# Guided Diffusion* (He et al., 2024), called *mean guidance* in TFG (Ye et al., 2024). The UNet then
# runs without a graph: no backward pass through it at all.
#
# Every mode, what it sets and what it gives up:

# %%
for mode in speed.MODES:
    settings = dict(mode.overrides)
    if mode.steps_fraction:
        settings["steps"] = f"{mode.steps_fraction:g} x ({'DDIM' if mode.ddim else 'DDPM'})"
    print(f"{mode.key:20s} {str(settings):62s} gives up: {mode.gives_up}")

# %% [markdown]
# ## The Pareto plot
#
# The benchmark runs a fixed, seeded suite of toy edits ("a {colour} {shape}" into an empty area of
# several scenes) with every mode, edit by edit in alternation, each to a ranked set. The judge says
# whether a sample holds the requested colour *and* shape. Left: how often the **best-ranked** sample is
# right (what a user looks at first); right: all samples. Bars are 95 % intervals — with a few dozen
# edits, one edit moves a rate by several points, so read differences smaller than the bars as ties.
# A mode on the **front** (blue) has no other mode that is both faster and better.

# %%
if results is not None:
    fig = speed.plot_pareto(results["modes"], labels={k: v["label"] for k, v in results["modes"].items()})

# %%
if results is not None:
    print("\n".join(speed.results_table(results)))

# %% [markdown]
# Read the table with its two time columns in mind. *CPU s/set* is measured on the toy models, whose
# CLIP is **larger** than their UNet (4.1 M vs 1.4 M parameters): there, cutting CLIP views pays off
# well. *TFLOP/smp* is the same mode at the paper's size, where the UNet dominates: cutting views
# barely helps, and what removes UNet work (fewer steps, no UNet backward) helps most. The success
# rates come from the toy world only; with real weights the trade-off can differ (the README says how
# to re-run the benchmark on a GPU).

# %% [markdown]
# ## A live comparison
#
# One edit of the suite, three modes, a small batch: time, the work each mode did, and the judge's
# verdict on the best-ranked sample. (`speed.run_suite_edit` counts UNet forwards and the forwards that built
# a graph — each of those is back-propagated once — and every image CLIP encoded.)

# %%
item = speed.toy_suite(1, 1, size=models.image_size)[0]
base = env.config(batch_size=2)


def report(records):
    for key, r in records.items():
        colour, shape = r["verdicts"][r["order"][0]]
        print(f"{key:16s} {r['cpu_s']:5.1f} s CPU  {r['unet_forwards']:3d} UNet fwd  {r['unet_backwards']:3d} bwd  "
              f"{r['clip_views']:4d} CLIP views  best: {colour} {shape} ({'right' if r['best_correct'] else 'wrong'})")
    return viz.image_grid(torch.cat([r["images"][:1] for r in records.values()]), titles=list(records))


live = {key: speed.run_suite_edit(models, item, speed.mode(key).config(base), keep_images=True)
        for key in ("default", "steps-1/4", "mpgd")}
print(f"'{item.prompt}', ranked sets of {base.batch_size}, {base.num_steps} steps by default")
report(live)

# %%
if env.tiny:
    print("Tiny mode: random weights, so the judge finds noise in the mask. The counts above hold for any "
          "weights: they are what each mode saves.")

# %% [markdown]
# ## Exercise 1 · guidance on every third step, nothing in between
#
# With `guidance_every=3, guidance_between="none"` the gradient is computed on every third step and
# nothing is applied in between. **Predict** below how many UNet backward passes the edit makes (the
# default's count is in the live comparison above); think about the forwards and the CLIP views too.
# **Change** the marked line (then try `guidance_between="reuse"`), **run**, and **check**.

# %%
backwards = predict('UNet backward passes with guidance_every=3, guidance_between="none"', number=True)

# %%
changed = base.replace()  # <- change to: changed = base.replace(guidance_every=3, guidance_between="none")
every = speed.run_suite_edit(models, item, changed, keep_images=True)
display(report({"default": live["default"], "changed": every}))
check(backwards, every["unet_backwards"], tolerance=0.0)

# %% [markdown]
# <details><summary>Answer</summary>
#
# As shipped, `base.replace()` is the default: 75 backward passes, one per step, like the default row.
# With the change the forwards do not change: every step still runs the UNet once (its $\hat x_0$ and mean are needed
# to step at all). The backward passes drop to the guided steps only: steps 0, 3, 6, … — a third,
# rounded up (25 of 75 with the toy settings, 4 of 10 in tiny mode). CLIP views drop by the same factor
# (plus the views of the final ranking, one per sample). Time falls less than the backward count,
# because the forwards stay. With `"reuse"` the counts are the same — the in-between steps apply the
# cached gradient for free — but the prompt keeps pulling on every step.
#
# </details>

# %% [markdown]
# ## Exercise 2 · pruning
#
# With `prune_at=0.3, keep=1` and a batch of 2, the batch is cut to its CLIP-best sample after 30 % of
# the steps. **Predict** below how many UNet *rows* (batch entries, summed over the steps) are processed,
# compared with the default's $2 \times$ steps; think about how many samples come out too.
# **Change** the marked line, **run**, and **check** (`unet_rows` counts the rows).

# %%
rows = predict("UNet rows with prune_at=0.3, keep=1", number=True)

# %%
pruned_cfg = base.replace()  # <- change to: pruned_cfg = base.replace(prune_at=0.3, keep=1)
pruned = speed.run_suite_edit(models, item, pruned_cfg)
where = (f"pruned after step {pruned_cfg.prune_index}/{pruned_cfg.num_steps} ({pruned_cfg.prune_index + 1} "
         "steps on the whole batch)" if pruned_cfg.prune_at is not None else "no pruning")
print(f"{pruned['samples']} sample(s) out; UNet rows {pruned['unet_rows']} vs {live['default']['unet_rows']} "
      f"by default; {where}")
check(rows, pruned["unet_rows"], tolerance=0.0)

# %% [markdown]
# <details><summary>Answer</summary>
#
# As shipped, with no pruning, both samples come out and the rows are the default's 2 × 75 = 150.
# With the change one sample comes out. Both candidates run until the prune step, $\mathrm{round}(0.3 \cdot n)$ steps
# (22 of 75 with the toy settings, 3 of 10 in tiny mode); then the one whose $\hat x_0$ is closer to the
# prompt by CLIP continues alone. Rows: $2 \cdot 22 + 53 = 97$ instead of 150 (tiny: 13 instead of 20).
# The trajectory up to the prune step is exactly the unpruned one; what pruning gives up is the choice:
# the ranking is made on an early, blurry $\hat x_0$, and the other candidate is never finished.
#
# </details>

# %% [markdown]
# ## How to choose
#
# - **Exactly the paper**: the default. The reference loop's second UNet forward buys nothing (same
#   algorithm, same quality, ~1.4x the FLOPs).
# - **Many candidates**: prune. The trajectories are the paper's up to the prune step; you trade
#   finished alternatives for time.
# - **A GPU and the real model**: cut UNet work — fewer steps, guidance on every $k$-th step, or the
#   Jacobian-free gradient (no UNet backward: about 45 % of a step's FLOPs). Fewer CLIP views saves
#   little there.
# - **Check on your own images**: the rates here are the toy world's. Run
#   `python benchmarks/quality_per_second.py --preset 256-uncond --device cuda` on a GPU before
#   trusting a mode with photos, and compare ranked sets side by side (lesson 8's scrubber).
#
# ## What to remember
#
# - Each fast mode is one `EditConfig` field: `guidance_every` / `guidance_between`, `guidance_until`,
#   `guidance_gradient="mpgd"`, `late_aug_num` / `late_at`, `prune_at` / `keep`, `timestep_respacing` /
#   `ddim`. Defaults are the paper.
# - Judge quality by what the edits show, per second of compute, with error bars.
# - Toy-world times over-weight CLIP; the FLOP column projects each mode to the real networks.
