"""Text written into images, and CLIP's embedding of a text written out.

CLIP learned from captioned web images, so it reads written words: an image *of the word* "rubber"
sits close to the prompt "rubber toy". Two things need that written word as an image:

- the guidance's optional anti-typography term (``EditConfig.anti_typography_lambda``,
  :func:`blendlab.guidance.typography_direction`) pushes the edit away from
  :func:`text_render_embedding` of the prompt;
- the failure-case lab (:mod:`blendlab.typography`) writes words onto photos (:func:`render_text`)
  and measures how much an edit looks like the prompt written out (:func:`blendlab.metrics.textness`).

:func:`render_text` writes text onto an image: DejaVu (ships with matplotlib) or any installed font,
size, position, colour, opacity, rotation, an optional sticky-note background. Deterministic: the same
arguments give the same pixels, and pixels the text does not cover are left untouched.
:func:`text_card` puts a text alone on a plain card; :func:`text_renderings` are the four cards whose
mean CLIP embedding is :func:`text_render_embedding`.

May import: errors, images, embeddings.
"""

from __future__ import annotations

import functools
import math
import numbers
import os
import textwrap
import weakref

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageColor, ImageDraw, ImageFont

from .embeddings import encode_images
from .errors import InputError
from .images import as_image_batch

__all__ = ["DEFAULT_FONT", "NOTE_COLOR", "NEUTRAL_WORDS", "find_font", "render_text", "text_card",
           "text_renderings", "text_render_embedding", "prompt_words"]


DEFAULT_FONT = "DejaVu Sans"
#: Sticky-note yellow.
NOTE_COLOR = (255, 232, 115)
#: Words whose renderings are the "any text at all" reference of :func:`blendlab.metrics.textness`
#: and of the anti-typography direction.
NEUTRAL_WORDS = ("table", "window", "river", "pencil", "cloud", "garden")
_STOPWORDS = {"a", "an", "the", "of", "on", "in", "with", "and", "to", "at", "for", "by", "from"}


def find_font(font=None) -> str:
    """Path of a TrueType/OpenType font: ``None`` -> DejaVu Sans (ships with matplotlib), a family
    name known to matplotlib (``"DejaVu Serif"``), a ``FontProperties``, or a path to a font file."""
    from matplotlib import font_manager

    if font is None:
        font = DEFAULT_FONT
    if isinstance(font, font_manager.FontProperties):
        props, label = font, font.get_name()
    elif isinstance(font, (str, os.PathLike)):
        text = os.fspath(font)
        if os.path.sep in text or text.lower().endswith((".ttf", ".otf", ".ttc")):
            if not os.path.isfile(text):
                raise InputError(f"font file {text!r} not found; pass an existing .ttf/.otf file or "
                                 f"a font family name such as {DEFAULT_FONT!r}")
            return text
        props, label = font_manager.FontProperties(family=text), text
    else:
        raise InputError(f"font must be a family name, a file path or FontProperties, not {type(font).__name__}")
    try:
        return font_manager.findfont(props, fallback_to_default=False)
    except ValueError:
        names = sorted(font_manager.get_font_names())
        raise InputError(
            f"font {label!r} is not installed; use a family matplotlib knows (e.g. {DEFAULT_FONT!r}; "
            f"installed: {', '.join(names[:8])}, ...) or the path of a .ttf/.otf file"
        ) from None


@functools.lru_cache(maxsize=64)
def _truetype(path: str, px: int) -> ImageFont.FreeTypeFont:
    try:
        return ImageFont.truetype(path, px, layout_engine=ImageFont.Layout.BASIC)
    except OSError as exc:
        raise InputError(f"font file {path!r} could not be read ({exc}); pass a .ttf/.otf font") from None


def _rgb(color, what: str) -> tuple[int, int, int]:
    try:
        if isinstance(color, str):
            return ImageColor.getrgb(color)[:3]
        c = tuple(color)
        if len(c) != 3:
            raise ValueError
        if all(isinstance(v, float) for v in c) and all(0 <= v <= 1 for v in c):
            c = tuple(round(v * 255) for v in c)
        if not all(0 <= int(v) <= 255 for v in c):
            raise ValueError
        return tuple(int(v) for v in c)
    except (ValueError, TypeError):
        raise InputError(f"{what} {color!r} not understood; use a name ('black', '#ffcc00') or an RGB "
                         "triple of 0..255 ints or 0..1 floats") from None


