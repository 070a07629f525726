"""The toy world's pixel font: 3×5 capital glyphs A–Z, as data, and the bitmap of a line of text.

Every glyph is 3 px wide and 5 px high, letters stand 1 px apart (an advance of 4 px), a space is a
blank glyph. Each glyph touches its top and bottom rows and its left and right columns, so a written
word's bounding box is exactly its text block: what lets :func:`blendlab.toyworld.judge.read_text`
find the glyph grid by rules. Writing (colours, placement, cards) lives in :mod:`.world`.

May import: nothing.
"""

from __future__ import annotations

import numpy as np

__all__ = ["GLYPH_W", "GLYPH_H", "ADVANCE", "LINE_GAP", "GLYPHS", "glyph", "text_size", "text_bitmap"]

GLYPH_W, GLYPH_H = 3, 5
#: Columns from one letter's left edge to the next (3 px glyph + 1 px gap).
ADVANCE = GLYPH_W + 1
#: Blank rows between two lines of a sign.
LINE_GAP = 1

_ROWS = {
    "A": ("###", "#.#", "###", "#.#", "#.#"),
    "B": ("##.", "#.#", "##.", "#.#", "##."),
    "C": ("###", "#..", "#..", "#..", "###"),
    "D": ("##.", "#.#", "#.#", "#.#", "##."),
    "E": ("###", "#..", "##.", "#..", "###"),
    "F": ("###", "#..", "##.", "#..", "#.."),
    "G": ("###", "#..", "#.#", "#.#", "###"),
    "H": ("#.#", "#.#", "###", "#.#", "#.#"),
    "I": ("###", ".#.", ".#.", ".#.", "###"),
    "J": ("..#", "..#", "..#", "#.#", "###"),
    "K": ("#.#", "#.#", "##.", "#.#", "#.#"),
    "L": ("#..", "#..", "#..", "#..", "###"),
    "M": ("#.#", "###", "###", "#.#", "#.#"),
    "N": ("##.", "#.#", "#.#", "#.#", "#.#"),
    "O": ("###", "#.#", "#.#", "#.#", "###"),
    "P": ("###", "#.#", "###", "#..", "#.."),
    "Q": ("###", "#.#", "#.#", "###", "..#"),
    "R": ("##.", "#.#", "##.", "#.#", "#.#"),
    "S": ("###", "#..", "###", "..#", "###"),
    "T": ("###", ".#.", ".#.", ".#.", ".#."),
    "U": ("#.#", "#.#", "#.#", "#.#", "###"),
    "V": ("#.#", "#.#", "#.#", "#.#", ".#."),
    "W": ("#.#", "#.#", "###", "###", "#.#"),
    "X": ("#.#", "#.#", ".#.", "#.#", "#.#"),
    "Y": ("#.#", "#.#", ".#.", ".#.", ".#."),
    "Z": ("###", "..#", ".#.", "#..", "###"),
    " ": ("...", "...", "...", "...", "..."),
}

#: Letter -> (5, 3) bool array (True = ink).
GLYPHS: dict[str, np.ndarray] = {
    ch: np.array([[c == "#" for c in row] for row in rows], dtype=bool) for ch, rows in _ROWS.items()
}


def glyph(ch: str) -> np.ndarray:
    """The (5, 3) bool bitmap of one character (letters are upper-cased)."""
    key = ch.upper()
    if key not in GLYPHS:
        raise ValueError(f"the toy font has no glyph for {ch!r}; it writes the letters A-Z and spaces")
    return GLYPHS[key]


def text_size(lines: list[str], scale: int = 1) -> tuple[int, int]:
    """(width, height) in pixels of ``lines`` written at ``scale`` (each font pixel a scale×scale block)."""
    width = max(len(line) for line in lines) * ADVANCE - 1
    height = len(lines) * (GLYPH_H + LINE_GAP) - LINE_GAP
    return width * scale, height * scale


def text_bitmap(lines: list[str], scale: int = 1) -> np.ndarray:
    """(H, W) bool bitmap of ``lines``, each line centred on the widest (offsets rounded down)."""
    if scale not in (1, 2, 3):
        raise ValueError(f"scale must be 1, 2 or 3 (font pixels per image pixel side), got {scale}")
    w, h = text_size(lines, 1)
    out = np.zeros((h, w), dtype=bool)
    for i, line in enumerate(lines):
        x0 = (w - (len(line) * ADVANCE - 1)) // 2
        y0 = i * (GLYPH_H + LINE_GAP)
        for k, ch in enumerate(line):
            out[y0:y0 + GLYPH_H, x0 + k * ADVANCE:x0 + k * ADVANCE + GLYPH_W] = glyph(ch)
    return out.repeat(scale, 0).repeat(scale, 1)
