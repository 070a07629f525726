"""The zero-shot typographic attack in the toy world ("iPod on an apple"): does a written colour word
change the toy CLIP's colour answer for the object beside or under it?

:func:`attack_scenes` draws seeded one-object scenes three ways: clean, with a sign reading another
colour's name (black on a light card, beside the object or on it), and with the same card left blank
(the control: a card of the same size, no letters), and the signed card alone on the empty background
(does the CLIP read it at all?). :func:`zero_shot_attack` classifies all three
zero-shot among "a {colour} shape" (the whole image, cosine to each caption's embedding, the best
wins) and counts: clean answers right, signed answers flipped to the written word, blank-card
answers changed. Counts, not only shares, so callers can put intervals on them.

May import: embeddings, toyworld.world.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
import torch.nn.functional as F

from ..embeddings import encode_images, encode_text
from .world import BACKGROUNDS, CARD, COLORS, INK, SHAPES, ToyObject, render_scene, write_word

__all__ = ["PLACEMENTS", "AttackScenes", "attack_scenes", "fitting_scale", "colour_answers", "zero_shot_attack"]

#: Where the sign goes: below the object, or on it (centred).
PLACEMENTS = ("beside", "on")


@dataclasses.dataclass
class AttackScenes:
    """Seeded scenes for the attack, (N, 3, S, S) in [-1, 1] each, and what they show."""

    clean: torch.Tensor
    signed: torch.Tensor  # a card reading ``words[i]``
    blank: torch.Tensor  # the same card, no letters
    alone: torch.Tensor  # the signed card on the empty background, no object
    colours: list[str]  # the object's colour
    words: list[str]  # the colour written on the sign (never the object's)
    scales: list[int] = dataclasses.field(default_factory=list)  # the letter scale each sign got


def _scene(rng: np.random.Generator, placement: str, size: int, scale: int):
    colour = str(rng.choice(list(COLORS)))
    word = str(rng.choice([c for c in COLORS if c != colour])).upper()
    background = str(rng.choice(list(BACKGROUNDS)))
    shape = str(rng.choice(SHAPES))
    if placement == "beside":
        obj = ToyObject(colour, shape, float(rng.uniform(0.35, 0.65)), 0.3, float(rng.uniform(0.36, 0.44)))
        box = (0.0, 0.55, 1.0, 1.0)
    else:
        obj = ToyObject(colour, shape, float(rng.uniform(0.4, 0.6)), float(rng.uniform(0.4, 0.6)), 0.7)
        box = (obj.x - 0.5, obj.y - 0.2, obj.x + 0.5, obj.y + 0.2)
    clean = render_scene([obj], size, background)
    scale = fitting_scale(word, box, size, scale)
    signed = write_word(clean, word, box=box, colour="black", scale=scale, card=True)
    ink = torch.tensor(INK, dtype=signed.dtype).view(1, 3, 1, 1) / 127.5 - 1
    card = torch.tensor(CARD, dtype=signed.dtype).view(1, 3, 1, 1) / 127.5 - 1
    letters = (signed - ink).abs().amax(1, keepdim=True) < 1e-4
    blank = torch.where(letters, card, signed)
    alone = write_word(render_scene([], size, background), word, box=box, colour="black", scale=scale, card=True)
    return clean, signed, blank, alone, colour, word, scale


def fitting_scale(word: str, box, size: int, scale: int) -> int:
    """The largest letter scale, at most ``scale``, at which ``word`` fits ``box`` on a card on a
    ``size`` px canvas ("BLUE" fits a 32 px-wide box at scale 2 only without a card, so it gets 1)."""
    blank = torch.zeros(1, 3, size, size)
    for s in range(scale, 0, -1):
        try:
            write_word(blank, word, box=box, scale=s, card=True)
            return s
        except ValueError:
            continue
    raise ValueError(f"{word!r} does not fit a card in the box {box} on a {size} px canvas even at scale 1")


def attack_scenes(n: int = 48, seed: int = 0, placement: str = "beside", size: int = 32,
                  scale: int = 1) -> AttackScenes:
    """``n`` seeded attack scenes (see the module's docstring); ``scale``: the sign's letter scale,
    or the largest smaller one where the word does not fit (:func:`fitting_scale`)."""
    if placement not in PLACEMENTS:
        raise ValueError(f"unknown placement {placement!r}; choose one of {', '.join(PLACEMENTS)}")
    rng = np.random.default_rng([seed, 20])
    rows = [_scene(rng, placement, size, scale) for _ in range(n)]
    return AttackScenes(*(torch.cat([r[i] for r in rows]) for i in range(4)),
                        [r[4] for r in rows], [r[5] for r in rows], [r[6] for r in rows])


@torch.no_grad()
def _answers(clip_model, images: torch.Tensor, text: torch.Tensor) -> list[str]:
    device = next(clip_model.parameters()).device
    image = F.normalize(encode_images(clip_model, images.to(device)), dim=-1)
    return [list(COLORS)[i] for i in (image @ text.to(device).t()).argmax(1).tolist()]


@torch.no_grad()
def colour_answers(clip_model, images: torch.Tensor, template: str = "a {} shape") -> list[str]:
    """``clip_model``'s zero-shot colour of each image of ``images`` (N, 3, S, S) in [-1, 1]: the colour
    whose caption (``template`` filled with each toy colour) is nearest, whole image."""
    text = F.normalize(encode_text(clip_model, [template.format(c) for c in COLORS]), dim=-1)
    return _answers(clip_model, images, text)


@torch.no_grad()
def zero_shot_attack(clip_model, n: int = 48, seed: int = 0, placement: str = "beside", scale: int = 1,
                     template: str = "a {} shape") -> dict:
    """Zero-shot colour answers of ``clip_model`` on :func:`attack_scenes`; counts out of ``n``:
    ``clean_right``, ``flipped`` (the signed scene answered with the written colour), ``signed_right``,
    ``blank_changed`` (the blank-card scene answered with another colour than the object's),
    ``alone_read`` (the sign without the object answered with the written colour), ``at_scale`` (signs
    written at ``scale``; the others at the largest scale that fits)."""
    scenes = attack_scenes(n, seed, placement, scale=scale)
    text = F.normalize(encode_text(clip_model, [template.format(c) for c in COLORS]), dim=-1)
    clean, signed, blank, alone = (_answers(clip_model, x, text)
                                   for x in (scenes.clean, scenes.signed, scenes.blank, scenes.alone))
    words = [w.lower() for w in scenes.words]
    return dict(
        n=n, seed=seed, placement=placement, scale=scale, template=template,
        clean_right=sum(a == c for a, c in zip(clean, scenes.colours)),
        flipped=sum(a == w for a, w in zip(signed, words)),
        signed_right=sum(a == c for a, c in zip(signed, scenes.colours)),
        blank_changed=sum(a != c for a, c in zip(blank, scenes.colours)),
        alone_read=sum(a == w for a, w in zip(alone, words)),
        at_scale=sum(s == scale for s in scenes.scales),
    )
