"""The fast lane: ``python -m pytest -m "not slow" tests`` leaves out what takes minutes — every lesson
under nbval, the browser tests, the Ray tests and unit tests marked ``@pytest.mark.slow`` — for a
developer's edit-test loop. CI runs everything (the README's test command has no ``-m``)."""

from pathlib import Path

import pytest

#: Test files that are slow as a whole (a real browser; a Ray cluster).
SLOW_FILES = ("tests/browser/", "tests/test_sweep_ray.py")


def pytest_collection_modifyitems(config, items):
    root = Path(__file__).resolve().parent
    for item in items:
        path = Path(str(item.fspath)).resolve()
        rel = path.relative_to(root).as_posix() if path.is_relative_to(root) else path.as_posix()
        if path.suffix == ".ipynb" or rel.startswith(SLOW_FILES):
            item.add_marker(pytest.mark.slow)
