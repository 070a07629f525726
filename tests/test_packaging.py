"""The project files agree with each other: environment.yml, pyproject.toml, README, CI."""

import ast
import importlib.metadata
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _names(reqs):
    return {re.split(r"[<>=!~ \[]", r.strip('"'))[0].lower() for r in reqs}


def test_environment_yml_has_the_same_dependencies_as_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    wanted = set(project["dependencies"]) | set(extras["test"])
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert "python=3.11" in env["dependencies"]
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert {r.replace('"', "") for r in pip if r != "-e ."} == {r.replace('"', "") for r in wanted}
    torchlike = [r for r in wanted if _names([r]) & {"torch", "torchvision"}]
    assert all(">=" in r and "==" not in r and "<" not in r for r in torchlike)  # lower bounds only
    assert any(r.startswith("setuptools<81") for r in wanted)


def _readme_command(marker: str) -> str:
    readme = (ROOT / "README.md").read_text()
    block = readme.split(marker, 1)[1].split("```", 2)[1]
    return block.strip().splitlines()[1]


def test_ci_runs_the_readme_setup_and_test_commands():
    setup, tests = _readme_command("<!-- setup-command -->"), _readme_command("<!-- test-command -->")
    assert "pytest" in tests and "notebooks" in tests
    assert "python3 -m venv" in setup and 'pip install -e ".[test]"' in setup
    ci = (ROOT / ".ci" / "run").read_text()
    for marker, command in (("<!-- setup-command -->", setup), ("<!-- test-command -->", tests)):
        extracted = subprocess.run(
            ["awk", "-v", f"marker={marker}", "$0 ~ marker {getline; getline; print; exit}", "README.md"],
            cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
        assert extracted == command, f"CI would read {extracted!r} after {marker}, the README shows {command!r}"
        assert marker in ci
    # CI installs nothing of its own: the README's setup, then only the browser test's tools
    installs = [line for line in ci.splitlines() if "pip install" in line and not line.lstrip().startswith("#")]
    assert installs == [], f".ci/run installs beyond the README's setup command: {installs}"


def _declared_distributions() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"]) + list(project["optional-dependencies"]["test"])
    return {_normal(n) for n in _names(reqs)}


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _top_level_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


#: Imports provided by the browser test's own setup (.ci/browser-setup), not by the README's setup.
BROWSER_ONLY = {"playwright", "jupyterlab"}
#: Imports that exist only where they are used, each behind a guard: Colab's own package.
ELSEWHERE = {"google"}


def test_every_import_of_the_tests_and_lessons_is_declared():
    """What a newcomer's environment (the README's setup command) must hold: every module the
    library, the tests and the lessons import is the standard library's, the project's own, or
    comes from a distribution pyproject.toml declares (dependencies or the ``test`` extra)."""
    own = {"blendlab", "benchmarks", "_fast", "conftest"} | {p.stem for p in (ROOT / "tests").rglob("*.py")}
    from_dist = importlib.metadata.packages_distributions()
    declared = _declared_distributions()
    missing = []
    files = [*(ROOT / "blendlab").rglob("*.py"), *(ROOT / "tests").rglob("*.py"),
             *(ROOT / "notebooks").glob("*.py"), *(ROOT / "benchmarks").glob("*.py"),
             *(ROOT / "tools").glob("*.py")]
    for path in files:
        for name in sorted(_top_level_imports(path) - own - ELSEWHERE - set(sys.stdlib_module_names)):
            if "browser" in path.parts and name in BROWSER_ONLY:
                continue
            dists = {_normal(d) for d in from_dist.get(name, [])}
            if not dists & declared:
                missing.append(f"{path.relative_to(ROOT)} imports {name} "
                               f"({', '.join(sorted(dists)) or 'not installed'}), which pyproject.toml does not declare")
    assert not missing, "\n".join(missing)
