"""The fast lane's list of slow tests names tests that exist (a renamed test would silently re-enter it)."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_listed_slow_test_exists():
    spec = importlib.util.spec_from_file_location("root_conftest", ROOT / "conftest.py")
    conf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conf)
    for node in sorted(conf.SLOW_TESTS):
        path, name = node.split("::")
        assert (ROOT / path).is_file(), f"conftest.SLOW_TESTS names {path}, which does not exist"
        assert f"def {name}(" in (ROOT / path).read_text(), f"conftest.SLOW_TESTS names {node}, which does not exist"


def test_every_listed_slow_file_exists():
    spec = importlib.util.spec_from_file_location("root_conftest", ROOT / "conftest.py")
    conf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conf)
    for path in conf.SLOW_FILES:
        assert (ROOT / path).exists(), f"conftest.SLOW_FILES names {path}, which does not exist"
