"""blendlab.speed (modes, suite, summaries, Pareto) and a smoke run of benchmarks/quality_per_second.py.

Structure and counts only, never speed: timings on a shared CPU prove nothing in a unit test.
"""

import json
import math
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # `benchmarks` lives at the repo root

import blendlab as bl  # noqa: E402
from blendlab import speed  # noqa: E402

from benchmarks import quality_per_second as qps  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_modes_are_valid_configs_and_fewer_steps_start_at_the_same_noise_level():
    base = bl.EditConfig(prompt="x", batch_size=4)
    keys = [m.key for m in speed.MODES]
    assert keys[0] == "default" and len(set(keys)) == len(keys)
    assert speed.mode("default").config(base) == base  # the paper's algorithm, unchanged
    half, quarter = speed.mode("steps-1/2").config(base), speed.mode("ddim-1/4").config(base)
    assert (half.timestep_respacing, half.skip_timesteps, half.num_steps) == ("50", 12, 38)
    assert (quarter.timestep_respacing, quarter.ddim, quarter.num_steps) == ("ddim25", True, 20)
    from blendlab.sampler import create_diffusion

    first = {}
    for name, cfg in (("paper", base), ("half", half), ("quarter", quarter)):
        diffusion = create_diffusion(bl.load_models("tiny"), cfg.timestep_respacing)
        first[name] = int(diffusion.timestep_map[cfg.num_steps - 1])
    assert first == {"paper": 747, "half": 754, "quarter": 760}  # the nearest each respacing has
    assert speed.mode("prune-0.5-keep-2").config(base.replace(batch_size=1)).keep == 1  # capped
    for m in speed.MODES:
        assert m.gives_up and m.label
        m.config(bl.EditConfig(prompt="x", batch_size=2, timestep_respacing="20", skip_timesteps=10))
    with pytest.raises(KeyError, match="no fast mode"):
        speed.mode("warp-speed")


def test_toy_suite_is_seeded_and_covers_colours_and_shapes():
    a, b = speed.toy_suite(4, 3), speed.toy_suite(4, 3)
    assert [e.prompt for e in a] == [e.prompt for e in b] and all(torch.equal(x.image, y.image) for x, y in zip(a, b))
    assert len({e.prompt for e in a}) == 12  # every colour x shape once
    assert len({e.seed for e in a}) == 12 and {e.scene for e in a} == {0, 1, 2, 3}
    big = speed.toy_suite(1, 1, size=64)[0]
    assert big.image.shape == (1, 3, 64, 64) and big.mask.shape == (1, 1, 64, 64) and big.mask.sum() > 0
    assert [e.prompt for e in speed.toy_suite(2, 2, seed=1)] != [e.prompt for e in a[:4]]


def _record(edit, cpu, correct, order=None):
    return dict(edit=edit, cpu_s=cpu, wall_s=2 * cpu, unet_forwards=10, unet_rows=20, unet_backwards=10,
                clip_views=80, samples=len(correct), correct=correct, colour_correct=correct,
                order=order or list(range(len(correct))), best_correct=correct[(order or [0])[0]],
                best_colour_correct=correct[(order or [0])[0]])


def test_summary_rates_ratios_time_to_first_and_front():
    records = {
        "reference": [_record(0, 4.0, [True, False]), _record(1, 4.0, [False, False])],
        "default": [_record(0, 2.0, [True, True]), _record(1, 3.0, [False, True], order=[1, 0])],
        "slow-bad": [_record(0, 5.0, [False, False]), _record(1, 5.0, [False, False])],
    }
    s = speed.summarize(records)
    d = s["default"]
    assert d["best_success"] == 1.0 and d["all_success"] == 0.75 and d["cpu_s_per_set"] == 2.5
    assert d["cpu_ratio_vs_reference"]["per_edit"] == [0.5, 0.75] and d["cpu_ratio_vs_reference"]["median"] == 0.625
    assert d["time_to_first_correct_cpu_s"] == 2.5  # every top-ranked result was right
    assert s["reference"]["time_to_first_correct_cpu_s"] == 8.0  # 4 s per set, right half the time
    assert s["slow-bad"]["time_to_first_correct_cpu_s"] is None
    assert [k for k, v in s.items() if v["pareto"]] == ["default"]
    lo, hi = d["best_success_ci"]
    assert 0.3 < lo < 1.0 == hi
    assert speed.wilson(0, 10)[0] == 0 and speed.wilson(10, 10)[1] == 1
    assert speed.pareto_front({"a": (1, 0.5), "b": (2, 0.9), "c": (2, 0.5), "d": (0.5, 0.1)}) == ["d", "a", "b"]


