"""The zero-shot typographic attack in the toy world ("iPod on an apple"), shipped CLIP vs another.

    python benchmarks/typography_attack.py --quick                        # 12 scenes, a few seconds
    python benchmarks/typography_attack.py --clip /work/toytrain/clip_signs/toy_clip.pt --n 96
    python benchmarks/typography_attack.py --clip PATH --out attack.json

For each CLIP (the shipped toy CLIP, and ``--clip`` when given: e.g. one fine-tuned with
``train_clip --signs``) and each placement of the sign (beside the object, on it), seeded one-object
scenes are classified zero-shot among "a {colour} shape" clean, with a card reading another colour's
name, and with the same card blank (:func:`blendlab.toyworld.attack.zero_shot_attack`). Prints the
shares with 95 % Wilson intervals: clean right, flipped to the written word, blank card changed the
answer, and the sign alone (no object) answered with its word: whether the CLIP reads at all.
Nothing is asserted.

May import: blendlab.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from blendlab.checkpoints import load_clip, toy_weights
from blendlab.download import sha256_file
from blendlab.speed import wilson
from blendlab.table import Table
from blendlab.toyworld.attack import PLACEMENTS, zero_shot_attack


def measure(clips: dict[str, Path], n: int, seed: int, scale: int) -> list[dict]:
    rows = []
    for name, path in clips.items():
        model = load_clip(path, torch.device("cpu")).eval()
        for placement in PLACEMENTS:
            t0 = time.time()
            r = zero_shot_attack(model, n=n, seed=seed, placement=placement, scale=scale)
            r.update(clip=name, path=str(path), sha256=sha256_file(path), seconds=round(time.time() - t0, 1))
            for key in ("clean_right", "flipped", "blank_changed", "alone_read"):
                r[f"{key}_share"] = r[key] / n
                r[f"{key}_ci"] = wilson(r[key], n)
            rows.append(r)
            print(f"[attack] {name} {placement}: {r['flipped']}/{n} flipped", file=sys.stderr, flush=True)
    return rows


def table(rows: list[dict]) -> Table:
    pct = lambda r, k: f"{100 * r[k + '_share']:.0f} % [{100 * r[k + '_ci'][0]:.0f}-{100 * r[k + '_ci'][1]:.0f}]"  # noqa: E731
    return Table(dict(clip=r["clip"], sign=r["placement"], n=r["n"], clean_right=pct(r, "clean_right"),
                      flipped_to_word=pct(r, "flipped"), blank_card_changed=pct(r, "blank_changed"),
                      sign_alone_read=pct(r, "alone_read"))
                 for r in rows)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clip", type=str, default=None, help="a second toy CLIP (state dict) to compare")
    p.add_argument("--n", type=int, default=96, help="scenes per placement")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--scale", type=int, default=1, help="image pixels per font pixel of the sign")
    p.add_argument("--quick", action="store_true", help="12 scenes: structure only, figures indicative")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=str, default=None, help="write the rows as JSON")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    clips = {"shipped": toy_weights("clip")}
    if args.clip:
        clips["given"] = Path(args.clip)
    rows = measure(clips, 12 if args.quick else args.n, args.seed, args.scale)
    print(table(rows))
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
