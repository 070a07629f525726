"""An independent judge of toy-world edits: what does the masked region of each image hold?

Pixel and geometry rules, no learned model and nothing of the guiding CLIP, so tests, lessons and
benchmarks can say "the edit worked" without trusting the model being steered:

1. **colour**: a pixel is an object pixel when it is saturated (HSV saturation ≥ 0.45, value ≥ 0.3;
   every background is unsaturated); it takes the nearest of :data:`COLORS`. The dominant colour is
   the most frequent one inside the mask; ``coverage`` is the share of the mask it fills.
2. **shape**: the largest 8-connected blob of the dominant colour inside the mask is compared with a
   circle, a square and an upright triangle fitted to its bounding box; the best intersection over
   union names the shape (``shape_iou``), when it reaches 0.5.

A region with less than ``min_coverage`` of any colour holds nothing (colour and shape None).

3. **text** (:func:`read_text`): ink pixels (black, or one toy colour) in glyph-sized 8-connected pieces
   (black ink: brightest channel below 20/255, or below 0.3 of the masked region's median brightness,
   so a generated letter in dark grey on a light card is ink as a reader would take it)
   are cut into lines and 3-wide cells on the font's grid (at scale 1, 2 or 3) and each cell is
   matched against the 3×5 templates of :mod:`.font`; a reading is a word only when every cell is a
   letter (or an inner space). ``coverage`` is the share of the region the read glyphs' pixels fill.

May import: toyworld.font, toyworld.world.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from .font import ADVANCE, GLYPH_H, GLYPH_W, GLYPHS
from .world import COLORS, SHAPES, _grid, shape_coverage

__all__ = ["Verdict", "judge", "success_rate", "TextReading", "read_text"]

_PALETTE = np.array(list(COLORS.values()), dtype=np.float32) / 255
_NAMES = list(COLORS)


@dataclasses.dataclass(frozen=True)
class Verdict:
    """The judge's verdict on one image's masked region."""

    colour: str | None
    shape: str | None
    coverage: float  # share of the mask covered by the dominant colour
    shape_iou: float  # IoU of the blob with the best-fitting template (0 when no blob)
    colour_shares: dict  # share of the mask covered by each colour

    def holds(self, colour: str | None = None, shape: str | None = None) -> bool:
        """True when the region holds ``colour`` (and ``shape``, when given)."""
        return (colour is None or self.colour == colour) and (shape is None or self.shape == shape)


def _object_colours(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) in [0, 1] -> (H, W) index into COLORS, or -1 for background pixels."""
    mx, mn = rgb.max(-1), rgb.min(-1)
    sat = (mx - mn) / np.maximum(mx, 1e-6)
    nearest = ((rgb[:, :, None, :] - _PALETTE[None, None]) ** 2).sum(-1).argmin(-1)
    return np.where((sat >= 0.45) & (mx >= 0.3), nearest, -1)


def _largest_blob(binary: np.ndarray) -> np.ndarray:
    """The largest 8-connected component of a boolean (H, W) array (a small flood fill)."""
    h, w = binary.shape
    seen = np.zeros_like(binary, dtype=bool)
    best: list[tuple[int, int]] = []
    for sy, sx in zip(*np.nonzero(binary)):
        if seen[sy, sx]:
            continue
        stack, comp = [(sy, sx)], []
        seen[sy, sx] = True
        while stack:
            y, x = stack.pop()
            comp.append((y, x))
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    ny, nx = y + dy, x + dx
                    if 0 <= ny < h and 0 <= nx < w and binary[ny, nx] and not seen[ny, nx]:
                        seen[ny, nx] = True
                        stack.append((ny, nx))
        if len(comp) > len(best):
            best = comp
    out = np.zeros_like(binary, dtype=bool)
    if best:
        ys, xs = zip(*best)
        out[list(ys), list(xs)] = True
    return out


