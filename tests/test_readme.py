"""The README's examples run as written: the Python example end to end, the CLI example's flags parse."""

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

from blendlab.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README, flags=re.S)


def test_the_python_example_runs_and_writes_what_it_says(tmp_path):
    (code,) = [b for b in _blocks("python") if "bl.edit(" in b]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    written = sorted((tmp_path / "blue_square").glob("*.png"))
    assert len(written) == 4, written  # one batch of 4, as the comment says
    # named by CLIP distance, best first: the names sort in rank order
    assert re.fullmatch(r"\d{5}_.*\.png", written[0].name)
    assert out.stdout.strip().splitlines()[-1].startswith("Verdict(colour=")


def test_every_blendlab_command_in_the_readme_parses():
    commands = []
    for block in _blocks("bash"):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("#")[0].strip()
            if line.startswith("blendlab "):
                commands.append(shlex.split(line)[1:])
    assert any(c[0] == "edit" and "toy" in c for c in commands), "the README shows a toy `blendlab edit`"
    parser = build_parser()
    for argv in commands:
        parser.parse_args(argv)  # argparse exits (SystemExit) on an unknown flag


def test_the_demo_timing_table_is_the_benchmarks_json():
    """The README's "demo's wall time" table shows docs/bench_demo.json (written by benchmarks/bench_demo.py)."""
    import json
    import re

    rows = json.loads((ROOT / "docs" / "bench_demo.json").read_text())["rows"]
    text = README
    section = text[text.index("### The demo's wall time"):]
    section = section[:section.index("\n### ", 5)]
    arms = {"policy": "the policy", "1 thread": "1 thread", "2 spinning threads": "2 threads, idle threads spin"}
    for arm, label in arms.items():
        quiet = next(r for r in rows if r["arm"] == arm and r["condition"] == "quiet")
        busy = next(r for r in rows if r["arm"] == arm and r["condition"].startswith("busy"))
        line = next(l for l in section.splitlines() if l.startswith(f"| {label}"))
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert cells[1] == f"{quiet['median_s']:.1f} s ({quiet['min_s']:.1f}–{quiet['max_s']:.1f})", line
        assert cells[2] == f"{busy['median_s']:.1f} s", line
    policy = [r for r in rows if r["arm"] == "policy"]
    assert all(r["median_s"] <= (40 if r["condition"] == "quiet" else 60) for r in policy)
    assert re.search(r"meets both targets", section)
