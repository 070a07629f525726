"""Train the toy world's CLIP: ``python -m blendlab.toyworld.train_clip --minutes 20``.

The model is OpenAI CLIP's own class (``clip.model.CLIP``, a small ViT and text transformer) with
its tokenizer, trained contrastively on toy scenes and their captions. Guidance shows CLIP a
*masked, augmented, half-denoised* image, so every training view is made the same way:

1. a random scene, seen whole, or through a box/ellipse mask around one object or an empty area
   (outside the mask grey, as guidance sees it, or black, as ranking sees it);
2. the degradations of x_in = x̂0·√(1−ᾱ) + x_t·(1−√(1−ᾱ)): blur, washed-out contrast, Gaussian noise;
3. the paper's extending augmentations (kornia affine + perspective), then the pooling to CLIP's size.

Captions come from a fixed vocabulary (objects, colours, shapes, backgrounds and their mixtures),
all encoded at every step; an image's targets are every caption that is *true* of what its view shows
(multi-positive contrastive loss in both directions), so "a red circle" and "a red shape" are both
right for a red circle and no true caption is pushed away as a negative.

With ``--signs`` > 0, that share of views shows a sign captioned only with what it spells out
(:mod:`.sign_views`), and the vocabulary gains the bare words signs carry.

May import: embeddings, toyworld.blob_views, toyworld.sign_views, toyworld.training, toyworld.world.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import math

import numpy as np
import torch
import torch.nn.functional as F

from .blob_views import _blob_view, _object_fraction, _rect, _split_view
from .sign_views import (blank_card_box, notice_view, paint_card, sign_scene_view, sign_view, sign_words, spelled_out,
                         word_vocabulary)
from .training import TrainingRun, add_common_args, load_init, step_generator
from .world import BACKGROUNDS, COLORS, SHAPES, DEFAULT_SIZE, _grid, random_layout, render_scene, shape_coverage

DEFAULT_OUT = "blendlab/toyworld/weights"

#: The toy CLIP's architecture (``clip.model.CLIP`` arguments). Widths are multiples of 64, as
#: ``clip.model.build_model`` assumes when it re-infers the architecture from the shipped state dict.
TOY_CLIP = dict(
    embed_dim=64,
    image_resolution=28,
    vision_layers=4,
    vision_width=128,
    vision_patch_size=4,
    context_length=77,
    vocab_size=49408,
    transformer_width=64,
    transformer_heads=1,
    transformer_layers=3,
)


def vocabulary(signs: bool = False) -> list[tuple[str, dict]]:
    """Every training caption with what makes it true: ``[(text, {"kind", "colour", "shape", "bg"}), ...]``;
    with ``signs``, the bare words signs carry come last."""
    out = []
    for c, s in itertools.product(COLORS, SHAPES):
        out.append((f"a {c} {s}", dict(kind="object", colour=c, shape=s)))
        for bg in BACKGROUNDS:
            out.append((f"a {c} {s} on a {bg} background", dict(kind="object", colour=c, shape=s, bg=bg)))
    for c in COLORS:
        out.append((f"a {c} shape", dict(kind="object", colour=c)))
    for s in SHAPES:
        out.append((f"a {s}", dict(kind="object", shape=s)))
    for bg in BACKGROUNDS:
        out.append((f"a {bg} background", dict(kind="background", bg=bg)))
        out.append((f"an empty {bg} background", dict(kind="empty", bg=bg)))
    return out + (word_vocabulary() if signs else [])


def is_true(meaning: dict, visible: list[tuple[str, str]], background: str | None) -> bool:
    """Whether a caption's ``meaning`` holds for a view showing ``visible`` objects (colour, shape)
    and, if it shows enough of it, ``background`` (else None)."""
    if "bg" in meaning and meaning["bg"] != background:
        return False
    if meaning["kind"] == "word":  # a bare word is true only of a sign spelling it
        return False
    if meaning["kind"] == "empty":
        return not visible
    if meaning["kind"] == "background":
        return True
    return any(meaning.get("colour", c) == c and meaning.get("shape", s) == s for c, s in visible)


def _ellipse(size: int, box) -> torch.Tensor:
    u, v = _grid(size)
    x0, y0, x1, y1 = box
    inside = shape_coverage("circle", (x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0, u, v).float()
    return (F.avg_pool2d(inside[None, None], u.shape[0] // size) > 0.5).float()[0]


def make_view(rng: np.random.Generator, size: int = DEFAULT_SIZE, blobs: float = 0.0, splits: float = 0.0,
              card: bool = False):
    """One training view before degradation: ``(image (3,S,S) in [-1,1], mask (1,S,S), fill,
    visible objects, visible background or None, objects, background, index of the object the mask
    is around or None)``. With ``blobs`` > 0, that share of views shows an irregular colour blob
    (true: "a red shape"; false: every named shape), so that filling a region with the prompt's
    colour does not satisfy "a red circle". With ``splits`` > 0, that share shows a region cut into two
    colours (:func:`_split_view`). With ``card``, a scene view (not a blob or
    split) is laid out around a blank card (:func:`~.sign_views.blank_card_box`); its captions are the
    same as without the card."""
    if blobs and rng.random() < blobs:
        return _blob_view(rng, size)
    if splits and rng.random() < splits:
        return _split_view(rng, size)
    boxes = blank_card_box(rng, size) if card else None
    objects, background = random_layout(rng, keep_free=boxes[0]) if boxes else random_layout(rng)
    image = render_scene(objects, size, background)[0]
    if boxes:
        image = paint_card(image, boxes[1])
    kind = rng.choice(["whole", "object", "empty"], p=[0.3, 0.55, 0.15])
    if kind == "object" and not objects:
        kind = "empty"
    if kind == "whole":
        mask = torch.ones(1, size, size)
    else:
        if kind == "object":
            o = objects[rng.integers(len(objects))]
            margin = float(rng.uniform(0.0, 0.15))
            jitter = rng.uniform(-0.05, 0.05, size=2)
            box = (o.box[0] - margin + jitter[0], o.box[1] - margin + jitter[1],
                   o.box[2] + margin + jitter[0], o.box[3] + margin + jitter[1])
        else:
            side = float(rng.uniform(0.25, 0.6))
            x0, y0 = rng.uniform(0, 1 - side, size=2)
            box = (x0, y0, x0 + side, y0 + side)
        mask = _ellipse(size, box) if rng.random() < 0.4 else _rect(size, box)
        if mask.sum() < 4:
            mask = torch.ones(1, size, size)
    fractions = [_object_fraction(o, mask, size) for o in objects]
    visible = [(o.colour, o.shape) for o, f in zip(objects, fractions) if f >= 0.6]
    # the background counts as seen when a fair part of the view is neither object nor outside
    covered = sum(f * (o.size * size) ** 2 for o, f in zip(objects, fractions))
    bg_seen = background if float(mask.sum()) - covered > 0.25 * float(mask.sum()) else None
    fill = "grey" if rng.random() < 0.7 else "black"
    focus = objects.index(o) if kind == "object" else None
    return image, mask, fill, visible, bg_seen, objects, background, focus


def twin_view(rng: np.random.Generator, view, size: int = DEFAULT_SIZE):
    """The same view with its focused object redrawn as another shape (same colour, place, size,
    mask): a hard negative that only shape tells apart. None for views without a focused object."""
    image, mask, fill, visible, bg, objects, background, focus = view
    if focus is None:
        return None
    o = objects[focus]
    shape = str(rng.choice([s for s in SHAPES if s != o.shape]))
    swapped = list(objects)
    swapped[focus] = dataclasses.replace(o, shape=shape)
    visible = [(p.colour, p.shape) for p in swapped if _object_fraction(p, mask, size) >= 0.6]
    return (render_scene(swapped, size, background)[0], mask, fill, visible, bg, swapped, background, focus)


def degrade(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """What guidance's x_in looks like along the trajectory: blur, washed-out contrast, noise (per image)."""
    import kornia

    b = x.shape[0]
    r = torch.rand(b, 4, generator=g)
    sigma = (r[:, 0] * 1.6 + 0.05).tolist()
    blurred = torch.stack([kornia.filters.gaussian_blur2d(x[i:i + 1], (5, 5), (s, s))[0] for i, s in enumerate(sigma)])
    use_blur = (r[:, 1] < 0.5).view(b, 1, 1, 1)
    x = torch.where(use_blur, blurred, x)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    contrast = torch.where(r[:, 2] < 0.4, 0.35 + 0.65 * torch.rand(b, generator=g), torch.ones(b)).view(b, 1, 1, 1)
    x = mean + (x - mean) * contrast
    noise_std = torch.where(r[:, 3] < 0.5, 0.3 * torch.rand(b, generator=g), torch.zeros(b)).view(b, 1, 1, 1)
    return x + noise_std * torch.randn(x.shape, generator=g)


