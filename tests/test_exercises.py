"""Every exercise is predict → change one setting → run → check, as a student meets it: a prediction
committed with blendlab.lessons.predict before the run, the run's cell shipped *unchanged* (one marked
line says what to change, and the change is not already made), the outcome judged by check(), and no
number of the folded answer given away in the prose before the run."""

import re
from pathlib import Path

import jupytext
import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
SOURCES = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.py"))
#: The one line of an exercise's cell the student changes: ``code  # <- change to: new code``.
MARK = re.compile(r"#\s*<-\s*change to:\s*(.+?)\s*$")
#: Numbers worth hiding: decimals, percentages and numbers of two or more digits.
NUMBER = re.compile(r"(?<![\w.])(\d+\.\d+|\d{2,})(?![\w.])")


def exercises(source: Path) -> list[dict]:
    """Each exercise: its prompt (markdown), its code cells, its answer, and the lesson's code before it."""
    found, current, code_so_far = [], None, []
    for cell in jupytext.read(source).cells:
        text = cell.source.strip()
        if cell.cell_type == "markdown" and text.startswith("## Exercise"):
            current = {"title": text.splitlines()[0], "prompt": text, "codes": [], "answer": None,
                       "before": "\n".join(code_so_far)}
            found.append(current)
        elif cell.cell_type == "code":
            if current is not None:
                current["codes"].append(cell.source)
            code_so_far.append(cell.source)
        elif current is not None and text.startswith("<details><summary>Answer</summary>"):
            current["answer"] = text
            current = None
    return found


def _plain(code: str) -> str:
    return re.sub(r"\s+", "", code)


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_every_exercise_predicts_first_ships_unchanged_and_checks_after(source):
    found = exercises(source)
    assert found, f"{source.stem} has no exercises"
    for ex in found:
        where = f"{source.stem}: {ex['title']}"
        code = "\n".join(ex["codes"])
        first_predict = code.find("predict(")
        assert first_predict >= 0, f"{where}: no blendlab.lessons.predict(...) before the run"
        assert code.find("check(", first_predict) > first_predict, f"{where}: no check(...) after the prediction"
        marks = [(line, m) for line in code.splitlines() if (m := MARK.search(line))]
        assert len(marks) == 1, f"{where}: mark the one line to change with '# <- change to: ...' ({len(marks)} marked)"
        line, m = marks[0]
        assert _plain(m.group(1)) not in _plain(line[:m.start()]), \
            f"{where}: the cell ships with the change already made: {line.strip()}"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_no_answer_number_appears_in_the_prose_before_its_run(source):
    for ex in exercises(source):
        if ex["answer"] is None:
            continue
        settings = set(NUMBER.findall(ex["before"] + "\n".join(ex["codes"])))  # numbers the code states
        keys = set(NUMBER.findall(ex["answer"])) - settings
        leaked = sorted(n for n in keys if n in NUMBER.findall(ex["prompt"]))
        assert not leaked, f"{source.stem}: {ex['title']}: the prompt gives away the answer's {leaked}"
