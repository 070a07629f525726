"""A README table a benchmark writes: the lines between two HTML-comment markers, replaced whole.

May import: nothing.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["write_block"]


def write_block(readme: str | Path, start: str, end: str, body: str) -> None:
    """Replace what stands between the markers ``start`` and ``end`` of ``readme`` with ``body``
    (each marker on its own line around it); SystemExit naming the markers when either is missing."""
    path = Path(readme)
    text = path.read_text()
    if start not in text or end not in text:
        raise SystemExit(f"{path} has no {start} ... {end} block to fill")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    path.write_text(f"{head}{start}\n{body}\n{end}{tail}")
