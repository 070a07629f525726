"""Views of signs for the toy CLIP, captioned only with what they spell out (as web captions do).

A sign view is a scene carrying a :class:`~blendlab.toyworld.world.Sign` (one word of
:data:`~blendlab.toyworld.world.SIGN_WORDS`, or a colour and a shape name, "RED CIRCLE"), seen through
a box around the sign (objects elsewhere stay outside it) or whole when the scene is otherwise empty.
Its true captions are exactly those whose every content word the sign spells: "RED CIRCLE" is "a red
circle", "a red shape", "a circle", "red", "circle"; "BLUE" is "blue" and "a blue shape". No other
caption (no background, no object it does not name) is ever paired with a sign, so whatever the
CLIP learns about the colour of a sign it learns by reading it.

A *sign scene* (:func:`sign_scene_view`) is the whole scene, the sign among one or two objects, as a
web photo of a shop front or a labelled product is: its caption is still only what the sign spells
out, and the captions true of its objects and background are left out of the loss for that view
(neither positives nor negatives: a caption that transcribes a sign says nothing about the rest).
A *blank card* (:func:`blank_card_box`, :func:`paint_card`) on an ordinary view keeps that view's
captions: a card says nothing until something is written on it, so only letters can carry a word.
A *notice view* (:func:`notice_view`) is a card of :data:`NOTICE_SIZE` with a word written on it, seen
as an edit's guidance sees an inpainted card: only the card's inside, the rest filled.

May import: toyworld.world.
"""

from __future__ import annotations

import numpy as np
import torch

from .world import (CARD, COLORS, DEFAULT_SIZE, SHAPES, SIGN_WORDS, _box, random_layout, random_sign,
                    random_signed_layout, render_scene, write_word)

__all__ = ["word_vocabulary", "spelled_out", "sign_words", "sign_view", "sign_scene_view", "blank_card_box", "paint_card",
           "NOTICE_SIZE", "notice_view"]

#: A notice card's size in pixels (w, h): a three-letter word at font scale 2 with a 2 px margin.
NOTICE_SIZE = (26, 14)


def word_vocabulary() -> list[tuple[str, dict]]:
    """The bare-word captions a sign can be true of: ``[("red", {"kind": "word", "word": "red"}), ...]``."""
    return [(w.lower(), dict(kind="word", word=w.lower())) for w in SIGN_WORDS]


def sign_words(word: str) -> set[str]:
    """The lower-case words a sign spells: ``sign_words("RED CIRCLE") == {"red", "circle"}``."""
    return {w.lower() for w in word.split()}


def spelled_out(meaning: dict, words: set[str]) -> bool:
    """Whether a caption's ``meaning`` is spelled out by a sign reading ``words``: every colour, shape
    or word it names is on the sign ("shape" names none), and it names no background or emptiness."""
    if meaning["kind"] == "word":
        return meaning["word"] in words
    if meaning["kind"] != "object" or "bg" in meaning:
        return False
    named = [meaning[k] for k in ("colour", "shape") if k in meaning]
    return bool(named) and all(n in words for n in named)


def _words_to_sign(rng: np.random.Generator, pairs: float) -> list[str]:
    """The words a sign is drawn from: with probability ``pairs`` one "{COLOUR} {SHAPE}", else SIGN_WORDS."""
    if rng.random() < pairs:
        return [f"{str(rng.choice(list(COLORS))).upper()} {str(rng.choice(SHAPES)).upper()}"]
    return list(SIGN_WORDS)


def sign_view(rng: np.random.Generator, size: int = DEFAULT_SIZE, pairs: float = 0.3):
    """One sign view before degradation: ``(image (3, S, S) in [-1, 1], mask (1, S, S), fill, word)``.
    ``pairs`` of the signs read "{COLOUR} {SHAPE}", the rest one word of SIGN_WORDS."""
    words = _words_to_sign(rng, pairs)
    empty = rng.random() < 0.4
    objects, background, sign = random_signed_layout(rng, size, 0 if empty else None, words=words)
    image = render_scene(objects, size, background, sign)[0]
    if empty:
        mask = torch.ones(1, size, size)
    else:
        margin = float(rng.uniform(0.0, 0.06))
        x0, y0, x1, y1 = sign.box
        mask = _box(size, (x0 - margin, y0 - margin, x1 + margin, y1 + margin))[0]
    fill = "grey" if rng.random() < 0.7 else "black"
    return image, mask, fill, sign.word


