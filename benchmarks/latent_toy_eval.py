"""Judged blended edits of the toy latent world (the shipped folder, or any save_pretrained folder).

    python benchmarks/latent_toy_eval.py                       # the shipped toy latent world
    python benchmarks/latent_toy_eval.py --folder some/folder --seeds 0 1 --out eval.json

For each colour, "a {colour} circle" is blended into the toy example's empty box with
BlendedLatentSampler at LatentConfig's defaults (50 DDIM steps, a quarter skipped, guidance 7.5),
``--batch`` samples per seed, ``pixel`` reconstruction; the toy world's judge names the colour in the
mask. The empty prompt is the unguided baseline: how often each colour appears without being asked.
Prints the counts and writes JSON (with the seconds each run took). Nothing is asserted.

May import: blendlab.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from blendlab.latent.toy import TOY_LATENT, toy_latent_models
from blendlab.latent.train_latent_unet import judged_insert

COLOURS = ("red", "blue", "green", "yellow")



def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--folder", default=str(TOY_LATENT))
    p.add_argument("--colours", nargs="+", default=list(COLOURS))
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    models = toy_latent_models(device="cpu", folder=Path(args.folder))
    rows = []
    for colour in args.colours + [""]:
        for seed in args.seeds:
            t0 = time.process_time()
            verdicts = judged_insert(models, colour, seed=seed, batch_size=args.batch)  # "": unguided
            rows.append(dict(prompt=f"a {colour} circle" if colour else "", seed=seed, colours=verdicts,
                             hits=verdicts.count(colour) if colour else None,
                             cpu_seconds=round(time.process_time() - t0, 1)))
            print(f"{rows[-1]['prompt']!r:18} seed {seed}: {verdicts} ({rows[-1]['cpu_seconds']} CPU s)", flush=True)
    summary = {c: f"{sum(r['hits'] for r in rows if r['prompt'] == f'a {c} circle')}/"
                  f"{args.batch * len(args.seeds)}" for c in args.colours}
    unguided = [v for r in rows if r["prompt"] == "" for v in r["colours"]]
    summary["unguided"] = {c: unguided.count(c) for c in COLOURS} | {"none": unguided.count(None)}
    print("judged success:", summary, flush=True)
    report = dict(folder=args.folder, batch=args.batch, seeds=args.seeds, rows=rows, summary=summary)
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    return report


if __name__ == "__main__":
    main()