def _layer(text: str, px: int, font_path: str, rotation: float, note: bool, padding: float):
    """Coverage masks of the text and of its note, rotated: two float32 (h, w) arrays in [0, 1]."""
    fnt = _truetype(font_path, px)
    probe = ImageDraw.Draw(Image.new("L", (1, 1)))
    box = probe.multiline_textbbox((0, 0), text, font=fnt, align="center")
    x0, y0, x1, y1 = math.floor(box[0]), math.floor(box[1]), math.ceil(box[2]), math.ceil(box[3])
    pad = max(1, round(padding * px)) if note else 1
    size = (x1 - x0 + 2 * pad, y1 - y0 + 2 * pad)
    ink = Image.new("L", size, 0)
    ImageDraw.Draw(ink).multiline_text((pad - x0, pad - y0), text, fill=255, font=fnt, align="center")
    paper = Image.new("L", size, 255 if note else 0)
    if rotation % 360:
        ink = ink.rotate(rotation, resample=Image.BICUBIC, expand=True)
        paper = paper.rotate(rotation, resample=Image.BICUBIC, expand=True)
    return np.asarray(ink, np.float32) / 255.0, np.asarray(paper, np.float32) / 255.0


def render_text(
    image,
    text: str,
    *,
    size: float = 0.15,
    position: tuple[float, float] = (0.5, 0.5),
    color="black",
    opacity: float = 1.0,
    rotation: float = 0.0,
    font=None,
    note: bool | str | tuple = False,
    padding: float = 0.3,
) -> torch.Tensor:
    """Write ``text`` onto ``image``; returns a new (B, 3, H, W) tensor in [-1, 1] (input untouched).

    Args:
        image: (B, 3, H, W) / (3, H, W) tensor in [-1, 1], or anything :func:`blendlab.load_image` takes.
        text: the words; ``"\\n"`` starts a new (centred) line.
        size: font size as a fraction of the image height (0.15 of 256 px = a 38 px font). The text
            (with its note, after rotation) must fit inside the image; the error says the largest size
            that does.
        position: centre of the text as fractions ``(x, y)`` of width and height; text reaching past
            an edge is clipped.
        color: text colour, a name or RGB triple.  opacity: 0 (invisible) .. 1 (opaque).
        rotation: degrees, counter-clockwise.  font: see :func:`find_font` (default DejaVu Sans).
        note: ``True`` puts the text on a yellow sticky note; a colour picks the note's colour.
        padding: the note's margin around the text, as a fraction of the font size.
    """
    x = as_image_batch(image)
    if not isinstance(text, str) or not text.strip():
        raise InputError("text is empty; pass the word(s) to write, e.g. render_text(image, 'iPod')")
    if not isinstance(opacity, numbers.Real) or not 0 <= opacity <= 1:
        raise InputError(f"opacity must be in [0, 1] (0 = invisible, 1 = opaque), got {opacity}")
    try:
        cx, cy = (float(v) for v in position)
    except (TypeError, ValueError):
        raise InputError(f"position must be (x, y) fractions of width and height, got {position!r}") from None
    H, W = x.shape[-2:]
    px = round(size * H) if isinstance(size, numbers.Real) and size > 0 else 0
    if px < 1:
        raise InputError(f"size={size!r} gives no visible text on a {H}-pixel-high image; size is the "
                         f"font size as a fraction of the image height, use at least {1 / H:.3g}")
    text_rgb = _rgb(color, "color")
    note_rgb = None if note is False or note is None else (NOTE_COLOR if note is True else _rgb(note, "note colour"))
    path = find_font(font)
    ink, paper = _layer(text, px, path, rotation, note_rgb is not None, padding)
    h, w = ink.shape
    if h > H or w > W:
        fit = size * min(H / h, W / w)
        while fit > 1 / H and any(a > b for a, b in zip(
                _layer(text, max(1, round(fit * H)), path, rotation, note_rgb is not None, padding)[0].shape, (H, W))):
            fit *= 0.97
        if fit <= 1 / H:
            raise InputError(f"text {text!r} does not fit on a {W}x{H} image even at a 1-pixel font; "
                             "use a shorter text, break it into lines with '\\n', or a larger image")
        raise InputError(
            f"text {text!r} at size={size:g} is {w}x{h} px but the image is {W}x{H} px; the largest "
            f"size that fits is about {math.floor(fit * 1000) / 1000:g} (a fraction of the image height); "
            "use a smaller size or a shorter text (or break it into lines with '\\n')"
        )
    left, top = round(cx * W - w / 2), round(cy * H - h / 2)
    out = x.clone()
    if opacity == 0:
        return out
    # the text's rectangle clipped to the image
    ix0, iy0, ix1, iy1 = max(0, left), max(0, top), min(W, left + w), min(H, top + h)
    if ix0 >= ix1 or iy0 >= iy1:
        return out
    crop = (slice(iy0 - top, iy1 - top), slice(ix0 - left, ix1 - left))
    ink_t = torch.from_numpy(np.ascontiguousarray(ink[crop])).to(x.device, x.dtype)
    paper_t = torch.from_numpy(np.ascontiguousarray(paper[crop])).to(x.device, x.dtype)
    to_pm1 = lambda rgb: torch.tensor(rgb, device=x.device, dtype=x.dtype).view(3, 1, 1) / 127.5 - 1  # noqa: E731
    covered = paper_t * (1 - ink_t)  # note visible around the letters
    alpha = ink_t + covered
    colour = to_pm1(text_rgb) * ink_t
    if note_rgb is not None:
        colour = colour + to_pm1(note_rgb) * covered
    region = out[..., iy0:iy1, ix0:ix1]
    out[..., iy0:iy1, ix0:ix1] = torch.where(alpha > 0, region * (1 - opacity * alpha) + opacity * colour, region)
    return out


