"""blendlab.sweep on the local backend (tiny preset, seconds): expansion, ids, validation before any
model loads, records, resume, failed rows recorded, the CLI and the results figures."""

from __future__ import annotations

import json

import pandas as pd
import pytest

import blendlab.sweep as sw
from blendlab.cli import main
from blendlab.errors import InputError
from blendlab.images import sample_image, save_image
from blendlab.masks import box_mask, mask_to_pil

FAST = dict(timestep_respacing="4", skip_timesteps=1, iterations_num=1, batch_size=2)


def spec(**changes):
    base = dict(preset="tiny", config=FAST, grid=dict(aug_num=[1, 2]), seeds=2,
                inputs=[{"example": "insert"}, {"example": "replace"}])
    return {**base, **changes}


def test_expansion_ids_are_deterministic_and_distinct():
    rows = sw.expand(spec())
    assert len(rows) == 2 * 2 * 2
    assert len({r["id"] for r in rows}) == 8
    assert [r["id"] for r in rows] == [r["id"] for r in sw.expand(spec())]
    assert rows[0]["setting"] == {"aug_num": 1} and rows[0]["config"]["timestep_respacing"] == "4"
    other = sw.expand(spec(config={**FAST, "batch_size": 1}))
    assert not {r["id"] for r in rows} & {r["id"] for r in other}


def test_files_manifest_and_toml(tmp_path):
    save_image(sample_image("shapes", size=32), tmp_path / "a.png")
    mask_to_pil(box_mask(32, (0.2, 0.2, 0.6, 0.6))).save(tmp_path / "a_mask.png")
    (tmp_path / "edits.csv").write_text("image,mask,prompt\na.png,a_mask.png,a red hat\n")
    (tmp_path / "s.toml").write_text('preset = "tiny"\nseeds = [3]\ninputs = [{manifest = "edits.csv"}]\n'
                                     '[config]\ntimestep_respacing = "4"\nskip_timesteps = 1\n[grid]\naug_num = [1, 2]\n')
    rows = sw.validate(sw.expand(tmp_path / "s.toml"))
    assert len(rows) == 2 and rows[0]["input"]["prompt"] == "a red hat" and rows[0]["seed"] == 3
    before = rows[0]["id"]
    save_image(sample_image("shapes", size=16), tmp_path / "a.png")  # new contents -> new id
    assert sw.expand(tmp_path / "s.toml")[0]["id"] != before


def test_a_bad_row_is_reported_before_any_model_loads(tmp_path, monkeypatch):
    import blendlab.models

    monkeypatch.setattr(blendlab.models, "load_models", lambda *a, **k: pytest.fail("a model was loaded"))
    bad = spec(inputs=[{"example": "insert"}, {"image": str(tmp_path / "missing.png"), "prompt": "x"}],
               grid=dict(aug_num=[1, 0]))
    with pytest.raises(InputError) as err:
        sw.run_sweep(bad, tmp_path / "out", progress=False)
    msg = str(err.value)
    assert "missing.png" in msg and "aug_num must be at least 1" in msg and "nothing was run" in msg
    assert not (tmp_path / "out").exists()
    with pytest.raises(InputError, match=r"sweep spec grid \(EditConfig fields\): unknown key 'guidance_weight'"):
        sw.expand(spec(grid=dict(guidance_weight=[1])))