def _fit_shape(blob: np.ndarray) -> tuple[str | None, float]:
    ys, xs = np.nonzero(blob)
    if len(ys) < 3:
        return None, 0.0
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    h, w = blob.shape
    u, v = _grid(max(h, w))  # supersampled pixel-centre grid, then pooled to pixels
    n = u.shape[0] // max(h, w)
    best, best_iou = None, 0.0
    for shape in SHAPES:
        inside = shape_coverage(shape, (x0 + x1) / 2 / w, (y0 + y1) / 2 / h, (x1 - x0) / w, (y1 - y0) / h, u, v)
        template = torch.nn.functional.avg_pool2d(inside.float()[None, None], n)[0, 0].numpy()[:h, :w] >= 0.5
        iou = (template & blob).sum() / max((template | blob).sum(), 1)
        if iou > best_iou:
            best, best_iou = shape, float(iou)
    return (best if best_iou >= 0.5 else None), best_iou


def _pixels(images: torch.Tensor, mask: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """What both judges read: ``images`` (B, 3, H, W) in [-1, 1] as (B, H, W, 3) in [0, 1], and
    ``mask`` (1 or B, 1, H, W) as (B, H, W) booleans; a ValueError names a wrong shape."""
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"images must be (B, 3, H, W) in [-1, 1], got {tuple(images.shape)}")
    if mask.dim() != 4 or mask.shape[1] != 1 or mask.shape[-2:] != images.shape[-2:]:
        raise ValueError(f"mask must be (1 or B, 1, H, W) matching the images, got {tuple(mask.shape)}")
    rgb = images.detach().float().cpu().add(1).div(2).clamp(0, 1).permute(0, 2, 3, 1).numpy()
    masks = mask.detach().cpu().expand(images.shape[0], -1, -1, -1)[:, 0].numpy() > 0.5
    return rgb, masks


def judge(images: torch.Tensor, mask: torch.Tensor, min_coverage: float = 0.08) -> list[Verdict]:
    """One :class:`Verdict` per image of ``images`` (B, 3, H, W) in [-1, 1] on the region where
    ``mask`` (1 or B, 1, H, W) is 1."""
    rgb, masks = _pixels(images, mask)
    verdicts = []
    for img, m in zip(rgb, masks):
        area = max(int(m.sum()), 1)
        labels = np.where(m, _object_colours(img), -1)
        counts = np.bincount(labels[labels >= 0], minlength=len(_NAMES))
        shares = {name: float(c) / area for name, c in zip(_NAMES, counts)}
        k = int(counts.argmax())
        coverage = float(counts[k]) / area
        if coverage < min_coverage:
            verdicts.append(Verdict(None, None, coverage, 0.0, shares))
            continue
        shape, iou = _fit_shape(_largest_blob(labels == k))
        verdicts.append(Verdict(_NAMES[k], shape, coverage, iou, shares))
    return verdicts


def success_rate(verdicts: list[Verdict], colour: str | None = None, shape: str | None = None) -> float:
    """Share of verdicts holding ``colour`` (and ``shape``)."""
    return sum(v.holds(colour, shape) for v in verdicts) / max(len(verdicts), 1)


# -- text -----------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class TextReading:
    """What :func:`read_text` read in one image's masked region."""

    word: str | None  # the capitals read ("RED", "RED CIRCLE"), None when no text
    coverage: float  # share of the mask covered by the read glyphs' pixels (0 when no text)
    colour: str | None = None  # the ink: "black" or a toy colour
    scale: int | None = None  # image pixels per font pixel


_LETTERS = [ch for ch in GLYPHS if ch != " "]
_TEMPLATES = np.stack([GLYPHS[ch] for ch in _LETTERS])  # (26, 5, 3)
_BLACK_INK = 0.078  # black ink: brightest channel below 20/255, darker than any background (the black one: 22/255)
_INK_CONTRAST = 0.3  # ... or below 0.3 of the region's median brightness: dark grey ink on a light card


