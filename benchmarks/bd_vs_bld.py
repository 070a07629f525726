"""Blended Diffusion vs Blended Latent Diffusion, side by side on the same toy edits, the judge deciding.

    python benchmarks/bd_vs_bld.py --ship        # the shipped figures: ~6 min CPU, one thread
    python benchmarks/bd_vs_bld.py --quick       # 4 edits: structure only, figures indicative
    python benchmarks/bd_vs_bld.py --preset 256-uncond --latent_model stabilityai/stable-diffusion-2-1-base \\
        --device cuda --out gpu.json             # Colab, a GPU: the paper's model vs Stable Diffusion

The edits are the speed lab's seeded toy suite (:func:`blendlab.speed.toy_suite`: 16 edits, "a
{colour} {shape}" into an empty masked area of four scenes). Each is run by Blended Diffusion
(``blendlab.edit``, the paper's settings for the preset) and by Blended Latent Diffusion
(``blendlab.latent.latent_edit``, LatentConfig's defaults: the reference's), the same number of
samples each (``--batch``), one after the other in an order that alternates every edit, so both see
the same machine load. A third arm, ``bld_wide``, gives BLD ``--wide_batch`` (16) samples per ranked set:
four times Blended Diffusion's, in a fraction of its time — the trade a user of the faster method makes. CPU seconds per sample are of the whole ranked set (sampling and ranking).

Each method's background is measured both ways, from the same samples: Blended Diffusion with and
without its final paste (``enforce_background``); BLD without reconstruction (the reference), with
``pixel`` and with ``poisson`` reconstruction. Every variant is ranked by the masked CLIP distance of
the preset's CLIP (the same CLIP for both methods) and the toy world's judge reads colour and shape
of the best-ranked sample and of every sample; ``outside_mse`` is the mean squared change outside the
mask (in [0, 1] units), ``seam`` the mean gradient on the mask border (the input's own is reported).

Targets, printed PASS/FAIL and never asserted: BLD at least ×10 faster per sample, its best-ranked
success within 10 points of Blended Diffusion's, the outside unchanged after reconstruction.
``--ship`` writes ``blendlab/latent/side_by_side.json`` and the README's table.

May import: blendlab, benchmarks.machine, benchmarks.readme_block.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path

import torch

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import blendlab as bl  # noqa: E402
from blendlab.embeddings import encode_text, masked_clip_distance  # noqa: E402
from blendlab.latent import LatentConfig, latent_edit, load_latent_models, toy_latent_models  # noqa: E402
from blendlab.latent.measured import ARM_LABELS, SIDE_BY_SIDE, side_by_side_table  # noqa: E402
from blendlab.latent.reconstruct import reconstruct  # noqa: E402
from blendlab.masks import paste_background  # noqa: E402
from blendlab.metrics import background_drift, seam_strength  # noqa: E402
from blendlab.presets import settings_for  # noqa: E402
from blendlab.speed import toy_suite  # noqa: E402
from blendlab.toyworld.judge import judge  # noqa: E402

from benchmarks.machine import load_average, machine_info  # noqa: E402
from benchmarks.readme_block import write_block  # noqa: E402

README_START = "<!-- bd-vs-bld: made by benchmarks/bd_vs_bld.py --ship -->"
README_END = "<!-- /bd-vs-bld -->"
BACKGROUNDS = {"bd": ("paste", "none"), "bld": ("none", "pixel", "poisson"), "bld_wide": ("pixel",)}


def _bd(models, item, batch):
    cfg = bl.EditConfig(prompt=item.prompt, seed=item.seed, **{**settings_for(models.preset), "batch_size": batch,
                                                                 "iterations_num": 1}, enforce_background=False)
    result = bl.edit(models, item.image, item.mask, cfg, progress=False)
    mask = result.mask
    return {"none": result.images, "paste": paste_background(result.images, result.init_image, mask)}, cfg


def _bld(latent_models, ranker, item, batch):
    image = torch.nn.functional.interpolate(item.image, size=latent_models.image_size, mode="bilinear",
                                            antialias=True) if item.image.shape[-1] != latent_models.image_size else item.image
    mask = (torch.nn.functional.interpolate(item.mask, size=latent_models.image_size) > 0.5).float()
    cfg = LatentConfig(prompt=item.prompt, seed=item.seed, batch_size=batch)
    result = latent_edit(latent_models, image, mask, cfg, ranker=ranker, progress=False)
    return {how: reconstruct(result.images, result.init_image, result.mask, how) for how in BACKGROUNDS["bld"]}, cfg


def _judged(images, init_image, mask, item, models) -> dict:
    clip, device = models.clip, models.device
    distances = masked_clip_distance(clip, images.to(device), encode_text(clip, item.prompt), mask.to(device)).cpu()
    images, init_image, mask = images.cpu(), init_image.cpu(), mask.cpu()
    order = torch.argsort(distances, stable=True).tolist()
    verdicts = judge(images, mask)
    correct = [v.holds(item.colour, item.shape) for v in verdicts]
    colour = [v.holds(item.colour) for v in verdicts]
    return dict(order=order, correct=correct, colour_correct=colour, best_correct=correct[order[0]],
                best_colour_correct=colour[order[0]], verdicts=[[v.colour, v.shape] for v in verdicts],
                outside_mse=float(background_drift(images, init_image, mask).mean()),
                seam=float(seam_strength(images, mask).mean()))


def run_edit(method, item, models, latent_models, batch) -> dict:
    """One edit by one method ("bd", "bld"; "bld_wide" is BLD with its own, larger batch)."""
    cpu0, wall0 = time.process_time(), time.perf_counter()
    if method == "bd":
        variants, cfg = _bd(models, item, batch)
        mask, init = item.mask, item.image
    else:
        variants, cfg = _bld(latent_models, models, item, batch)
        variants = {how: variants[how] for how in BACKGROUNDS[method]}
        size = latent_models.image_size
        init = item.image if item.image.shape[-1] == size else torch.nn.functional.interpolate(item.image, size=size)
        mask = (torch.nn.functional.interpolate(item.mask, size=size) > 0.5).float()
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    judged = {how: _judged(images, init, mask, item, models) for how, images in variants.items()}
    return dict(method=method, edit=item.index, prompt=item.prompt, seed=item.seed, samples=batch, cpu_s=cpu,
                wall_s=wall, load=load_average(), input_seam=float(seam_strength(init, mask)[0]), variants=judged)


def summarize(records: list) -> dict:
    arms = []
    per_sample = {}
    for method, backgrounds in BACKGROUNDS.items():
        mine = [r for r in records if r["method"] == method]
        if not mine:
            continue
        per_sample[method] = sum(r["cpu_s"] for r in mine) / sum(r["samples"] for r in mine)
        for how in backgrounds:
            v = [r["variants"][how] for r in mine]
            n = sum(len(x["correct"]) for x in v)
            arms.append(dict(method=method, background=how, label=ARM_LABELS[(method, how)], edits=len(v),
                             best_success=sum(x["best_correct"] for x in v) / len(v),
                             best_colour=sum(x["best_colour_correct"] for x in v) / len(v),
                             all_success=sum(sum(x["correct"]) for x in v) / n,
                             all_colour=sum(sum(x["colour_correct"]) for x in v) / n,
                             outside_mse=statistics.fmean(x["outside_mse"] for x in v),
                             seam=statistics.fmean(x["seam"] for x in v),
                             cpu_s_per_sample=per_sample[method]))
    by_edit = {}
    for r in records:
        by_edit.setdefault(r["edit"], {})[r["method"]] = r
    speedup, per_edit = {"bd": 1.0}, {}
    for method in BACKGROUNDS:
        if method == "bd" or not any(method in e for e in by_edit.values()):
            continue
        per_edit[method] = [(e["bd"]["cpu_s"] / e["bd"]["samples"]) / (e[method]["cpu_s"] / e[method]["samples"])
                            for e in by_edit.values() if "bd" in e and method in e]
        speedup[method] = statistics.median(per_edit[method])
    for arm in arms:
        mine = [r for r in records if r["method"] == arm["method"]]
        arm["samples"] = mine[0]["samples"] if mine else 0
        arm["cpu_s_per_set"] = statistics.fmean(r["cpu_s"] for r in mine) if mine else 0.0
    bd_inputs = [r["input_seam"] for r in records if r["method"] == "bd"]
    return dict(arms=arms, speedup=speedup, speedup_per_edit=per_edit, input_seam=statistics.fmean(bd_inputs))


def targets(summary: dict) -> list[str]:
    arm = {(a["method"], a["background"]): a for a in summary["arms"]}
    bd = arm[("bd", "paste")]["best_success"]
    lines = [("BLD >= x10 faster per sample", summary["speedup"]["bld"] >= 10, f"x{summary['speedup']['bld']:.1f}")]
    for (method, how), a in arm.items():
        if method == "bd":
            continue
        s = a["best_success"]
        lines.append((f"{a['label']}, {a['samples']} samples: best-ranked success within 10 points of Blended "
                      f"Diffusion's", s >= bd - 0.1, f"{100 * s:.0f} % vs {100 * bd:.0f} %"))
    lines.append(("the outside unchanged after pixel reconstruction", arm[("bld", "pixel")]["outside_mse"] == 0,
                  f"MSE {arm[('bld', 'pixel')]['outside_mse']:.2g}"))
    return [f"{'PASS' if ok else 'FAIL'}  {what}: {figure}" for what, ok, figure in lines]


def format_markdown(report: dict) -> str:
    """The README's table (a test keeps it equal to the shipped JSON)."""
    rows = side_by_side_table(report)
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(str(r[k]) for k in keys) + " |" for r in rows]
    return "\n".join(lines)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", default="toy", help="Blended Diffusion's models (toy: the toy world, offline)")
    p.add_argument("--latent_model", default="toy-latent", help="toy-latent, a save_pretrained folder or a Hub id")
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch", type=int, default=4, help="samples per ranked set, both methods")
    p.add_argument("--wide_batch", type=int, default=16,
                   help="samples per ranked set of the third arm, BLD with more samples in less time (0: none)")
    p.add_argument("--edits", type=int, default=16, help="edits of the suite (16: all)")
    p.add_argument("--quick", action="store_true", help="4 edits, 2 samples: structure only")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=None, help="write the report as JSON")
    p.add_argument("--ship", action="store_true", help="write the package's side_by_side.json and the README table")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.quick:
        args.edits, args.batch, args.wide_batch = 4, 2, 4
    models = bl.load_models(args.preset, device=args.device, progress=False)
    latent_models = (toy_latent_models(device=args.device) if args.latent_model == "toy-latent"
                     else load_latent_models(args.latent_model, device=args.device))
    suite = toy_suite(size=models.image_size)[: args.edits]
    records = []
    t0 = time.perf_counter()
    for k, item in enumerate(suite):
        methods = ["bd", "bld"] + (["bld_wide"] if args.wide_batch else [])
        for method in (methods if k % 2 == 0 else methods[::-1]):
            batch = args.wide_batch if method == "bld_wide" else args.batch
            records.append(run_edit(method, item, models, latent_models, batch))
            r = records[-1]
            best = {how: "+" if v["best_correct"] else "-" for how, v in r["variants"].items()}
            print(f"edit {k:2d} {item.prompt!r:20} {method:3}: {r['cpu_s'] / r['samples']:.2f} CPU s/sample, "
                  f"best-ranked correct {best}", flush=True)
    summary = summarize(records)
    report = dict(command="python benchmarks/" + Path(__file__).name + (" --ship" if args.ship else ""),
                  preset=args.preset, latent_model=args.latent_model, batch=args.batch, wide_batch=args.wide_batch,
                  edits=len(suite),
                  quick=args.quick, timing_basis="cpu" if args.threads == 1 and args.device == "cpu" else "wall",
                  bd_settings=settings_for(models.preset), bld_settings={f.name: f.default for f in dataclasses.fields(LatentConfig)},
                  machine=machine_info(), seconds_total=time.perf_counter() - t0, **summary, records=records)
    print(side_by_side_table(report))
    print("\n".join(targets(summary)))
    if args.ship:
        SIDE_BY_SIDE.write_text(json.dumps(report, indent=1) + "\n")
        write_block(Path(__file__).resolve().parents[1] / "README.md", README_START, README_END, format_markdown(report))
        print(f"wrote {SIDE_BY_SIDE} and the README's table")
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    return report


if __name__ == "__main__":
    main()
