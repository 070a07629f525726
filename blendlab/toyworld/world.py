"""The toy world: coloured shapes on soft two-tone backgrounds, drawn by code, with captions.

A scene is a list of :class:`ToyObject` (colour, shape, centre and size as fractions of the canvas)
on a named background. :func:`render_scene` draws it anti-aliased (4× supersampled) as a
``(1, 3, S, S)`` tensor in [-1, 1], the library's image convention; :func:`random_layout` /
:func:`random_scene` draw seeded random scenes, the training data of the toy UNet and CLIP.

Scenes can carry writing: :func:`write_word` writes capitals of the pixel font (:mod:`.font`) in black
or a toy colour, hard-edged, optionally on a light card; a :class:`Sign` is such a word placed in a
scene (``render_scene(..., sign=...)``; :func:`random_sign` places one in free space). A scene without
a sign draws exactly as before signs existed.

The world knows nothing of models or of the sampler.

May import: masks, toyworld.font.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..masks import box_mask
from .font import text_bitmap, text_size

__all__ = [
    "COLORS",
    "SHAPES",
    "BACKGROUNDS",
    "DEFAULT_SIZE",
    "ToyObject",
    "render_scene",
    "random_layout",
    "random_scene",
    "caption",
    "parse_caption",
    "scene_caption",
    "shape_coverage",
    "object_mask",
    "empty_box",
    "INK",
    "CARD",
    "SIGN_WORDS",
    "Sign",
    "sign_lines",
    "write_word",
    "random_sign",
    "random_signed_layout",
]

#: Object colours (sRGB 0..255). Saturated, so the judge can tell them from every background.
COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (40, 80, 220),
    "yellow": (240, 210, 40),
}

SHAPES: tuple[str, ...] = ("circle", "square", "triangle")

#: Backgrounds: a vertical gradient from the first tone (top) to the second (bottom); unsaturated.
BACKGROUNDS: dict[str, tuple[tuple[int, int, int], tuple[int, int, int]]] = {
    "white": ((238, 236, 228), (200, 198, 190)),
    "black": ((52, 52, 60), (18, 18, 22)),
    "sand": ((205, 190, 155), (165, 150, 115)),
}

#: Side of the toy preset's images (the trained UNet works at this size).
DEFAULT_SIZE = 32

_SUPERSAMPLE = 4


@dataclasses.dataclass(frozen=True)
class ToyObject:
    """One shape. ``x``, ``y``: centre, ``size``: side of its bounding box, all as fractions of the
    canvas side (so a scene draws the same at any resolution). Triangles stand upright."""

    colour: str
    shape: str
    x: float = 0.5
    y: float = 0.5
    size: float = 0.4

    def __post_init__(self):
        if self.colour not in COLORS:
            raise ValueError(f"unknown colour {self.colour!r}; choose one of {', '.join(COLORS)}")
        if self.shape not in SHAPES:
            raise ValueError(f"unknown shape {self.shape!r}; choose one of {', '.join(SHAPES)}")
        if not 0 < self.size <= 1:
            raise ValueError(f"size is a fraction of the canvas in (0, 1], got {self.size}")

    @property
    def caption(self) -> str:
        return caption(self.colour, self.shape)

    @property
    def box(self) -> tuple[float, float, float, float]:
        """(x0, y0, x1, y1) of the bounding box, as fractions of the canvas."""
        h = self.size / 2
        return (self.x - h, self.y - h, self.x + h, self.y + h)


def caption(colour: str, shape: str) -> str:
    """The caption of one object: ``caption("red", "circle") == "a red circle"``."""
    return f"a {colour} {shape}"


def parse_caption(prompt: str | None) -> tuple[str | None, str | None]:
    """What a toy prompt asks for: ``("red", "circle")`` for "a red circle", ``("red", None)`` for "a red
    shape", ``(None, None)`` for anything else (case and spacing ignored): the inverse of :func:`caption`."""
    words = (prompt or "").lower().split()
    if len(words) != 3 or words[0] != "a" or words[1] not in COLORS:
        return None, None
    if words[2] == "shape":
        return words[1], None
    return (words[1], words[2]) if words[2] in SHAPES else (None, None)


def scene_caption(objects: Sequence[ToyObject], background: str | None = None) -> str:
    """"a red circle and a blue square on a sand background" (objects in the given order)."""
    text = " and ".join(o.caption for o in objects) if objects else "nothing"
    return f"{text} on a {background} background" if background else text


