"""The lesson notebooks: paired .py/.ipynb in sync, committed without outputs, Colab badge, setup cell.

Executing them is the README's test command (``pytest --nbval-lax notebooks``), not this file.
"""

from pathlib import Path

import importlib.util

import jupytext
import nbformat
import pytest

from blendlab.notebook import INSTALL_SNIPPET, REPO_URL

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
SOURCES = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.py"))
EXPECTED = ["01_quickstart", "02_noised_backgrounds", "03_build_the_blended_step", "04_guided_latents_step_by_step", "05_augmentation_effects",
            "06_applications", "07_failure_cases", "08_debugging_a_step", "09_baseline_background_loss",
            "10_beyond_the_paper", "11_speed", "12_sweeps", "13_how_the_toy_models_learned"]


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


def _sync_script():
    spec = importlib.util.spec_from_file_location("sync_first_cell", NOTEBOOKS.parent / "tools" / "sync_first_cell.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_first_cells_are_generated_from_blendlab_notebook():
    """tools/sync_first_cell.py writes every lesson's badge and first code cell from REPO_URL."""
    assert _sync_script().stale() == [], "run: python tools/sync_first_cell.py"


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
    assert setup == _sync_script().first_cell(), "run: python tools/sync_first_cell.py"
    assert setup.startswith(INSTALL_SNIPPET) and setup.count(REPO_URL) == 1
    assert "env = setup()" in setup and len(setup.splitlines()) <= 5, "keep the first cell short"
    # settings come from env.config (paper settings on real weights, small ones in tiny mode)
    body = "\n".join(c.source for c in code[1:])
    assert "env.config(" in body and "bl.EditConfig(" not in body
    assert "pip install" not in body and REPO_URL not in body, "only the first cell installs"
    assert "load_models(\"tiny\"" not in body and "load_models('tiny'" not in body, "no tiny-only code path"


def _text(source) -> str:
    """Every cell of a lesson, lower case, whitespace folded (so phrases split over lines are found)."""
    return " ".join("\n".join(c.source for c in jupytext.read(source).cells).lower().split())


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_no_lesson_says_the_background_is_at_the_same_noise_level(source):
    """The blend pastes q_sample(x0, t) into x_{t-1}: the background is one step noisier than x_{t-1}."""
    text = _text(source)
    for phrase in ("same noise level", "same level"):
        assert phrase not in text, f"{source.stem} says {phrase!r}: the background is noised at t, one step noisier"


def exercises(source) -> list[dict]:
    """The exercises of a lesson: a markdown cell headed "## Exercise ...", then the code to run, then a
    markdown cell holding the answer in a collapsed <details><summary>Answer</summary> block."""
    found, current = [], None
    for cell in jupytext.read(source).cells:
        text = cell.source.strip()
        if cell.cell_type == "markdown" and text.startswith("## Exercise"):
            current = {"title": text.splitlines()[0], "prompt": text, "code": 0, "answer": None}
            found.append(current)
        elif current is not None and cell.cell_type == "code":
            current["code"] += 1
        elif current is not None and text.startswith("<details><summary>Answer</summary>"):
            current["answer"] = text
            current = None
        elif current is not None and cell.cell_type == "markdown" and text.startswith("## "):
            current = None  # a new section before any answer
    return found


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_every_lesson_has_two_exercises_with_hidden_answers(source):
    found = exercises(source)
    assert len(found) >= 2, f"{source.stem} has {len(found)} exercises; every lesson needs at least two"
    for ex in found:
        where = f"{source.stem}: {ex['title']}"
        for step in ("**Predict", "**Change", "**run**", "**check**"):
            assert step in ex["prompt"], f"{where}: the exercise says predict -> change -> run -> check ({step} missing)"
        assert ex["code"] >= 1, f"{where}: no code cell to run between the exercise and its answer"
        assert ex["answer"] is not None, f"{where}: no answer in a <details><summary>Answer</summary> markdown cell"
        assert ex["answer"].rstrip().endswith("</details>"), f"{where}: the answer block is not closed"
        assert "\n\n" in ex["answer"], f"{where}: leave a blank line after <summary> so the answer renders"