def _components(binary: np.ndarray) -> list[np.ndarray]:
    """The 8-connected components of a boolean (H, W) array, each as an (n, 2) array of (y, x)."""
    h, w = binary.shape
    seen = np.zeros_like(binary, dtype=bool)
    out = []
    for sy, sx in zip(*np.nonzero(binary)):
        if seen[sy, sx]:
            continue
        stack, comp = [(sy, sx)], []
        seen[sy, sx] = True
        while stack:
            y, x = stack.pop()
            comp.append((y, x))
            for ny in (y - 1, y, y + 1):
                for nx in (x - 1, x, x + 1):
                    if 0 <= ny < h and 0 <= nx < w and binary[ny, nx] and not seen[ny, nx]:
                        seen[ny, nx] = True
                        stack.append((ny, nx))
        out.append(np.array(comp))
    return out


def _read_cell(cell: np.ndarray, s: int, tolerance: int) -> str | None:
    """The letter of one (5s, 3s) cell, or " " when blank, or None when it matches no glyph."""
    small = cell.reshape(GLYPH_H, s, GLYPH_W, s).mean((1, 3)) >= 0.5
    if not small.any():
        return " "
    dist = (_TEMPLATES != small[None]).sum((1, 2))
    best = int(dist.min())
    if best > tolerance or (dist == best).sum() > 1:
        return None
    return _LETTERS[int(dist.argmin())]


def _read_block(ink: np.ndarray, s: int, tolerance: int) -> str | None:
    """Read glyph-sized ink ``ink`` (H, W) bool as lines of the font at scale ``s``; None unless it all parses."""
    rows = np.nonzero(ink.any(1))[0]
    bands, start = [], rows[0]
    for a, b in zip(rows[:-1], rows[1:]):
        if b != a + 1:
            bands.append((start, a + 1))
            start = b
    bands.append((start, rows[-1] + 1))
    lines = []
    for y0, y1 in bands:
        if y1 - y0 != GLYPH_H * s:
            return None
        band = ink[y0:y1]
        cols = np.nonzero(band.any(0))[0]
        x0, width = cols[0], cols[-1] + 1 - cols[0]
        if (width + s) % (ADVANCE * s):
            return None
        letters = []
        for k in range((width + s) // (ADVANCE * s)):
            left = x0 + k * ADVANCE * s
            if band[:, left + GLYPH_W * s:left + ADVANCE * s].any():
                return None  # ink in the gap between two letters
            ch = _read_cell(band[:, left:left + GLYPH_W * s], s, tolerance)
            if ch is None:
                return None
            letters.append(ch)
        lines.append("".join(letters))
    word = " ".join(" ".join(lines).split())
    return word or None


def read_text(images: torch.Tensor, mask: torch.Tensor, scales: tuple[int, ...] = (1, 2, 3),
              tolerance: int = 0) -> list[TextReading]:
    """One :class:`TextReading` per image of ``images`` (B, 3, H, W) in [-1, 1]: the word written in
    the region where ``mask`` (1 or B, 1, H, W) is 1, by template matching against the toy font.
    ``tolerance``: font pixels a cell may differ from its letter (0: exact)."""
    rgb, masks = _pixels(images, mask)
    readings = []
    for img, m in zip(rgb, masks):
        area = max(int(m.sum()), 1)
        labels = _object_colours(img)
        value = img.max(-1)
        page = float(np.median(value[m])) if m.any() else 0.0
        black = value < max(_BLACK_INK, _INK_CONTRAST * page)
        inks = {"black": black, **{n: labels == i for i, n in enumerate(_NAMES)}}
        best = TextReading(None, 0.0)
        for name, ink in inks.items():
            comps = _components(ink & m)
            for s in scales:
                small = [c for c in comps if np.ptp(c[:, 0]) < GLYPH_H * s and np.ptp(c[:, 1]) < GLYPH_W * s]
                if not small:
                    continue
                glyphs = np.zeros_like(m)
                for c in small:
                    glyphs[c[:, 0], c[:, 1]] = True
                word = _read_block(glyphs, s, tolerance)
                cover = float(glyphs.sum()) / area
                if word is not None and cover > best.coverage:
                    best = TextReading(word, cover, name, s)
        readings.append(best)
    return readings
