"""The zero-shot typographic attack in the toy world ("iPod on an apple"), shipped CLIP vs another.

    python benchmarks/typography_attack.py --quick                        # 12 scenes, a few seconds
    python benchmarks/typography_attack.py --clip runs/clip_signs/toy_clip.pt --n 96
    python benchmarks/typography_attack.py --clip PATH --out attack.json
    python benchmarks/typography_attack.py --ship   # the shipped CLIPs, scales 1 and 2: toy_attack_eval.json

For each CLIP (the shipped toy CLIP, and ``--clip`` when given: e.g. one fine-tuned with
``train_clip --signs``) and each placement of the sign (beside the object, on it), seeded one-object
scenes are classified zero-shot among "a {colour} shape" clean, with a card reading another colour's
name, and with the same card blank (:func:`blendlab.toyworld.attack.zero_shot_attack`). Prints the
shares with 95 % Wilson intervals: clean right, flipped to the written word, blank card changed the
answer, and the sign alone (no object) answered with its word: whether the CLIP reads at all.
Nothing is asserted.

May import: blendlab, benchmarks.machine, benchmarks.readme_block.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.machine import machine_info  # noqa: E402
from benchmarks.readme_block import write_block  # noqa: E402
from blendlab.checkpoints import load_clip, toy_weights
from blendlab.errors import CheckpointError
from blendlab.download import sha256_file
from blendlab.speed import wilson
from blendlab.table import Table
from blendlab.toyworld.attack import PLACEMENTS, zero_shot_attack


def measure(clips: dict[str, Path], n: int, seed: int, scale: int | tuple[int, ...]) -> list[dict]:
    rows = []
    scales = (scale,) if isinstance(scale, int) else scale
    for name, path in clips.items():  # each CLIP loaded, named and hashed once
        model = load_clip(path, torch.device("cpu")).eval()
        kind = next((k for k in ("clip", "clip_reads") if _shipped(k) == path), None)
        sha = sha256_file(path)
        for scale, placement in ((s, p) for s in scales for p in PLACEMENTS):
            t0 = time.time()
            r = zero_shot_attack(model, n=n, seed=seed, placement=placement, scale=scale)
            if scale > 1 and r["at_scale"] == 0:  # no sign fits at this scale here: a repeat of scale 1
                continue
            r.update(clip=name, kind=kind, sha256=sha, seconds=round(time.time() - t0, 1))
            for key in ("clean_right", "flipped", "blank_changed", "alone_read"):
                r[f"{key}_share"] = r[key] / n
                r[f"{key}_ci"] = wilson(r[key], n)
            rows.append(r)
            print(f"[attack] {name} {placement}: {r['flipped']}/{n} flipped", file=sys.stderr, flush=True)
    return rows


def _shipped(kind: str) -> Path | None:
    try:
        return toy_weights(kind)
    except CheckpointError:
        return None


def table(rows: list[dict]) -> Table:
    pct = lambda r, k: f"{100 * r[k + '_share']:.0f} % [{100 * r[k + '_ci'][0]:.0f}-{100 * r[k + '_ci'][1]:.0f}]"  # noqa: E731
    return Table(dict(clip=r["clip"], sign=r["placement"], scale=r["scale"], n=r["n"], clean_right=pct(r, "clean_right"),
                      flipped_to_word=pct(r, "flipped"), blank_card_changed=pct(r, "blank_changed"),
                      sign_alone_read=pct(r, "alone_read"))
                 for r in rows)


README_START = "<!-- typography-attack: made by benchmarks/typography_attack.py --ship -->"
README_END = "<!-- /typography-attack -->"


def format_markdown(report: dict) -> str:
    """The README's table of the shipped attack measurements (a test keeps it equal to the JSON)."""
    from blendlab.toyworld.measured import measured_attack_table

    rows = measured_attack_table(report)
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(str(r[k]) for k in keys) + " |" for r in rows]
    return "\n".join(lines)


def write_readme_table(report: dict, readme: str | Path) -> None:
    """Replace the table between the README's markers with :func:`format_markdown`."""
    write_block(readme, README_START, README_END, format_markdown(report))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clip", type=str, default=None, help="a second toy CLIP (state dict) to compare")
    p.add_argument("--n", type=int, default=96, help="scenes per placement")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--scale", type=int, default=1, help="image pixels per font pixel of the sign")
    p.add_argument("--quick", action="store_true", help="12 scenes: structure only, figures indicative")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=str, default=None, help="write the rows as JSON")
    p.add_argument("--ship", action="store_true",
                   help="measure the two shipped CLIPs (clip, clip_reads) at letter scales 1 and 2 and write "
                        "the package's toy_attack_eval.json (what the lessons and the README show)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.ship:
        from blendlab.toyworld.measured import ATTACK_FILE

        clips = {"shipped": toy_weights("clip"), "reads": toy_weights("clip_reads")}
        rows = measure(clips, args.n, args.seed, (1, 2))
        report = dict(command="python benchmarks/typography_attack.py --ship", n=args.n, seed=args.seed,
                      template=rows[0]["template"], machine=machine_info(),
                      weights={r["kind"]: r["sha256"] for r in rows},  # hashed once, in measure()
                      rows=rows)
        ATTACK_FILE.write_text(json.dumps(report, indent=1) + "\n")
        write_readme_table(report, Path(__file__).resolve().parents[1] / "README.md")
        print(table(rows))
        print(f"wrote {ATTACK_FILE} and the README's table")
        return
    clips = {"shipped": toy_weights("clip")}
    if args.clip:
        clips["given"] = Path(args.clip)
    rows = measure(clips, 12 if args.quick else args.n, args.seed, args.scale)
    print(table(rows))
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
