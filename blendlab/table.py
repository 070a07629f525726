"""Table: a list of dicts (one per row) that prints as aligned text and shows as HTML in Jupyter.

The failure-case lab's zero-shot tables and :func:`blendlab.ranking.compare` return one.

May import: nothing.
"""

from __future__ import annotations

__all__ = ["Table"]


class Table(list):
    """A list of dicts (one per row) that prints as an aligned text table and as HTML in Jupyter."""

    def to_string(self, precision: int = 3) -> str:
        if not self:
            return "(empty table)"
        cols = list(dict.fromkeys(k for row in self for k in row))
        cells = [[_fmt(row.get(c, ""), precision) for c in cols] for row in self]
        widths = [max(len(str(c)), *(len(r[i]) for r in cells)) for i, c in enumerate(cols)]
        lines = ["  ".join(str(c).rjust(w) for c, w in zip(cols, widths))]
        lines += ["  ".join(v.rjust(w) for v, w in zip(r, widths)) for r in cells]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_string()

    def _repr_html_(self) -> str:
        if not self:
            return "<p>(empty table)</p>"
        cols = list(dict.fromkeys(k for row in self for k in row))
        head = "".join(f"<th>{c}</th>" for c in cols)
        body = "".join("<tr>" + "".join(f"<td>{_fmt(r.get(c, ''), 3)}</td>" for c in cols) + "</tr>" for r in self)
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _fmt(v, precision: int) -> str:
    """Floats to ``precision`` decimals; tiny non-zero ones (tiny-CLIP text-ness ~1e-4) to
    ``precision`` significant digits instead of showing as 0.000."""
    if not isinstance(v, float):
        return str(v)
    if v != 0 and abs(v) < 10 ** -precision:
        return f"{v:.{precision}g}"
    return f"{v:.{precision}f}"
