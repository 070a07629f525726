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

May import: embeddings, toyworld.training, toyworld.world.
"""

from __future__ import annotations

import argparse
import itertools
import math

import numpy as np
import torch
import torch.nn.functional as F

from .training import TrainingRun, add_common_args, step_generator
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


def vocabulary() -> list[tuple[str, dict]]:
    """Every training caption with what makes it true: ``[(text, {"kind", "colour", "shape", "bg"}), ...]``."""
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
    return out


def is_true(meaning: dict, visible: list[tuple[str, str]], background: str | None) -> bool:
    """Whether a caption's ``meaning`` holds for a view showing ``visible`` objects (colour, shape)
    and, if it shows enough of it, ``background`` (else None)."""
    if "bg" in meaning and meaning["bg"] != background:
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


def _rect(size: int, box) -> torch.Tensor:
    m = torch.zeros(1, size, size)
    x0, y0, x1, y1 = (min(max(b, 0.0), 1.0) for b in box)
    m[:, round(y0 * size):max(round(y1 * size), round(y0 * size) + 1),
      round(x0 * size):max(round(x1 * size), round(x0 * size) + 1)] = 1
    return m


def _object_fraction(obj, mask: torch.Tensor, size: int) -> float:
    u, v = _grid(size)
    inside = shape_coverage(obj.shape, obj.x, obj.y, obj.size, obj.size, u, v).float()
    area = F.avg_pool2d(inside[None, None], u.shape[0] // size)[0]
    return float((area * mask).sum() / area.sum().clamp_min(1e-6))


def make_view(rng: np.random.Generator, size: int = DEFAULT_SIZE):
    """One training view before degradation: ``(image (3,S,S) in [-1,1], mask (1,S,S), fill,
    visible objects, visible background or None)``."""
    objects, background = random_layout(rng)
    image = render_scene(objects, size, background)[0]
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
    visible = [(o.colour, o.shape) for o in objects if _object_fraction(o, mask, size) >= 0.6]
    # the background counts as seen when a fair part of the view is neither object nor outside
    covered = sum(_object_fraction(o, mask, size) * (o.size * size) ** 2 for o in objects)
    bg_seen = background if float(mask.sum()) - covered > 0.25 * float(mask.sum()) else None
    fill = "grey" if rng.random() < 0.7 else "black"
    return image, mask, fill, visible, bg_seen


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
               size: int = DEFAULT_SIZE):
    """One step's data: CLIP-ready views (B, 3, R, R) and the (B, len(vocab)) truth matrix."""
    import kornia.augmentation as K

    from ..embeddings import clip_normalize

    rng = np.random.default_rng([seed, step, 3])
    g = step_generator(seed, step, salt=4)
    images, masks, fills, truth = [], [], [], []
    for _ in range(batch):
        image, mask, fill, visible, bg = make_view(rng, size)
        images.append(image)
        masks.append(mask)
        fills.append(fill)
        truth.append([is_true(m, visible, bg) for m in vocab_meanings])
    x = degrade(torch.stack(images), g)
    m = torch.stack(masks)
    grey = torch.tensor([f == "grey" for f in fills]).view(-1, 1, 1, 1)
    # guidance: (x · m) in [-1, 1] then to [0, 1] -> grey outside; ranking: to [0, 1] then · m -> black
    x01 = torch.where(grey, (x * m).add(1).div(2), x.add(1).div(2).clamp(0, 1) * m)
    aug = torch.nn.Sequential(K.RandomAffine(degrees=15, translate=0.1, p=0.7, padding_mode="border"),
                              K.RandomPerspective(0.7, p=0.7))
    with torch.random.fork_rng():
        torch.manual_seed(int(torch.randint(0, 2**62, (1,), generator=g)))
        x01 = aug(x01)
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
    """Multi-positive InfoNCE in both directions over the true-caption matrix ``truth`` (B, T)."""
    logits = logit_scale * F.normalize(image_embed, dim=-1) @ F.normalize(text_embed, dim=-1).t()
    img_loss = -(truth / truth.sum(1, keepdim=True).clamp_min(1) * logits.log_softmax(1)).sum(1)
    img_loss = img_loss[truth.sum(1) > 0].mean()
    cols = truth.sum(0) > 0
    t = truth[:, cols]
    txt_loss = -(t / t.sum(0, keepdim=True) * logits[:, cols].log_softmax(0)).sum(0).mean()
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
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    model = build_toy_clip(args.seed).train()
    vocab = vocabulary()
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
             "mask, blur + contrast + noise degradations, kornia affine + perspective",
    ))
    out_size = TOY_CLIP["image_resolution"]
    while run.should_continue():
        frac = run.step / max(1, args.steps)
        lr = args.lr * min(1.0, (run.step + 1) / args.warmup) * (0.5 * (1 + math.cos(math.pi * min(frac, 1.0))))
        for group in opt.param_groups:
            group["lr"] = lr
        x, truth = view_batch(args.seed, run.step, args.batch, meanings, out_size)
        image_embed = model.encode_image(x)
        text_embed = model.encode_text(tokens)
        loss = contrastive_loss(image_embed, text_embed, truth, model.logit_scale.exp().clamp(max=100))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            logits = F.normalize(image_embed, dim=-1) @ F.normalize(text_embed, dim=-1).t()
            # accuracy: is the best caption among the true ones
            acc = truth.gather(1, logits.argmax(1, keepdim=True)).mean()
        run.after_step({"loss": loss.item(), "top1_true": acc.item()})
    run.checkpoint()


if __name__ == "__main__":
    main()