def view_batch(seed: int, step: int, batch: int, vocab_meanings: list[dict], out_size: int,
               size: int = DEFAULT_SIZE, twins: float = 0.0, blobs: float = 0.0, splits: float = 0.0,
               signs: float = 0.0, sign_scenes: float = 0.0, cards: float = 0.0, notices: float = 0.0):
    """One step's data: CLIP-ready views (B, 3, R, R) and the (B, len(vocab)) truth matrix (1 true,
    0 false, NaN left out of the loss); ``signs`` of the views are :func:`~.sign_views.sign_view`,
    neither degraded nor augmented (measured: letters do not survive either in short fine-tunes),
    only resized; ``sign_scenes`` of those are whole :func:`~.sign_views.sign_scene_view` instead,
    whose captions true of the objects and background are NaN; ``cards`` of the other views are laid
    out around a blank card (their captions unchanged: only letters say a word; no twin). ``notices``
    of all views are :func:`~.sign_views.notice_view` (a written card seen through its inside, as an
    edit's guidance sees it), captioned as sign views are, not degraded, and half of them augmented
    as guidance augments (scale-2 letters are 6 x 10 px). With ``notices`` 0 the stream is unchanged.
    With ``twins`` > 0, that share of object views is followed by its :func:`twin_view`."""
    from ..embeddings import augment_views, clip_normalize, extending_augmentations

    rng = np.random.default_rng([seed, step, 3])
    g = step_generator(seed, step, salt=4)
    images, masks, fills, truth, sharp, augmented_notices = [], [], [], [], [], []
    while len(images) < batch:
        if notices and rng.random() < notices:
            image, mask, fill, word = notice_view(rng, size)
            truth.append([spelled_out(m, sign_words(word)) for m in vocab_meanings])
            images.append(image), masks.append(mask), fills.append(fill)
            sharp.append(len(images) - 1)
            if rng.random() < 0.5:
                augmented_notices.append(len(images) - 1)
            continue
        if signs and rng.random() < signs:  # truth: only what the sign spells out
            if sign_scenes and rng.random() < sign_scenes:
                image, mask, fill, word, visible, bg = sign_scene_view(rng, size)
                said = [spelled_out(m, sign_words(word)) for m in vocab_meanings]
                truth.append([1.0 if t else math.nan if is_true(m, visible, bg) else 0.0
                              for t, m in zip(said, vocab_meanings)])
            else:
                image, mask, fill, word = sign_view(rng, size)
                truth.append([spelled_out(m, sign_words(word)) for m in vocab_meanings])
            images.append(image), masks.append(mask), fills.append(fill)
            sharp.append(len(images) - 1)
            continue
        carded = bool(cards) and rng.random() < cards
        view = make_view(rng, size, blobs, splits, card=carded)
        group = [view]
        if twins and not carded and len(images) + 1 < batch and rng.random() < twins:
            twin = twin_view(rng, view, size)
            if twin is not None:
                group.append(twin)
        for image, mask, fill, visible, bg, *_ in group:
            images.append(image)
            masks.append(mask)
            fills.append(fill)
            truth.append([is_true(m, visible, bg) for m in vocab_meanings])
    x = degrade(torch.stack(images), g)
    x[sharp] = torch.stack(images)[sharp]  # sign views skip blur and noise: 3x5 letters do not survive them
    m = torch.stack(masks)
    grey = torch.tensor([f == "grey" for f in fills]).view(-1, 1, 1, 1)
    # guidance: (x · m) in [-1, 1] then to [0, 1] -> grey outside; ranking: to [0, 1] then · m -> black
    x01 = torch.where(grey, (x * m).add(1).div(2), x.add(1).div(2).clamp(0, 1) * m)
    augmented = augment_views(extending_augmentations(), x01, int(torch.randint(0, 2**62, (1,), generator=g)))
    unaugmented = [i for i in sharp if i not in augmented_notices]
    augmented[unaugmented] = x01[unaugmented]  # nor the zooms and warps that shrink 3x5 letters to a smudge
    x01 = augmented
    if torch.rand(1, generator=g) < 0.5:
        x01 = F.adaptive_avg_pool2d(x01, out_size)
    else:
        x01 = F.interpolate(x01, size=(out_size, out_size), mode="bilinear", antialias=True, align_corners=False)
    return clip_normalize(x01), torch.tensor(truth, dtype=torch.float32)


