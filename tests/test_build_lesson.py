"""Lesson 03 (the student builds the blended step): its own step passes the check, and the same step
with one line wrong — the blend with the un-noised input — fails it with a message that says where."""

import re
from pathlib import Path

import pytest

LESSON = Path(__file__).resolve().parents[1] / "notebooks" / "03_build_the_blended_step.py"
BLEND_LINE = "bg = diffusion.q_sample(x0, torch.tensor([i], device=dev), noise=draws.bg_noise)"


def _cells_until_my_step() -> list[str]:
    """The lesson's code cells up to and including the one defining ``my_step`` (no runs of the loop)."""
    cells = re.split(r"^# %%.*$", LESSON.read_text(), flags=re.M)
    heads = re.findall(r"^# %%.*$", LESSON.read_text(), flags=re.M)
    code = [body for head, body in zip(heads, cells[1:]) if "[markdown]" not in head]
    end = next(k for k, c in enumerate(code) if "def my_step" in c)
    return code[1:end + 1]  # without the install/setup cell


@pytest.fixture(scope="module")
def lesson():
    from blendlab.notebook import setup

    env = setup(force_tiny=True, banner=False)
    ns = {"env": env}
    for cell in _cells_until_my_step():
        exec(compile(cell, str(LESSON), "exec"), ns)
    return ns


def test_the_lessons_step_matches_the_library(lesson):
    ns = lesson
    report = ns["compare_steps"](ns["my_step"], ns["models"], ns["x0"], ns["mask"], ns["cfg"],
                                 guidance=ns["colour_loss"])
    assert report.ok, report.text


def test_one_wrong_line_fails_the_check_where_it_matters(lesson):
    ns = dict(lesson)
    cell = next(c for c in _cells_until_my_step() if "def my_step" in c)
    assert BLEND_LINE in cell, "the lesson's blend line changed: update this test"
    exec(compile(cell.replace(BLEND_LINE, "bg = x0"), str(LESSON), "exec"), ns)
    report = ns["compare_steps"](ns["my_step"], ns["models"], ns["x0"], ns["mask"], ns["cfg"],
                                 guidance=ns["colour_loss"])
    assert not report.ok
    assert report.first["quantity"] == "bg" and report.first["step"] == 0
    assert report.text.startswith("Your step first differs at step 0/")
    assert "the noised background" in report.text and "outside the mask" in report.text
