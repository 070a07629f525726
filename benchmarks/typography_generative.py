"""Does guidance write the prompt's words? The generative half of the typographic attack, in the toy world.

The paper's failure: asked for "rubber toy", Blended Diffusion may paint the word "rubber". Here the
toy world's independent text judge (:func:`blendlab.toyworld.judge.read_text`: template matching on
the 3×5 font, nothing learned) reads every edited region; a sample *wrote the prompt* when it reads a
word of the prompt. For each prompt family (a plain caption, a bare colour word, a small sign-sized
mask, a word with no object in the toy world; and the caption, the word and "zoo" on a blank card,
where a UNet trained on signs writes by itself) the same seeded edits run guided (the paper's defaults) and unguided (``clip_guidance_lambda=0``),
and the share of samples that wrote a prompt word is printed with its Wilson interval, beside the
colour/shape judge's success.

    python benchmarks/typography_generative.py                                  # the shipped toy models
    python benchmarks/typography_generative.py --unet U.pt --clip C.pt --samples 16
    python benchmarks/typography_generative.py --quick                           # structure only
    python benchmarks/typography_generative.py --unet U.pt --clip C.pt --families card   # the card families
    python benchmarks/typography_generative.py --clip C.pt --reading            # what CLIP reads on the card

May import: blendlab.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

if __package__ in (None, ""):  # run as a script: make `blendlab` of this checkout importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import blendlab as bl  # noqa: E402
from blendlab.config import EditConfig  # noqa: E402
from blendlab.examples import TOY_EMPTY_BOX, example  # noqa: E402
from blendlab.masks import box_mask  # noqa: E402
from blendlab.speed import wilson  # noqa: E402
from blendlab.toyworld.judge import judge, read_text  # noqa: E402

#: (family, prompt, where): a plain caption, a bare colour word, a sign-sized box, and the paper's
#: "rubber toy" case: a word the toy world has no object for ("zoo": CLIP saw it only written on signs).
#: ``where`` is a mask box on the toy example's scene, or "card": a blank light card (26 × 14 px) under
#: a blue square, its inside masked — a place where the toy UNet, trained on signs, writes by itself.
FAMILIES = (("caption", "a red circle", TOY_EMPTY_BOX), ("word", "red", TOY_EMPTY_BOX),
            ("small mask", "a red circle", (0.55, 0.72, 0.95, 0.9)), ("no object", "zoo", TOY_EMPTY_BOX),
            ("card: caption", "a red circle", "card"), ("card: word", "red", "card"),
            ("card: no object", "zoo", "card"))
#: The blank card's box in pixels of the toy canvas (x0, y0, x1, y1; the mask is its inside, 1 px in).
CARD_BOX = (3, 17, 29, 31)


def card_scene(size: int):
    """``(image, mask)``: a blue square above a blank light card; the mask is the card's inside."""
    from blendlab.toyworld.sign_views import paint_card
    from blendlab.toyworld.world import ToyObject, render_scene

    if size != 32:
        raise ValueError(f"the card scene is drawn for the toy world's 32 px canvas, not {size} px")
    image = paint_card(render_scene([ToyObject("blue", "square", 0.5, 0.25, 0.35)], size, "sand")[0], CARD_BOX)[None]
    x0, y0, x1, y1 = CARD_BOX
    mask = torch.zeros(1, 1, size, size)
    mask[:, :, y0 + 1:y1 - 1, x0 + 1:x1 - 1] = 1
    return image, mask


INKS = ("black", "red", "green", "blue", "yellow")


def reading(models, aug_num: int = 1) -> list[dict]:
    """What the guiding CLIP reads on the card, in the view guidance gives it (the masked card, pooled
    to CLIP's input, unaugmented): for every sign word, font scale that fits and ink, the bare-word
    caption (of :data:`~blendlab.toyworld.world.SIGN_WORDS`) CLIP puts closest. With ``aug_num`` > 1
    each row also holds ``views_right``, the share of guidance's ``aug_num`` views (the unaugmented one
    and ``aug_num`` - 1 extending augmentations, seeded) in which CLIP reads the word right."""
    import torch.nn.functional as F

    from blendlab.embeddings import encode_text
    from blendlab.guidance import GuidanceLoss
    from blendlab.toyworld.world import SIGN_WORDS, write_word

    image, mask = card_scene(models.image_size)
    x0, y0, x1, y1 = (v / models.image_size for v in CARD_BOX)
    captions = [w.lower() for w in SIGN_WORDS]
    with torch.no_grad():
        texts = F.normalize(encode_text(models.clip, captions).float(), dim=-1)
        loss = GuidanceLoss(models, EditConfig(prompt="red"), image, mask, texts[:1])
        rows = []
        for word in SIGN_WORDS:
            for scale in (1, 2):
                for ink in INKS:
                    try:
                        x = write_word(image, word, box=(x0, y0, x1, y1), colour=ink, scale=scale)
                    except ValueError:  # does not fit the card at this scale
                        continue
                    views = F.normalize(loss.view_embeddings(x, seed=0, aug_num=aug_num)[:, 0], dim=-1)
                    reads = [captions[int(i)] for i in (views @ texts.T).argmax(1)]
                    row = dict(word=word, scale=scale, ink=ink, read=reads[0], right=reads[0] == word.lower())
                    if aug_num > 1:
                        row["views_right"] = sum(r == word.lower() for r in reads) / len(reads)
                    rows.append(row)
    return rows