def test_local_run_records_resumes_and_keeps_failed_rows(tmp_path):
    out = tmp_path / "out"
    calls = []

    def flaky(models, row, out_):
        calls.append(row["id"])
        if row["seed"] == 1 and row["setting"]["aug_num"] == 2 and row["input"]["name"] == "insert":
            raise RuntimeError("injected failure")
        return sw.run_row(models, row, out_)

    first = sw.run_sweep(spec(), out, progress=False, fn=flaky)
    assert first == dict(rows=8, done=7, failed=1, missing=0, skipped=0, ran=8)
    table = pd.read_csv(out / "results.csv")
    assert len(table) == 8 and set(table.status) == {"done", "failed"}
    failed = table[table.status == "failed"].iloc[0]
    assert "injected failure" in failed.error
    done = table[table.status == "done"]
    assert (done.unet_forwards > 0).all() and done.clip_distance.notna().all()
    assert (done.background_drift == 0).all()  # enforce_background
    assert len(list((out / "loads").iterdir())) == 1
    calls.clear()
    second = sw.run_sweep(spec(), out, progress=False)  # resume: only the failed row runs
    assert second == dict(rows=8, done=8, failed=0, missing=0, skipped=7, ran=1)
    third = sw.run_sweep(spec(), out, progress=False, fn=flaky)
    assert third["ran"] == 0 and calls == []


def test_cli_sweep_dry_run_and_run(tmp_path, capsys):
    path = tmp_path / "s.json"
    path.write_text(json.dumps(spec(seeds=1, inputs=[{"example": "insert"}])))
    assert main(["sweep", "--dry-run", str(path)]) == 0
    assert "2 rows, 12 sample-steps; about" in capsys.readouterr().out
    assert main(["sweep", str(path), "--out", str(tmp_path / "o"), "--no_progress"]) == 0
    assert "2/2 done, 0 failed, 0 skipped" in capsys.readouterr().out
    assert main(["sweep", str(path), "--out", str(tmp_path / "o"), "--no_progress"]) == 0
    assert "2/2 done, 0 failed, 2 skipped" in capsys.readouterr().out


def test_grid_and_metric_plot(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    sw.run_sweep(spec(seeds=1), tmp_path, progress=False)
    fig = sw.grid_figure(tmp_path, "aug_num")
    assert len(fig.axes) == 2 * 2
    fig = sw.metric_plot(tmp_path, "aug_num")
    assert len(fig.axes) == 3


def test_folder_and_yaml_inputs(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    save_image(sample_image("shapes", size=32), photos / "b.png")
    mask_to_pil(box_mask(32, (0.1, 0.1, 0.5, 0.5))).save(photos / "b_mask.png")
    (photos / "b.txt").write_text("a blue hat\n")
    (tmp_path / "s.yaml").write_text("preset: tiny\nseeds: 1\ninputs:\n  - {folder: photos}\n"
                                     "config: {timestep_respacing: '4', skip_timesteps: 1}\n")
    (row,) = sw.validate(sw.expand(tmp_path / "s.yaml"))
    assert row["input"]["prompt"] == "a blue hat" and row["input"]["mask"].endswith("b_mask.png")


def test_the_toy_preset_records_the_judges_verdict(tmp_path):
    toy = dict(preset="toy", config=FAST, seeds=[0], inputs=[{"toy": {"scenes": 1, "prompts_per_scene": 1}}])
    assert sw.run_sweep(toy, tmp_path, progress=False)["done"] == 1
    (record,) = sw.read_records(tmp_path).values()
    assert record["prompt"].startswith("a ") and isinstance(record["judge_correct"], bool)
    assert record["unet_forwards"] == 3 and 0 <= record["judge_share"] <= 1


def test_a_row_that_goes_non_finite_is_recorded_as_failed_with_the_message(tmp_path):
    nan = spec(config=dict(FAST, timestep_respacing="100", skip_timesteps=0, batch_size=1, aug_num=1),
               grid={}, seeds=1, inputs=[{"example": "insert"}])  # "skip 0" on the tiny preset
    assert sw.run_sweep(nan, tmp_path, progress=False)["failed"] == 1
    (record,) = sw.read_records(tmp_path).values()
    assert record["status"] == "failed" and record["error"].startswith("NonFiniteError: step ")
    assert " · t=" in record["error"] and "Try: more skipped steps" in record["error"]
    assert not (tmp_path / "images" / record["id"]).exists()  # no samples of a failed row