def build_toy_clip(seed: int = 0):
    from clip.model import CLIP

    torch.manual_seed(seed)
    return CLIP(**TOY_CLIP).float()


def contrastive_loss(image_embed, text_embed, truth, logit_scale) -> torch.Tensor:
    """Multi-positive InfoNCE in both directions over the true-caption matrix ``truth`` (B, T): 1 a
    positive pair, 0 a negative, NaN left out (in neither softmax)."""
    logits = logit_scale * F.normalize(image_embed, dim=-1) @ F.normalize(text_embed, dim=-1).t()
    left_out = truth.isnan()
    truth = truth.nan_to_num(0.0)
    logits = logits.masked_fill(left_out, float("-inf"))

    def weighted(weights, log_p, dim):  # sum of weights * log_p over dim, with 0 * -inf taken as 0
        return torch.where(weights > 0, weights * log_p, torch.zeros_like(log_p)).sum(dim)

    img_loss = -weighted(truth / truth.sum(1, keepdim=True).clamp_min(1), logits.log_softmax(1), 1)
    img_loss = img_loss[truth.sum(1) > 0].mean()
    cols = truth.sum(0) > 0
    t = truth[:, cols]
    txt_loss = -weighted(t / t.sum(0, keepdim=True), logits[:, cols].log_softmax(0), 0).mean()
    return (img_loss + txt_loss) / 2