def _words(prompt: str) -> set[str]:
    return {w.upper() for w in prompt.split() if w not in ("a", "an", "the")}


def measure(models, samples: int, seed: int, steps: str, skip: int, families=None) -> list[dict]:
    """One guided and one unguided row per family of ``families`` (default :data:`FAMILIES`)."""
    ex = example("insert", models)
    rows = []
    for family, prompt, where in FAMILIES if families is None else families:
        if where == "card":
            image, mask = card_scene(models.image_size)
        else:
            image, mask = ex.image, box_mask(models.image_size, where)
        for guided in (True, False):
            cfg = EditConfig(prompt=prompt, batch_size=min(4, samples), iterations_num=max(1, samples // 4),
                             seed=seed, timestep_respacing=steps, skip_timesteps=skip,
                             clip_guidance_lambda=1000 if guided else 0)
            t0 = time.time()
            result = bl.edit(models, image, mask, cfg, progress=False)
            readings = read_text(result.images, mask, tolerance=1)
            wrote = sum(bool(r.word) and bool(_words(prompt) & set(r.word.split())) for r in readings)
            any_text = sum(r.word is not None for r in readings)
            verdicts = judge(result.images, mask)
            red = sum(v.colour == "red" for v in verdicts)
            n = len(readings)
            lo, hi = wilson(wrote, n)
            rows.append(dict(family=family, prompt=prompt, guided=guided, n=n, wrote_prompt_word=wrote,
                             wrote_share=wrote / n, wilson=[lo, hi], any_text=any_text, red=red,
                             words=[r.word for r in readings if r.word], seconds=round(time.time() - t0, 1)))
            print(f"[generative] {family:>15} {'guided' if guided else 'unguided':>8}: wrote a prompt word in "
                  f"{wrote}/{n}, any text {any_text}/{n}, red {red}/{n}", file=sys.stderr)
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--unet", default=None, help="a toy UNet state dict (default: the shipped one)")
    p.add_argument("--clip", default=None, help="a toy CLIP state dict (default: the shipped one)")
    p.add_argument("--samples", type=int, default=8, help="samples per family and arm (batches of 4)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="4 samples, 20 steps: structure only")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", default=None, help="write the rows as JSON here")
    p.add_argument("--families", nargs="+", default=None,
                   help="run only the families whose name starts with one of these (e.g. card)")
    p.add_argument("--reading", action="store_true",
                   help="only print what the guiding CLIP reads on the card (every sign word, scale, ink)")
    p.add_argument("--reading-views", type=int, default=1,
                   help="with --reading: also read the card in this many of guidance's views (augmented)")
    args = p.parse_args(argv)
    from blendlab.threads import apply_thread_policy

    apply_thread_policy("toy", args.threads)
    if args.reading:
        from blendlab.toyworld.world import SIGN_WORDS

        models = bl.load_models("toy", device="cpu", unet_path=args.unet, clip_path=args.clip)
        rows = reading(models, args.reading_views)
        print(f"what the guiding CLIP ({args.clip or 'shipped'}) reads on the card, in guidance's view")
        for word in dict.fromkeys(r["word"] for r in rows):
            mine = [r for r in rows if r["word"] == word]
            print(f"  {word:<9} read right {sum(r['right'] for r in mine)}/{len(mine)}: "
                  + " ".join(f"x{r['scale']} {r['ink']}->{r['read']}" for r in mine))
        for scale in (1, 2):
            mine = [r for r in rows if r["scale"] == scale]
            print(f"  scale {scale}: read right {sum(r['right'] for r in mine)}/{len(mine)}")
        print(f"  all: read right {sum(r['right'] for r in rows)}/{len(rows)} (chance 1/{len(SIGN_WORDS)})")
        if args.reading_views > 1:
            share = sum(r["views_right"] for r in rows) / len(rows)
            print(f"  in {args.reading_views} of guidance's views (1 unaugmented): read right {100 * share:.0f} %")
        if args.out:
            Path(args.out).write_text(json.dumps(dict(clip=args.clip, rows=rows), indent=1))
        return 0
    steps, skip = ("20", 5) if args.quick else ("100", 25)
    samples = 4 if args.quick else args.samples
    models = bl.load_models("toy", device="cpu", unet_path=args.unet, clip_path=args.clip)
    families = FAMILIES
    if args.families:
        families = tuple(f for f in FAMILIES if f[0].startswith(tuple(args.families)))
        if not families:
            p.error(f"no family starts with {' or '.join(args.families)}")
    rows = measure(models, samples, args.seed, steps, skip, families)
    print(f"typographic attack, generative (toy world; UNet {args.unet or 'shipped'}, CLIP {args.clip or 'shipped'}; "
          f"{steps} steps, {skip} skipped; read_text with tolerance 1)")
    print(f"  {'family':<17}{'prompt':<15}{'arm':<10}{'wrote a prompt word':<28}{'any text':<10}red")
    for r in rows:
        arm = "guided" if r["guided"] else "unguided"
        share = f"{r['wrote_prompt_word']}/{r['n']} ({100 * r['wrote_share']:.0f} %, {100 * r['wilson'][0]:.0f}-{100 * r['wilson'][1]:.0f})"
        print(f"  {r['family']:<17}{r['prompt']!r:<15}{arm:<10}{share:<28}{r['any_text']}/{r['n']:<8}{r['red']}/{r['n']}")
    if args.out:
        Path(args.out).write_text(json.dumps(dict(unet=args.unet, clip=args.clip, steps=steps, skip=skip,
                                                  rows=rows), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