def sign_scene_view(rng: np.random.Generator, size: int = DEFAULT_SIZE, pairs: float = 0.3):
    """One sign scene, seen whole: ``(image (3, S, S) in [-1, 1], mask (1, S, S) of ones, fill, word,
    visible objects [(colour, shape)], background)``; one or two objects beside the sign."""
    words = _words_to_sign(rng, pairs)
    objects, background, sign = random_signed_layout(rng, size, int(rng.integers(1, 3)), words=words)
    image = render_scene(objects, size, background, sign)[0]
    fill = "grey" if rng.random() < 0.7 else "black"
    return image, torch.ones(1, size, size), fill, sign.word, [(o.colour, o.shape) for o in objects], background


def blank_card_box(rng: np.random.Generator, size: int = DEFAULT_SIZE):
    """Where a blank card goes in a scene still to be laid out: ``(fraction box, pixel box)`` sized
    for a random sign word on a card; lay the objects out around the fraction box
    (``random_layout(..., keep_free=box)``), then :func:`paint_card` the pixel box."""
    sign = random_sign(rng, (), "sand", size)
    x0, y0, x1, y1 = (int(round(v * size)) for v in sign.box)
    return sign.box, (x0, y0, x1, y1)


def paint_card(image: torch.Tensor, box) -> torch.Tensor:
    """``image`` (3, S, S) in [-1, 1] with a blank light card over the pixel ``box``; a new tensor."""
    out = image.clone()
    x0, y0, x1, y1 = box
    out[:, y0:y1, x0:x1] = torch.tensor(CARD, dtype=out.dtype).view(3, 1, 1) / 127.5 - 1
    return out


def notice_view(rng: np.random.Generator, size: int = DEFAULT_SIZE, pairs: float = 0.3):
    """One notice view: ``(image (3, S, S) in [-1, 1], mask (1, S, S), fill, word)``. A light card of
    :data:`NOTICE_SIZE` at a random pixel-aligned place, objects around it, a word written on it (as
    :func:`sign_view` draws them; redrawn until one fits the card), at scale 2 when it fits and a coin
    says so, else scale 1, black or a toy colour. The mask is the card's inside (1 px in from its edge),
    as an edit that inpaints the card masks it."""
    w, h = NOTICE_SIZE
    if size < w + 2:
        raise ValueError(f"a notice card is {w}x{h} px and needs a canvas of at least {w + 2} px, not {size}")
    x0, y0 = int(rng.integers(1, size - w)), int(rng.integers(1, size - h))
    box = (x0 / size, y0 / size, (x0 + w) / size, (y0 + h) / size)
    objects, background = random_layout(rng, keep_free=box)
    card = paint_card(render_scene(objects, size, background)[0], (x0, y0, x0 + w, y0 + h))[None]
    ink = "black" if rng.random() < 0.5 else str(rng.choice(list(COLORS)))
    scales = (2, 1) if rng.random() < 0.7 else (1,)
    inside = ((x0 + 1) / size, (y0 + 1) / size, (x0 + w - 1) / size, (y0 + h - 1) / size)
    image = None
    while image is None:  # "TRIANGLE" fits no notice card: draw another word
        word = str(rng.choice(_words_to_sign(rng, pairs)))
        for scale in scales:
            try:
                image = write_word(card, word, box=inside, colour=ink, scale=scale)
                break
            except ValueError:  # too wide at this scale
                continue
    mask = torch.zeros(1, size, size)
    mask[:, y0 + 1:y0 + h - 1, x0 + 1:x0 + w - 1] = 1
    fill = "grey" if rng.random() < 0.7 else "black"
    return image[0], mask, fill, word