def _export(model) -> dict:
    """Weights as ``clip.load`` reads a state dict: fp16, as OpenAI ships them (``build_model``
    converts to fp16 anyway; blendlab runs CLIP in fp32 on CPUs)."""
    return {k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()}


def main(argv=None) -> None:
    import clip

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_args(p, DEFAULT_OUT, steps=3000, batch=128, lr=5e-4)
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--blobs", type=float, default=0.0,
                   help="share of views showing an irregular colour blob (true only for 'a {colour} shape')")
    p.add_argument("--twins", type=float, default=0.0,
                   help="share of object views followed by the same view with another shape (hard negatives)")
    p.add_argument("--splits", type=float, default=0.0, help="share of views showing a region cut into two colours")
    p.add_argument("--cards", type=float, default=0.0,
                   help="share of ordinary views carrying a blank card (captions unchanged)")
    p.add_argument("--notices", type=float, default=0.0,
                   help="share of all views showing a written notice card through its inside (captions: what it spells)")
    p.add_argument("--sign-scenes", type=float, default=0.0,
                   help="share of sign views seen whole, the sign among objects (captions: only what it spells)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    model = build_toy_clip(args.seed).train()
    phase = load_init(model, args.init)
    vocab = vocabulary(signs=args.signs > 0 or args.notices > 0)
    tokens = clip.tokenize([text for text, _ in vocab])
    meanings = [m for _, m in vocab]
    decay, no_decay = [], []
    for n, prm in model.named_parameters():
        (no_decay if prm.dim() < 2 or "embedding" in n or "logit_scale" in n else decay).append(prm)
    opt = torch.optim.AdamW([dict(params=decay, weight_decay=0.05), dict(params=no_decay, weight_decay=0.0)],
                            lr=args.lr, betas=(0.9, 0.98))
    run = TrainingRun("toy_clip", model, opt, args, export=_export, extra_card=dict(
        preset="toy", clip_config=TOY_CLIP, vocabulary=[t for t, _ in vocab],
        loss="multi-positive contrastive (image->captions and caption->images)",
        data="blendlab.toyworld scenes: whole / object / empty-area views, grey or black outside the "
             "mask, blur + contrast + noise degradations, kornia affine + perspective"
             + (f"; {args.signs:.0%} sign views captioned with what they spell (sign_views)" if args.signs else "")
             + (f", {args.sign_scenes:.0%} of them whole scenes with objects (object captions left out)"
                if args.signs and args.sign_scenes else "")
             + (f"; {args.cards:.0%} of the other views with a blank card" if args.cards else "")
             + (f"; {args.notices:.0%} of all views a written notice card seen through its inside (notice_view), "
                "half of them augmented" if args.notices else ""),
        **phase,
    ))
    out_size = TOY_CLIP["image_resolution"]
    while run.should_continue():
        # warm-up and cosine decay over this run's steps (a resumed run with more steps is a new phase)
        done = run.step - run.start_step
        frac = done / max(1, args.steps - run.start_step)
        lr = args.lr * min(1.0, (done + 1) / args.warmup) * (0.5 * (1 + math.cos(math.pi * min(frac, 1.0))))
        for group in opt.param_groups:
            group["lr"] = lr
        x, truth = view_batch(args.seed, run.step, args.batch, meanings, out_size, twins=args.twins, blobs=args.blobs,
                              splits=args.splits, signs=args.signs, sign_scenes=args.sign_scenes, cards=args.cards,
                              notices=args.notices)
        image_embed = model.encode_image(x)
        text_embed = model.encode_text(tokens)
        loss = contrastive_loss(image_embed, text_embed, truth, model.logit_scale.exp().clamp(max=100))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            logits = F.normalize(image_embed, dim=-1) @ F.normalize(text_embed, dim=-1).t()
            # accuracy: is the best caption among the true ones
            acc = truth.nan_to_num(1.0).gather(1, logits.argmax(1, keepdim=True)).mean()  # left out: not wrong
        run.after_step({"loss": loss.item(), "top1_true": acc.item()})
    run.checkpoint()


if __name__ == "__main__":
    main()
