"""The project files agree with each other: environment.yml, pyproject.toml, README, CI."""

import re
import subprocess
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _names(reqs):
    return {re.split(r"[<>=!~ \[]", r.strip('"'))[0].lower() for r in reqs}


def test_environment_yml_has_the_same_dependencies_as_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    wanted = set(project["dependencies"]) | set(extras["test"]) | set(extras["ray"])  # CI tests the ray extra
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert "python=3.11" in env["dependencies"]
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert {r.replace('"', "") for r in pip if r != "-e ."} == {r.replace('"', "") for r in wanted}
    torchlike = [r for r in wanted if _names([r]) & {"torch", "torchvision"}]
    assert all(">=" in r and "==" not in r and "<" not in r for r in torchlike)  # lower bounds only
    assert any(r.startswith("setuptools<81") for r in wanted)


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    block = readme.split("<!-- test-command -->", 1)[1].split("```", 2)[1]
    command = block.strip().splitlines()[1]
    extracted = subprocess.run(
        ["awk", "/<!-- test-command -->/{getline; getline; print; exit}", "README.md"],
        cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    assert extracted == command and "pytest" in command and "notebooks" in command
    ci = (ROOT / ".ci" / "run").read_text()
    assert "python3 -m venv" in ci and '-e ".[test,ray]"' in ci  # tests/test_sweep_ray.py never skips