def _grid(size: int, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel-centre coordinates in [0, 1] of a supersampled canvas, (n, n) each (v = rows)."""
    n = size * _SUPERSAMPLE
    c = (torch.arange(n, device=device, dtype=torch.float32) + 0.5) / n
    v, u = torch.meshgrid(c, c, indexing="ij")
    return u, v


def shape_coverage(shape: str, x: float, y: float, w: float, h: float, u, v) -> torch.Tensor:
    """Boolean inside-test of a shape fitted to the box centred at (x, y) of width w, height h,
    on coordinate grids ``u`` (columns) and ``v`` (rows). A circle fitted to a non-square box is an
    ellipse (the judge fits shapes to what it sees)."""
    if shape == "circle":
        return ((u - x) / (w / 2)) ** 2 + ((v - y) / (h / 2)) ** 2 <= 1
    if shape == "square":
        return ((u - x).abs() <= w / 2) & ((v - y).abs() <= h / 2)
    if shape == "triangle":
        depth = (v - (y - h / 2)) / h  # 0 at the apex, 1 at the base
        return (depth >= 0) & (depth <= 1) & ((u - x).abs() <= depth * w / 2)
    raise ValueError(f"unknown shape {shape!r}; choose one of {', '.join(SHAPES)}")


def _background(name: str, size: int) -> torch.Tensor:
    if name not in BACKGROUNDS:
        raise ValueError(f"unknown background {name!r}; choose one of {', '.join(BACKGROUNDS)}")
    top, bottom = (torch.tensor(c, dtype=torch.float32) / 255 for c in BACKGROUNDS[name])
    ramp = ((torch.arange(size, dtype=torch.float32) + 0.5) / size).view(1, size, 1)
    return (top.view(3, 1, 1) * (1 - ramp) + bottom.view(3, 1, 1) * ramp).expand(3, size, size)


def render_scene(objects: Sequence[ToyObject] = (), size: int | None = None,
                 background: str | None = None, sign: "Sign | None" = None) -> torch.Tensor:
    """Draw ``objects`` (later ones on top) on ``background`` ("sand" by default), then ``sign``.

    Returns ``(1, 3, size, size)`` float32 in [-1, 1]; ``size`` defaults to :data:`DEFAULT_SIZE`, the
    toy preset's ``models.image_size``.
    """
    size = int(size or DEFAULT_SIZE)
    if size < 8:
        raise ValueError(f"size must be at least 8 pixels, got {size}")
    canvas = _background(background or "sand", size).clone()
    u, v = _grid(size)
    for obj in objects:
        if not isinstance(obj, ToyObject):
            raise TypeError(f"objects must be ToyObject instances, got {type(obj).__name__}")
        inside = shape_coverage(obj.shape, obj.x, obj.y, obj.size, obj.size, u, v).float()
        alpha = F.avg_pool2d(inside[None, None], _SUPERSAMPLE)[0]  # anti-aliased coverage
        colour = torch.tensor(COLORS[obj.colour], dtype=torch.float32).view(3, 1, 1) / 255
        canvas = canvas * (1 - alpha) + colour * alpha
    image = canvas.unsqueeze(0).mul(2).sub(1)
    if sign is not None:
        image = write_word(image, sign.word, box=sign.box, colour=sign.colour, scale=sign.scale, card=sign.card)
    return image


def _overlaps(box, boxes, gap: float) -> bool:
    return any(not (box[2] + gap <= b[0] or b[2] + gap <= box[0] or box[3] + gap <= b[1] or b[3] + gap <= box[1])
               for b in boxes)


def random_layout(seed: int | np.random.Generator, n_objects: int | None = None,
                  size_range: tuple[float, float] = (0.28, 0.44),
                  keep_free: tuple[float, float, float, float] | None = None,
                  ) -> tuple[list[ToyObject], str]:
    """A seeded random scene: ``(objects, background)``.

    ``n_objects`` defaults to 0–3 (mostly 1–2); objects never overlap and stay inside the canvas;
    ``keep_free`` = (x0, y0, x1, y1) in canvas fractions is left empty (e.g. where a mask will go).
    """
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    if n_objects is None:
        n_objects = int(rng.choice(4, p=[0.05, 0.45, 0.35, 0.15]))
    background = str(rng.choice(list(BACKGROUNDS)))
    objects: list[ToyObject] = []
    boxes = [keep_free] if keep_free is not None else []
    tries = 0
    while len(objects) < n_objects and tries < 200:
        tries += 1
        s = float(rng.uniform(*size_range))
        x, y = (float(rng.uniform(s / 2 + 0.03, 1 - s / 2 - 0.03)) for _ in range(2))
        obj = ToyObject(str(rng.choice(list(COLORS))), str(rng.choice(SHAPES)), x, y, s)
        if _overlaps(obj.box, boxes, gap=0.04):
            continue
        objects.append(obj)
        boxes.append(obj.box)
    return objects, background


def random_scene(seed: int, size: int | None = None, n_objects: int | None = None,
                 keep_free: tuple[float, float, float, float] | None = None, sign: float = 0.0):
    """A seeded random scene drawn: ``(image (1, 3, S, S) in [-1, 1], objects)``.

    With ``sign`` > 0 (a probability), the scene carries a :func:`random_sign` that often and the
    result is ``(image, objects, sign or None)`` (a signed scene places its sign first and keeps only
    the sign's box free, not ``keep_free``); with the default 0 the draw is the one of before."""
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    if not sign:
        objects, background = random_layout(rng, n_objects, keep_free=keep_free)
        return render_scene(objects, size, background), objects
    if rng.random() < sign:
        objects, background, placed = random_signed_layout(rng, size, n_objects)
    else:
        (objects, background), placed = random_layout(rng, n_objects, keep_free=keep_free), None
    return render_scene(objects, size, background, placed), objects, placed


def object_mask(obj: ToyObject, size: int | None = None, margin: float = 0.06) -> torch.Tensor:
    """``(1, 1, S, S)`` {0, 1} box mask around ``obj``, ``margin`` (canvas fraction) wider on each side."""
    size = int(size or DEFAULT_SIZE)
    x0, y0, x1, y1 = obj.box
    return _box(size, (x0 - margin, y0 - margin, x1 + margin, y1 + margin))


def _box(size: int, box) -> torch.Tensor:
    """``masks.box_mask`` of ``box`` clamped to the canvas: (1, 1, S, S)."""
    return box_mask(size, tuple(min(max(b, 0.0), 1.0) for b in box))


def empty_box(objects: Sequence[ToyObject], side: float = 0.5, size: int | None = None,
              ) -> tuple[torch.Tensor, tuple[float, float, float, float]]:
    """The square region of side ``side`` (canvas fraction) farthest from every object, as a
    ``(1, 1, S, S)`` mask and its (x0, y0, x1, y1) box. Raises ValueError when none is free."""
    size = int(size or DEFAULT_SIZE)
    best, best_gap = None, -1.0
    steps = np.linspace(0, 1 - side, 9)
    for y0 in steps:
        for x0 in steps:
            box = (float(x0), float(y0), float(x0 + side), float(y0 + side))
            if _overlaps(box, [o.box for o in objects], gap=0.0):
                continue
            gap = min([1.0] + [_box_gap(box, o.box) for o in objects])
            if gap > best_gap:
                best, best_gap = box, gap
    if best is None:
        raise ValueError(f"no free {side:.2f}-wide square in this scene; use a smaller side or fewer objects")
    return _box(size, best), best


def _box_gap(a, b) -> float:
    dx = max(b[0] - a[2], a[0] - b[2], 0.0)
    dy = max(b[1] - a[3], a[1] - b[3], 0.0)
    return float(np.hypot(dx, dy))


# -- writing ------------------------------------------------------------------------------------

#: The colour of black ink (sRGB) and of a sign's light card.
INK: tuple[int, int, int] = (16, 16, 16)
CARD: tuple[int, int, int] = (246, 244, 236)

#: The words signs carry: every colour and shape name, and a few neutral ones.
SIGN_WORDS: tuple[str, ...] = tuple(w.upper() for w in (*COLORS, *SHAPES)) + ("TOY", "SUN", "BOX", "HI", "ZOO")


@dataclasses.dataclass(frozen=True)
class Sign:
    """A word written in a scene: centred in ``box`` (x0, y0, x1, y1 canvas fractions), in ``colour``
    ("black" or a toy colour), ``scale`` image pixels per font pixel, on a light card or not."""

    word: str
    box: tuple[float, float, float, float] = (0.0, 0.0, 1.0, 1.0)
    colour: str = "black"
    card: bool = False
    scale: int = 1


def _ink(colour: str) -> tuple[int, int, int]:
    if colour == "black":
        return INK
    if colour not in COLORS:
        raise ValueError(f"unknown ink colour {colour!r}; choose black or one of {', '.join(COLORS)}")
    return COLORS[colour]


def sign_lines(word: str, width: int, scale: int = 1) -> list[str]:
    """How ``word`` is laid out in ``width`` pixels: one line when it fits, else one line per word."""
    word = " ".join(word.upper().split())
    if not word:
        raise ValueError("write_word needs a word of at least one letter")
    return [word] if text_size([word], scale)[0] <= width else word.split(" ")


def write_word(image: torch.Tensor, word: str, box: tuple[float, float, float, float] = (0.0, 0.0, 1.0, 1.0),
               colour: str = "black", scale: int = 1, card: bool = False) -> torch.Tensor:
    """``image`` (B, 3, S, S) in [-1, 1] with ``word`` written centred in ``box`` (canvas fractions).

    Letters are the 3×5 font at ``scale``, hard-edged in ``colour`` ("black" or a toy colour); a line
    too wide for the box breaks at its spaces. ``card`` puts a light card 1 font pixel wider than the
    text behind it. Raises ValueError when the text (and card) does not fit the box. Returns a new tensor."""
    if image.dim() != 4 or image.shape[1] != 3:
        raise ValueError(f"image must be (B, 3, H, W) in [-1, 1], got {tuple(image.shape)}")
    h_img, w_img = image.shape[-2:]
    x0, y0, x1, y1 = (min(max(float(b), 0.0), 1.0) for b in box)
    bw, bh = (x1 - x0) * w_img, (y1 - y0) * h_img
    pad = scale if card else 0
    lines = sign_lines(word, int(round(bw)) - 2 * pad, scale)
    bitmap = torch.from_numpy(text_bitmap(lines, scale))
    th, tw = bitmap.shape
    if tw + 2 * pad > bw + 1e-6 or th + 2 * pad > bh + 1e-6:
        raise ValueError(f"{word!r} at scale {scale} needs {tw + 2 * pad}x{th + 2 * pad} px but the box is "
                         f"{bw:.0f}x{bh:.0f} px: use a larger box, a smaller scale or a shorter word")
    left = int(round(x0 * w_img + (bw - tw) / 2))
    top = int(round(y0 * h_img + (bh - th) / 2))
    out = image.clone()
    if card:
        c = torch.tensor(CARD, dtype=out.dtype).view(1, 3, 1, 1) / 127.5 - 1
        out[:, :, top - pad:top + th + pad, left - pad:left + tw + pad] = c
    ink = torch.tensor(_ink(colour), dtype=out.dtype).view(1, 3, 1) / 127.5 - 1
    region = out[:, :, top:top + th, left:left + tw]
    region[:, :, bitmap] = ink.expand(out.shape[0], 3, int(bitmap.sum()))
    return out


def random_sign(rng: np.random.Generator, objects: Sequence[ToyObject] = (), background: str = "sand",
                size: int | None = None, words: Sequence[str] = SIGN_WORDS,
                scales: Sequence[int] = (1, 2)) -> Sign | None:
    """A seeded random :class:`Sign` clear of ``objects``: a word of ``words``, in black (60 %) or a toy
    colour, on a card or not (always on a card where the ink would not show: black on the black
    background), at scale 2 when the word fits that large and a coin says so. Its box leaves room
    for a card either way. ``scales=(1,)`` keeps every sign at scale 1 (the coin is still drawn, so
    the random stream is the same). None when no free place is found."""
    size = int(size or DEFAULT_SIZE)
    word = str(rng.choice(list(words)))
    colour = "black" if rng.random() < 0.6 else str(rng.choice(list(COLORS)))
    card = bool(rng.random() < 0.4) or (colour == "black" and background == "black")
    scale = 2 if rng.random() < 0.5 and 2 in scales else 1
    lines = sign_lines(word, size - 2 - 2 * scale, scale)
    tw, th = text_size(lines, scale)
    if tw + 2 * scale > size - 2:
        scale = 1
        lines = sign_lines(word, size - 4, 1)
        tw, th = text_size(lines, 1)
    pad = scale if tw + 2 * scale <= size else 0  # "TRIANGLE" fills a 32 px canvas: no room for a card
    if not pad:
        card = False
        colour = str(rng.choice(list(COLORS))) if colour == "black" and background == "black" else colour
    w, h = (tw + 2 * pad) / size, (th + 2 * pad) / size
    for _ in range(30):
        x0 = float(rng.uniform(0, 1 - w)) if w < 1 - 2 / size else (1 - w) / 2
        y0 = float(rng.uniform(1 / size, 1 - h - 1 / size))
        box = (x0, y0, x0 + w, y0 + h)
        if not _overlaps(box, [o.box for o in objects], gap=0.02):
            return Sign(" ".join(lines), box, colour, card, scale)
    return None


def random_signed_layout(rng: np.random.Generator, size: int | None = None, n_objects: int | None = None,
                         words: Sequence[str] = SIGN_WORDS,
                         scales: Sequence[int] = (1, 2)) -> tuple[list[ToyObject], str, Sign]:
    """A seeded random scene that carries a sign: the sign is placed first, the objects around it
    (:func:`random_layout` with the sign's box kept free). ``(objects, background, sign)``."""
    sign = random_sign(rng, (), "sand", size, words, scales)
    objects, background = random_layout(rng, n_objects, keep_free=sign.box)
    if sign.colour == "black" and background == "black":  # ink that would not show
        width = round((sign.box[2] - sign.box[0]) * int(size or DEFAULT_SIZE))
        room = text_size(sign_lines(sign.word, width, sign.scale), sign.scale)[0] < width
        sign = dataclasses.replace(sign, card=True) if room else dataclasses.replace(sign, colour="yellow")
    return objects, background, sign
