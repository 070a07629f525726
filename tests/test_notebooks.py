"""The lesson notebooks: paired .py/.ipynb in sync, committed without outputs, Colab badge, setup cell.

Executing them is the README's test command (``pytest --nbval-lax notebooks``), not this file.
"""

from pathlib import Path

import jupytext
import nbformat
import pytest

from blendlab.notebook import INSTALL_SNIPPET, REPO_URL

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
SOURCES = sorted(NOTEBOOKS.glob("*.py"))
EXPECTED = ["01_quickstart", "02_noised_backgrounds", "03_guided_latents_step_by_step", "06_failure_cases",
            "04_augmentation_effects", "05_applications", "07_debugging_a_step", "09_speed"]


def cells(nb):
    """(type, source) of every cell, trailing whitespace ignored."""
    return [(c.cell_type, c.source.strip()) for c in nb.cells]


def test_the_lessons_exist_in_both_formats():
    stems = {p.stem for p in SOURCES}
    assert set(EXPECTED) <= stems, f"missing lessons: {set(EXPECTED) - stems}"
    ipynbs = {p.stem for p in NOTEBOOKS.glob("*.ipynb")}
    assert ipynbs == stems, f"unpaired: {sorted(ipynbs ^ stems)}"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_py_and_ipynb_are_in_sync(source):
    py = jupytext.read(source)
    ipynb = jupytext.read(source.with_suffix(".ipynb"))
    assert cells(py) == cells(ipynb), f"run: jupytext --sync {source.relative_to(NOTEBOOKS.parent)}"
    formats = py.metadata.get("jupytext", {}).get("formats", "")
    assert set(formats.split(",")) == {"ipynb", "py:percent"}, "pair with --set-formats ipynb,py:percent"
    assert ipynb.metadata["kernelspec"]["name"] == "python3"
    assert py.metadata["kernelspec"]["name"] == "python3"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_ipynb_is_committed_without_outputs(source):
    nb = nbformat.read(source.with_suffix(".ipynb"), as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [], f"outputs left in a cell of {source.stem}.ipynb: strip them"
            assert cell.execution_count is None, f"an execution count left in {source.stem}.ipynb"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_colab_badge_and_setup_cell(source):
    nb = nbformat.read(source.with_suffix(".ipynb"), as_version=4)
    first = nb.cells[0]
    assert first.cell_type == "markdown"
    badge = (f"https://colab.research.google.com/github/{REPO_URL.removeprefix('https://github.com/')}"
             f"/blob/main/notebooks/{source.stem}.ipynb")
    assert f"(https://colab.research.google.com/assets/colab-badge.svg)]({badge})" in first.source
    code = [c for c in nb.cells if c.cell_type == "code"]
    setup = code[0].source
    assert INSTALL_SNIPPET.strip() in setup, "the first code cell starts with blendlab.notebook.INSTALL_SNIPPET"
    assert "from blendlab.notebook import setup" in setup and "env = setup()" in setup
    # settings come from env.config (paper settings on real weights, small ones in tiny mode)
    body = "\n".join(c.source for c in code[1:])
    assert "env.config(" in body and "bl.EditConfig(" not in body
    assert "load_models(\"tiny\"" not in body and "load_models('tiny'" not in body, "no tiny-only code path"