def _best_wrap(text: str, side: int, fill: float, path: str) -> tuple[str, int]:
    """Line breaks and font size (px) that make ``text`` largest inside ``fill·side`` squared."""
    ref, best = 64, ("", 0)
    words = text.split()
    for lines in range(1, min(8, len(words)) + 1):
        width = max(1, math.ceil(len(text) / lines))
        wrapped = "\n".join(textwrap.wrap(text, width=width, break_long_words=False, break_on_hyphens=False))
        h, w = _layer(wrapped, ref, path, 0.0, False, 0.0)[0].shape
        px = max(1, math.floor(ref * fill * side / max(h, w)))
        while px > 1 and max(_layer(wrapped, px, path, 0.0, False, 0.0)[0].shape) > side:
            px -= 1
        if px > best[1]:
            best = (wrapped, px)
    return best


def text_card(text: str, resolution: int, *, fg="black", bg="white", fill: float = 0.9, font=None) -> torch.Tensor:
    """``text`` alone on a plain ``resolution``² card, as large as fits in ``fill`` of the side
    (long texts are wrapped to up to 8 lines). Cards smaller than 224 px are drawn at 224 px and
    downscaled (antialiased), so small CLIP inputs still get smooth glyphs. (1, 3, R, R) in [-1, 1]."""
    if not isinstance(text, str) or not text.strip():
        raise InputError("text is empty; pass the word(s) to render")
    if int(resolution) < 1:
        raise InputError(f"resolution must be a positive number of pixels, got {resolution}")
    path = find_font(font)
    side = max(int(resolution), 224)
    wrapped, px = _best_wrap(" ".join(text.split()), side, fill, path)
    card = torch.tensor(_rgb(bg, "bg"), dtype=torch.float32).view(1, 3, 1, 1).div(127.5).sub(1)
    card = render_text(card.expand(1, 3, side, side).contiguous(), wrapped, size=px / side, color=fg, font=path)
    if side != resolution:
        from torchvision.transforms import functional as TF

        card = TF.resize(card, [int(resolution)] * 2, antialias=True).clamp(-1, 1)
    return card


def text_renderings(text: str, resolution: int, font=None) -> torch.Tensor:
    """The deterministic renderings behind :func:`text_render_embedding`: black on white and white on
    black, each large (fills 90 %) and small (55 %). (4, 3, R, R) in [-1, 1]."""
    return torch.cat([text_card(text, resolution, fg=fg, bg=bg, fill=fill, font=font)
                      for fill in (0.9, 0.55) for fg, bg in (("black", "white"), ("white", "black"))])


_EMBED_CACHE: "weakref.WeakKeyDictionary[torch.nn.Module, dict]" = weakref.WeakKeyDictionary()


@torch.no_grad()
def text_render_embedding(clip_model, text: str) -> torch.Tensor:
    """CLIP's embedding of ``text`` *written out*: the mean unit image embedding of
    :func:`text_renderings` at CLIP's input resolution, re-normalised. (1, D) float32 on CLIP's device.
    Cached per model (weakly) and text."""
    if not isinstance(text, str) or not text.strip():
        raise InputError("text is empty; text_render_embedding needs the words to render (the prompt)")
    device = next(clip_model.parameters()).device
    cache = _EMBED_CACHE.setdefault(clip_model, {})
    key = (text, str(device))
    if key not in cache:
        size = int(clip_model.visual.input_resolution)
        embeds = F.normalize(encode_images(clip_model, text_renderings(text, size).to(device)), dim=-1)
        cache[key] = F.normalize(embeds.mean(0, keepdim=True), dim=-1).float()
    return cache[key].clone()


def prompt_words(prompt: str) -> list[str]:
    """What "writing the prompt" may look like: the whole prompt and each content word of it."""
    words = [w.strip(".,;:!?\"'()") for w in prompt.split()]
    words = [w for w in words if len(w) > 1 and w.lower() not in _STOPWORDS]
    return list(dict.fromkeys([" ".join(prompt.split())] + words))
