"""Write the opening of every lesson from ``blendlab.notebook``: the Colab badge and the first code cell.

    python tools/sync_first_cell.py           # rewrite notebooks/*.py and their paired .ipynb
    python tools/sync_first_cell.py --check   # only say which lessons are out of date (exit 1)

The repository URL is defined once, ``blendlab.notebook.REPO_URL``; ``INSTALL_SNIPPET`` is built from
it. A notebook cannot import blendlab before installing it, so the URL has to stand in the first cell
as text: this script puts it there, and ``tests/test_notebooks.py`` fails when a lesson differs from
what it would write. Change the URL or the snippet in ``blendlab/notebook.py``, then run this script.
"""

from __future__ import annotations

import sys
from pathlib import Path

import jupytext
import nbformat

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
sys.path.insert(0, str(NOTEBOOKS.parent))  # this checkout's blendlab, not another installed copy

from blendlab.notebook import INSTALL_SNIPPET, REPO_URL  # noqa: E402

BADGE_IMAGE = "[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"


def first_cell() -> str:
    """The first code cell of every lesson: install blendlab if it is missing, then set up."""
    return INSTALL_SNIPPET + "from blendlab.notebook import setup; env = setup()"


def badge(stem: str) -> str:
    """The Colab badge line of lesson ``stem``, opening its .ipynb on GitHub's main branch."""
    repo = REPO_URL.removeprefix("https://github.com/")
    return f"{BADGE_IMAGE}(https://colab.research.google.com/github/{repo}/blob/main/notebooks/{stem}.ipynb)"


def lessons() -> list[Path]:
    """The lesson sources, ``notebooks/NN_name.py``."""
    return sorted(p for p in NOTEBOOKS.glob("[0-9][0-9]_*.py"))


def opened(nb, stem: str) -> bool:
    """Give ``nb`` the badge and first code cell of lesson ``stem``; True when anything changed."""
    head = nb.cells[0]
    if head.cell_type != "markdown":
        raise ValueError(f"{stem}: the first cell must be the markdown cell with the Colab badge")
    lines = head.source.split("\n")
    if lines[0].startswith(BADGE_IMAGE):
        lines[0] = badge(stem)
    else:
        lines[:0] = [badge(stem), ""]
    code = next(c for c in nb.cells if c.cell_type == "code")
    before = (head.source, code.source)
    head.source, code.source = "\n".join(lines), first_cell()
    return (head.source, code.source) != before


def stale() -> list[str]:
    """Lesson files (.py or .ipynb) whose opening differs from what this script writes."""
    out = []
    for py in lessons():
        for path, nb in ((py, jupytext.read(py)), (py.with_suffix(".ipynb"), nbformat.read(py.with_suffix(".ipynb"), 4))):
            if opened(nb, py.stem):
                out.append(path.name)
    return out


def sync() -> list[str]:
    """Rewrite the opening of every lesson, .py and .ipynb alike; returns the files changed."""
    changed = []
    for py in lessons():
        nb = jupytext.read(py)
        if opened(nb, py.stem):
            jupytext.write(nb, py, fmt="py:percent")
            changed.append(py.name)
        ipynb = py.with_suffix(".ipynb")
        nb = nbformat.read(ipynb, 4)
        if opened(nb, py.stem):
            nbformat.write(nb, ipynb)
            changed.append(ipynb.name)
    return changed


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args == ["--check"]:
        out = stale()
        print("out of date: " + ", ".join(out) + " (run: python tools/sync_first_cell.py)" if out
              else "every lesson opens with blendlab.notebook's badge and first cell")
        return int(bool(out))
    if args:
        print(__doc__)
        return 2
    changed = sync()
    print("rewrote " + ", ".join(changed) if changed else "nothing to change")
    return 0


if __name__ == "__main__":
    sys.exit(main())