def test_load_results_reads_a_file_or_says_none(tmp_path):
    path = tmp_path / "q.json"
    path.write_text(json.dumps({"modes": {}}))
    assert speed.load_results(path) == {"modes": {}}
    assert speed.load_results(tmp_path / "missing.json") is None


def test_the_shipped_results_are_package_data_read_without_a_checkout(tmp_path, monkeypatch):
    # the file lives in the package (found from an installed blendlab, not through a checkout or cwd)
    assert speed.RESULTS_PATH.parent == Path(speed.__file__).parent
    assert (ROOT / speed.RESULTS_FILE).resolve() == speed.RESULTS_PATH
    monkeypatch.chdir(tmp_path)
    shipped = speed.load_results()
    assert shipped is not None and "default" in shipped["modes"] and "reference" in shipped["modes"]
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert '"blendlab.speed" = ["quality_per_second.json"]' in pyproject


def test_run_edit_keeps_its_old_name_and_warns(monkeypatch):
    monkeypatch.setattr(speed, "run_suite_edit", lambda *a, **k: ("ran", a, k))
    with pytest.warns(DeprecationWarning, match="run_suite_edit"):
        assert speed.run_edit(1, mode="x") == ("ran", (1,), {"mode": "x"})


def test_quick_benchmark_on_tiny_counts_forwards_backwards_and_views(tmp_path, capsys):
    modes = "reference,default,prune-0.3-keep-1,every-2-reuse,mpgd,views-2-late,steps-1/4"
    res = qps.main(["--quick", "--preset", "tiny", "--threads", "1", "--modes", modes,
                    "--out", str(tmp_path / "q.json"), "--png", str(tmp_path / "q.png")])
    saved = json.loads((tmp_path / "q.json").read_text())
    assert (tmp_path / "q.png").stat().st_size > 10_000
    assert saved["machine"]["cpu"] and saved["suite"]["edits"] == 2 and saved["timing_basis"] == "cpu"
    m = res["modes"]
    assert set(m) == set(modes.split(",")) and list(m)[:2] == ["reference", "default"]
    steps, batch, views = 10, 4, 4
    assert m["reference"]["unet_forwards_per_set"] == 2 * steps
    assert m["default"]["unet_forwards_per_set"] == m["default"]["unet_backwards_per_set"] == steps
    assert m["mpgd"]["unet_forwards_per_set"] == steps and m["mpgd"]["unet_backwards_per_set"] == 0
    assert m["every-2-reuse"]["unet_backwards_per_set"] == 5
    assert m["default"]["clip_views_per_set"] == steps * views * batch + batch  # guidance + the ranking
    assert m["views-2-late"]["clip_views_per_set"] == (5 * views + 5 * 2) * batch + batch
    pruned = m["prune-0.3-keep-1"]
    assert pruned["unet_rows_per_set"] == 3 * batch + 7 and pruned["samples"] == 2  # one finished per edit
    assert m["steps-1/4"]["steps"] == 3
    for key, v in m.items():
        assert len(res["records"][key]) == 2 and v["cpu_s_per_set"] > 0
        assert 0 <= v["best_success"] <= 1 and v["best_success_ci"][0] <= v["best_success"] <= v["best_success_ci"][1]
        if key != "reference":
            assert len(v["cpu_ratio_vs_reference"]["per_edit"]) == 2
    flops = {k: v["real_config"]["tflop_per_sample"] for k, v in m.items()}
    assert flops["reference"] / flops["default"] == pytest.approx(1.44, abs=0.01)
    assert flops["mpgd"] < flops["every-2-reuse"] < flops["default"] and flops["steps-1/4"] < flops["default"] / 3
    assert [t["status"] for t in res["targets"]][1] == "report" and res["targets"][0]["status"] in ("PASS", "FAIL")
    out = capsys.readouterr().out
    assert "QUICK RUN" in out and "targets:" in out and saved["machine"]["cpu"] in out
    assert not any(p.requires_grad for p in bl.load_models("tiny").unet.parameters())
    assert math.isfinite(res["seconds_total"])
    again = qps.main(["--replot", str(tmp_path / "q.json"), "--png", str(tmp_path / "again.png")])
    assert again["modes"] == saved["modes"] and (tmp_path / "again.png").stat().st_size > 10_000
