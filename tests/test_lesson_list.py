"""The lessons are listed the same way everywhere: the files, their titles, notebooks/README.md and
the README's lesson list."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"


def _lessons() -> list[tuple[int, str]]:
    """(number, stem) of every lesson source, in order."""
    found = []
    for path in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.py")):
        found.append((int(path.name[:2]), path.stem))
    return found


def test_lessons_are_numbered_without_gaps_and_paired():
    numbers = [n for n, _ in _lessons()]
    assert numbers == list(range(1, len(numbers) + 1)), numbers
    for _, stem in _lessons():
        assert (NOTEBOOKS / f"{stem}.ipynb").exists(), f"{stem}.py has no paired .ipynb"


def test_every_lesson_title_carries_its_own_number():
    for number, stem in _lessons():
        text = (NOTEBOOKS / f"{stem}.py").read_text()
        title = re.search(r"^# # (\d+) · ", text, flags=re.M)
        assert title, f"{stem}.py has no '# # N · title' heading"
        assert int(title.group(1)) == number, f"{stem}.py is titled {title.group(1)}, its file says {number}"


def test_the_notebooks_readme_table_lists_every_lesson_in_order():
    table = re.findall(r"^\| \[(\d\d_\w+)\]\((\d\d_\w+)\.ipynb\)", (NOTEBOOKS / "README.md").read_text(),
                       flags=re.M)
    assert [name for name, _ in table] == [stem for _, stem in _lessons()]
    assert all(name == link for name, link in table)


def test_the_readme_lists_every_lesson_in_order():
    readme = (ROOT / "README.md").read_text()
    listed = re.search(r"The lessons:\n(.*?)\(what each teaches", readme, flags=re.S)
    assert listed, "the README's lesson list is missing"
    numbers = [int(n) for n in re.findall(r"\b(\d\d) [a-z]", listed.group(1))]
    assert numbers == [n for n, _ in _lessons()]
