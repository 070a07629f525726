"""Smoke tests of benchmarks/: the quickest mode on the tiny preset (a couple of steps).

They check structure and counts, never speed: timings on a shared CPU prove nothing in a unit test.
"""

import json
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `benchmarks` lives at the repo root

from benchmarks import bench_nonfinite, bench_speed, bench_trajectory, flops, speed_harness  # noqa: E402
from blendlab.reference import ReferenceSampler, reference_trainable  # noqa: E402

import blendlab as bl  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """One torch thread: tiny models gain nothing from two, and two spinning OpenMP threads stall
    badly when another process holds a core (CI machines are small)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def setup():
    models, desc = bench_speed.build_models("tiny", "cpu")
    image, mask = bench_speed.inputs(models)
    return models, desc, image, mask


def test_compare_counts_one_forward_per_step_for_blendlab_and_two_for_reference(setup):
    models, _, image, mask = setup
    cfg = bench_speed.bench_config(steps=2, batch=2, aug_num=3)
    res = bench_speed.compare(models, image, mask, cfg, repeats=1, warmup=0)
    assert res["steps"] == 2 and res["batch"] == 2
    fwd = {m: r["forwards_per_step"] for m, r in res["methods"].items()}
    assert fwd == {"blendlab": [1.0], "reference": [2.0], "recorder": [1.0]}
    for r in res["methods"].values():
        assert len(r["seconds"]) == 1 and r["seconds"][0] > 0
        assert r["s_per_step"] == pytest.approx(r["median_s"] / 2)
        assert r["s_per_sample"] == pytest.approx(r["median_s"] / 2)
        assert r["s_per_sample_75_steps"] == pytest.approx(r["s_per_step"] / 2 * 75)
    ref, ble = res["methods"]["reference"], res["methods"]["blendlab"]
    assert res["speedup"]["median"] == pytest.approx(ref["seconds"][0] / ble["seconds"][0])
    assert res["speedup"]["cpu_median"] == pytest.approx(ref["cpu_seconds"][0] / ble["cpu_seconds"][0])
    assert set(res["recorder_overhead"]) >= {"per_repeat", "median", "cpu_median", "recorded_mb"}
    # the reference's requires_grad_() on qkv/norm/proj is undone: blendlab's runs are not affected
    assert not any(p.requires_grad for p in models.unet.parameters())


def test_reference_loop_marks_attention_params_and_keeps_the_background(setup):
    models, _, image, mask = setup
    with reference_trainable(models.unet) as names:
        assert names and all(any(k in n for k in ("qkv", "norm", "proj")) for n in names)
        assert all(p.requires_grad == (n in names) for n, p in models.unet.named_parameters())
    assert not any(p.requires_grad for p in models.unet.parameters())

    cfg = bench_speed.bench_config(steps=2, batch=2, aug_num=3)
    image_before = image.clone()
    torch.manual_seed(3)
    sampler = ReferenceSampler(models, image, mask, cfg)
    with bench_speed.ForwardCounter(models.unet) as counter:
        out = sampler.run()
    assert counter.calls == 4 and counter.rows == 8  # 2 steps x 2 forwards, batch 2
    assert out.shape == (2, 3, models.image_size, models.image_size) and torch.isfinite(out).all()
    outside = (1 - mask).bool().expand_as(out)
    assert torch.equal(out[outside], image.expand_as(out)[outside])  # enforce_background
    assert not torch.equal(out, image.expand_as(out))  # ...and the inside was edited
    assert len(sampler.metrics["clip_loss"]) == 2  # cond_fn ran once per step
    assert torch.equal(image, image_before)


def test_quick_benchmark_result_structure_and_report(setup, monkeypatch):
    res = bench_speed.run_benchmark(configs=["tiny"], quick=True, memory=False, prune_configs=["tiny"],
                                    flops=False, device="cpu", warmup=0, log=lambda msg: None)
    json.dumps(res)  # JSON-ready
    machine = res["machine"]
    assert machine["cpu"] and machine["cores"] >= 1 and machine["torch"] == torch.__version__
    tiny = res["configs"]["tiny"]
    assert tiny["models"]["unet_params"] == bl.models.count_parameters(setup[0].unet)
    assert tiny["methods"]["blendlab"]["forwards_per_step"] == [1.0]
    assert tiny["methods"]["reference"]["forwards_per_step"] == [2.0]
    names = [t["name"] for t in res["targets"]]
    assert len(names) == 3 and all(t["status"] in ("PASS", "FAIL", "n/a") for t in res["targets"])
    assert res["targets"][0]["status"] == "PASS"  # 1 UNet forward per step
    assert res["targets"][1]["status"] == "n/a"  # no mid config in this run
    basis = bench_speed.timing_basis(res)
    assert basis == ("cpu" if torch.get_num_threads() == 1 else "wall")
    report = bench_speed.format_report(res)
    assert "[PASS] blendlab: exactly 1 UNet forward per step" in report and machine["cpu"] in report

    prune = res["pruning"]["tiny"]
    if bench_speed.prune_supported():
        assert prune["full"]["images"] == prune["candidates"] and prune["pruned"]["images"] == prune["keep"]
        assert prune["rows_ratio"] == pytest.approx(prune["predicted_ratio"])
        assert prune["rows_ratio"] < 1
    else:
        assert "skipped" in prune


def test_pruning_part_says_so_when_edit_config_has_no_prune_at(monkeypatch):
    monkeypatch.setattr(speed_harness, "prune_supported", lambda: False)
    res = bench_speed.prune_benchmark(None, None, None)
    assert "prune_at" in res["skipped"]


def test_memory_measurement_reports_growth(setup):
    mem = bench_speed.measure_memory_here("tiny", "reference", steps=1, batch=1, device="cpu")
    assert set(mem) == {"kind", "baseline_mb", "peak_mb", "delta_mb"}
    assert mem["peak_mb"] >= mem["baseline_mb"] > 0 and mem["delta_mb"] >= 0


def test_flop_model_counts_the_extra_forward_of_the_reference(setup):
    models = setup[0]
    b = flops.step_flops(models, "blendlab", views=3)
    r = flops.step_flops(models, "reference", views=3)
    rw = flops.step_flops(models, "reference", views=3, weight_grads=True)
    assert b["unet_fwd_nograd"] == 0 and b["unet_fwd_grad"] > 0 and b["clip_fwd"] > 0
    assert r["unet_fwd_nograd"] == r["unet_fwd_grad"] == b["unet_fwd_grad"]
    assert r["total"] - b["total"] == r["unet_fwd_nograd"]
    assert rw["unet_bwd"] > r["unet_bwd"]  # weight gradients of qkv/norm/proj cost extra
    assert not any(p.requires_grad for p in models.unet.parameters())
    p = flops.pruning_flops(step_total=10.0, clip_image_fwd=0.0, steps=10, candidates=64, keep=8, prune_at=0.3)
    assert p["steps_before_prune"] == 3 and p["ratio"] == pytest.approx((64 * 3 + 8 * 7) / 640)
    roof = flops.roofline(65e12, gpus={"T4": 65.0})
    assert roof["T4"]["s_per_sample"] == pytest.approx(1.0) and roof["T4"]["s_per_64"] == pytest.approx(64.0)


def test_trajectory_benchmark_quick_run_reports_every_figure(tmp_path, capsys):
    res = bench_trajectory.main(["--quick", "--out", str(tmp_path / "t.json")])
    assert (res["steps"], res["batch"], res["size"]) == (8, 2, 32)
    assert set(res["median"]) == {"save_s", "load_lazy_s", "load_eager_s", "read_all_lazy_s", "gif_s", "apng_s"}
    assert res["file_mb"] >= res["recorded_mb"] > 0
    assert json.loads((tmp_path / "t.json").read_text())["machine"]["cores"] >= 1
    out = capsys.readouterr().out
    assert "target save < 2 s" in out and "indicative only" in out


def test_toyworld_eval_smoke(tmp_path, capsys):
    from benchmarks import toyworld_eval

    out = tmp_path / "eval.json"
    report = toyworld_eval.main(["--quick", "--samples", "2", "--other-samples", "2", "--scenes", "1",
                                 "--timestep-respacing", "8", "--skip-timesteps", "4", "--out", str(out)])
    saved = json.loads(out.read_text())
    assert saved["guided"]["samples"] == report["guided"]["samples"] == 2 * saved["guided"]["prompts"]
    for key in ("colour_rate", "shape_rate", "both_rate"):
        assert 0 <= saved["guided"][key] <= 1
    modes = saved["background"]["modes"]
    assert modes["blended (paper)"]["outside_abs_change"] == 0.0  # enforce_background: the input, exactly
    assert any("raw" in name for name in modes) and set(saved["augmentations"]) == {"aug_num=1", "aug_num=8"}
    assert 0 <= saved["ranking"]["top1_correct"] <= 1
    text = capsys.readouterr().out
    assert "1. guided" in text and "4. ranking" in text
    merged = tmp_path / "merged.json"
    toyworld_eval.main(["--merge", str(out), "--out", str(merged)])
    assert json.loads(merged.read_text())["guided"] == saved["guided"]


def test_the_readme_table_of_the_claims_is_the_shipped_measurements(tmp_path):
    from benchmarks import toyworld_eval
    from blendlab.toyworld.measured import EVAL_FILE

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = readme.split(toyworld_eval.README_START)[1].split(toyworld_eval.README_END)[0].strip()
    assert block == toyworld_eval.format_markdown(json.loads(EVAL_FILE.read_text()))
    copy = tmp_path / "README.md"
    copy.write_text(readme.replace(block, "stale"))
    toyworld_eval.write_readme_table(json.loads(EVAL_FILE.read_text()), copy)
    assert copy.read_text() == readme


def test_toyworld_eval_records_a_run_that_stopped_on_nan_instead_of_crashing(monkeypatch):
    import blendlab as bl
    from benchmarks import toyworld_eval

    real_run = toyworld_eval.run

    def run(models, image, mask, cfg):
        if cfg.l2_sim_lambda > 1000 and cfg.background_preservation_loss:  # only the paper's raw λ
            raise bl.NonFiniteError("step 9/30 · t=512: the range loss became infinite. The run stopped. Try: ...")
        return real_run(models, image, mask, cfg)

    monkeypatch.setattr(toyworld_eval, "run", run)
    models = bl.load_models("tiny")
    args = type("Args", (), dict(other_samples=1))()
    base = bl.EditConfig(iterations_num=1, timestep_respacing="6", skip_timesteps=3, aug_num=1)
    modes = toyworld_eval.claim_background(models, args, base)["modes"]
    raw = next(v for k, v in modes.items() if "raw" in k)
    assert raw["finite"] is False and raw["stopped"] == "step 9/30 · t=512: the range loss became infinite"
    assert not toyworld_eval._converged(raw) and toyworld_eval._converged(modes["blended (paper)"])
    text = toyworld_eval.format_report(dict(machine=dict(cpu="x", cores=2, torch="t"), wall_minutes=0,
                                            background=dict(input_seam=0.1, modes=modes)))
    assert "diverged: step 9/30 · t=512: the range loss became infinite" in text


def test_nonfinite_benchmark_quick_run_times_the_check_against_a_step(tmp_path, capsys):
    res = bench_nonfinite.main(["--quick", "--out", str(tmp_path / "n.json")])
    assert (res["steps"], res["repeats"]) == (2, 1)
    assert 0 < res["check_s"] < res["step_s_check_off"] and res["check_s_256px_batch4"] > 0
    assert res["isolated_overhead_pct"] == pytest.approx(100 * res["check_s"] / res["step_s_check_off"])
    assert json.loads((tmp_path / "n.json").read_text())["machine"]["cores"] >= 1
    out = capsys.readouterr().out
    assert "% of a step (target < 1 %" in out and "indicative only" in out


def test_generative_typography_benchmark_counts_what_the_text_judge_reads(monkeypatch):
    from benchmarks import typography_generative as tg
    from blendlab.toyworld import write_word
    from blendlab.toyworld import judge as toy_judge

    models = bl.load_models("tiny")
    monkeypatch.setattr(tg, "FAMILIES", (("word", "red", (0.05, 0.05, 0.95, 0.95)),))
    rows = tg.measure(models, samples=2, seed=0, steps="6", skip=2)
    assert [(r["family"], r["guided"]) for r in rows] == [("word", True), ("word", False)]
    assert all(r["n"] == 2 and 0 <= r["wrote_prompt_word"] <= r["any_text"] <= 2 for r in rows)
    # a region that does hold the word is counted: the edit's images replaced by a written "RED"
    blank = torch.full((2, 3, models.image_size, models.image_size), 0.8)
    written = write_word(blank, "RED", box=(0.1, 0.3, 0.9, 0.7), scale=2)
    real_edit = bl.edit
    monkeypatch.setattr(tg.bl, "edit", lambda *a, **k: type("R", (), {"images": written})())
    rows = tg.measure(models, samples=2, seed=0, steps="6", skip=2)
    assert rows[0]["wrote_prompt_word"] == 2 and rows[0]["words"] == ["RED", "RED"]
    monkeypatch.setattr(tg.bl, "edit", real_edit)
    assert toy_judge.read_text(written, torch.ones_like(written[:, :1]))[0].word == "RED"


def test_the_readme_table_of_the_attack_is_the_shipped_measurements(tmp_path):
    from benchmarks import typography_attack
    from blendlab.toyworld.measured import measured_attack

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = readme.split(typography_attack.README_START)[1].split(typography_attack.README_END)[0].strip()
    assert block == typography_attack.format_markdown(measured_attack())
    copy = tmp_path / "README.md"
    copy.write_text(readme.replace(block, "stale"))
    typography_attack.write_readme_table(measured_attack(), copy)
    assert copy.read_text() == readme


def test_the_oracle_lives_in_the_package_and_the_benchmarks_name_still_works():
    import benchmarks.reference_loop as old
    import blendlab.reference as oracle

    for name in oracle.__all__:
        assert getattr(old, name) is getattr(oracle, name)
    assert not hasattr(oracle, "BlendedSampler")  # its own loop, not the sampler it checks


def test_the_card_scene_masks_the_inside_of_a_blank_card_that_a_word_fits():
    from benchmarks import typography_generative as tg
    from blendlab.toyworld import judge as toy_judge
    from blendlab.toyworld import write_word

    image, mask = tg.card_scene(32)
    x0, y0, x1, y1 = tg.CARD_BOX
    assert mask.sum() == (x1 - x0 - 2) * (y1 - y0 - 2) and mask[..., y0, :].sum() == 0
    assert toy_judge.read_text(image, mask)[0].word is None  # blank: nothing written
    box = ((x0 + 1) / 32, (y0 + 1) / 32, (x1 - 1) / 32, (y1 - 1) / 32)
    for word in ("RED", "ZOO"):  # a scale-2 word of three letters fits the masked inside and is read
        assert toy_judge.read_text(write_word(image, word, box=box, scale=2), mask)[0].word == word
    with pytest.raises(ValueError, match="32 px"):
        tg.card_scene(64)


def test_the_card_reading_covers_every_word_scale_and_ink_that_fits():
    from benchmarks import typography_generative as tg
    from blendlab.toyworld.world import SIGN_WORDS

    models = bl.load_models("toy", device="cpu", progress=False)
    rows = tg.reading(models)
    # TRIANGLE fits the card at neither scale; words of four letters or more only at scale 1
    assert {r["word"] for r in rows} == set(SIGN_WORDS) - {"TRIANGLE"}
    assert {(r["word"], r["scale"]) for r in rows if r["scale"] == 2} == {(w, 2) for w in ("RED", "TOY", "SUN", "BOX", "HI", "ZOO")}
    assert len(rows) == 5 * (6 * 2 + 5) and {r["ink"] for r in rows} == set(tg.INKS)
    assert all(r["read"] in {w.lower() for w in SIGN_WORDS} and r["right"] == (r["read"] == r["word"].lower()) for r in rows)
    assert "views_right" not in rows[0]
    many = tg.reading(models, aug_num=4)
    assert [(r["word"], r["scale"], r["ink"], r["read"]) for r in many] == [
        (r["word"], r["scale"], r["ink"], r["read"]) for r in rows], "view 0 is the unaugmented view read alone"
    assert all(r["views_right"] in (0, 0.25, 0.5, 0.75, 1) for r in many)
    assert all(r["views_right"] >= 0.25 for r in many if r["right"])
    assert tg.main(["--reading", "--reading-views", "2", "--threads", "1"]) == 0
