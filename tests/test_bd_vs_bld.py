"""The side-by-side benchmark of Blended Diffusion and Blended Latent Diffusion: the shipped figures are
what their records say, the README's table is the shipped JSON, and a one-edit run has the report's shape."""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `benchmarks` lives at the repo root

from benchmarks import bd_vs_bld  # noqa: E402
from blendlab.latent.measured import SIDE_BY_SIDE, side_by_side, side_by_side_table  # noqa: E402

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.fixture(scope="module")
def shipped():
    return side_by_side()


def test_the_shipped_figures_are_what_their_records_say(shipped):
    again = bd_vs_bld.summarize(shipped["records"])
    assert again["arms"] == shipped["arms"] and again["speedup"] == shipped["speedup"]
    assert shipped["edits"] == 16 and not shipped["quick"] and shipped["timing_basis"] == "cpu"
    methods = [r["method"] for r in shipped["records"]]
    assert methods[:6] == ["bd", "bld", "bld_wide", "bld_wide", "bld", "bd"], "the order alternates every edit"
    assert all(len(v["correct"]) == r["samples"] for r in shipped["records"] for v in r["variants"].values())
    assert {r["samples"] for r in shipped["records"] if r["method"] != "bld_wide"} == {shipped["batch"]}
    assert {r["samples"] for r in shipped["records"] if r["method"] == "bld_wide"} == {shipped["wide_batch"]}


def test_the_shipped_run_meets_the_issue_s_targets(shipped):
    lines = bd_vs_bld.targets(shipped)
    assert lines[0].startswith("PASS") and "x10 faster" in lines[0]
    arm = {(a["method"], a["background"]): a for a in shipped["arms"]}
    assert arm[("bld", "pixel")]["outside_mse"] == 0 and arm[("bd", "paste")]["outside_mse"] == 0
    assert arm[("bld", "none")]["outside_mse"] > 0, "without reconstruction the VAE changes the outside"


def test_the_readme_table_is_the_shipped_measurements(shipped, tmp_path):
    readme = README.read_text()
    block = readme.split(bd_vs_bld.README_START)[1].split(bd_vs_bld.README_END)[0].strip()
    assert block == bd_vs_bld.format_markdown(shipped)
    assert len(side_by_side_table(shipped)) == 6


def test_a_one_edit_run_writes_a_report_of_the_same_shape(tmp_path):
    out = tmp_path / "r.json"
    report = bd_vs_bld.main(["--edits", "1", "--batch", "2", "--wide_batch", "3", "--out", str(out)])
    saved = json.loads(out.read_text())
    assert [r["method"] for r in saved["records"]] == ["bd", "bld", "bld_wide"] and saved["records"][2]["samples"] == 3
    assert {(a["method"], a["background"]) for a in saved["arms"]} == {(a["method"], a["background"])
                                                                      for a in side_by_side(SIDE_BY_SIDE)["arms"]}
    assert report["speedup"]["bld"] > 1
