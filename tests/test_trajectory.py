"""Recorded trajectories: save/load round trips, damaged and foreign files, comparisons, videos."""

import json
import os
import pickle
import sys
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

import blendlab as bl
from blendlab import trajectory
from blendlab.trajectory import pair_steps, step_distances

from _fast import fast_cfg

FIELDS = ("x_t", "pred_x0", "pred_x0_guided", "grad", "x_prev")


def record(models, image, mask, cfg, **kw):
    rec = bl.Recorder(**{"fields": FIELDS, **kw})
    result = bl.edit(models, image, mask, cfg, hooks=[rec], progress=False)
    return rec, result


@pytest.fixture(scope="module")
def runs():
    """Recordings of small tiny-preset edits: two iterations, blend vs no blend, another step count."""
    models = bl.load_models("tiny", device="cpu")
    image = bl.sample_image("grace_hopper", size=models.image_size)
    mask = bl.box_mask(models.image_size, (0.25, 0.25, 0.75, 0.75))
    cfg = fast_cfg(iterations_num=2)  # 8 steps, batch 2
    blend, result = record(models, image, mask, cfg)
    no_blend, _ = record(models, image, mask, cfg.replace(local_clip_guided_diffusion=True))
    coarse, _ = record(models, image, mask, cfg.replace(timestep_respacing="6", skip_timesteps=2))
    return dict(blend=blend, result=result, no_blend=no_blend, coarse=coarse, cfg=cfg, image=image, mask=mask)


def assert_same_recording(a, b):
    assert len(a.steps) == len(b.steps)
    for sa, sb in zip(a.steps, b.steps):
        for name in ("iteration", "index", "respaced_index", "timestep", "alpha_bar", "num_steps", "losses", "sample_ids"):
            assert getattr(sa, name) == getattr(sb, name), name
        assert list(sa.fields) == list(sb.fields)
        for name in sa.fields:
            assert sa.fields[name].dtype == sb.fields[name].dtype
            assert torch.equal(sa.fields[name], sb.fields[name]), name
    assert torch.equal(a.mask, b.mask) and torch.equal(a.init_image, b.init_image)
    assert a.cfg == b.cfg and a.preset == b.preset
    assert (a.every, a.fields, a.size, a.dtype, a.max_bytes) == (b.every, b.fields, b.size, b.dtype, b.max_bytes)


# -- what a recording holds ---------------------------------------------------------------------
def test_recorder_keeps_the_context_of_the_run(runs):
    rec, cfg = runs["blend"], runs["cfg"]
    assert rec.cfg == cfg and rec.preset == "tiny" and rec.prompt == "rock"
    assert torch.equal(rec.init_image, runs["image"]) and torch.equal(rec.mask, runs["mask"])
    first = rec.steps[0]
    assert first.timestep > rec.steps[1].timestep and rec.steps[cfg.num_steps - 1].timestep == 0
    assert first.label == f"step 0/8 · t={first.timestep}"  # the step counted from 0, as the loop's index
    assert rec.steps[-1].label == "step 7/8 · t=0"
    assert first.sample_ids == (0, 1)


def test_thinning_warns(tiny, image, mask):
    rec = bl.Recorder(fields=("x_t",), dtype=torch.float32, max_mb=0.05)
    with pytest.warns(UserWarning, match=r"max_mb=0.05 .* every other recorded step is dropped"):
        bl.edit(tiny, image, mask, fast_cfg(timestep_respacing="40", skip_timesteps=0, batch_size=1), hooks=[rec],
                progress=False)
    assert rec.thinned >= 1 and rec.every == 2**rec.thinned


# -- save / load --------------------------------------------------------------------------------
@pytest.mark.parametrize("lazy", [True, False], ids=["lazy", "eager"])
def test_round_trip_is_identical(runs, tmp_path, lazy):
    rec = runs["blend"]
    before = {id(s): {k: v.clone() for k, v in s.fields.items()} for s in rec.steps}
    path = rec.save(tmp_path / "run.npz")
    assert path == tmp_path / "run.npz" and [p.name for p in tmp_path.iterdir()] == ["run.npz"]  # no temp left
    loaded = bl.load_trajectory(path, lazy=lazy)
    assert_same_recording(rec, loaded)
    assert loaded.source == path and loaded.meta["blendlab_version"] == bl.__version__
    assert loaded.meta["preset"] == "tiny" and loaded.meta["format"] == "blendlab-trajectory"
    assert loaded.nbytes == rec.nbytes
    for s in rec.steps:  # saving did not touch the recording
        assert all(torch.equal(v, before[id(s)][k]) for k, v in s.fields.items())
    # what a loaded recording can do: save again (same content), compare, scrub
    again = bl.Recorder.load(loaded.save(tmp_path / "again.npz"))
    assert_same_recording(rec, again)


def test_the_file_is_a_plain_npz_with_json_metadata(runs, tmp_path):
    path = runs["blend"].save(tmp_path / "run.npz")
    with np.load(path, allow_pickle=False) as npz:
        assert np.array_equal(npz["steps/00003/pred_x0"], runs["blend"].steps[3].fields["pred_x0"].numpy())
        assert npz["mask"].shape == (1, 1, 32, 32)
    with zipfile.ZipFile(path) as zf:
        assert zf.namelist()[0] == "meta.json"
        meta = json.loads(zf.read("meta.json"))
    step = meta["steps"][3]
    assert set(step) >= {"iteration", "index", "t", "timestep", "alpha_bar", "num_steps", "losses", "fields"}
    assert meta["config"]["prompt"] == "rock" and meta["recorder"]["dtype"] == "float16"
    assert all(s["respaced_index"] == s["t"] for s in meta["steps"])  # the old key too, for one release


def test_a_file_written_before_respaced_index_still_loads(runs, tmp_path):
    """Files written before the rename call the respaced index "t" only: they load, under the new name."""
    rec = runs["blend"]
    path = rec.save(tmp_path / "run.npz")
    old = tmp_path / "old.npz"
    with zipfile.ZipFile(path) as zf, zipfile.ZipFile(old, "w") as out:
        for info in zf.infolist():
            data = zf.read(info)
            if info.filename == "meta.json":
                meta = json.loads(data)
                for step in meta["steps"]:
                    del step["respaced_index"]
                data = json.dumps(meta, indent=1).encode()
            out.writestr(info, data)
    loaded = bl.load_trajectory(old)
    assert [s.respaced_index for s in loaded.steps] == [s.respaced_index for s in rec.steps]
    assert len({s.respaced_index for s in rec.steps}) == rec.steps[0].num_steps > 1  # distinct: a real check
    assert_same_recording(rec, loaded)


def test_the_old_name_t_reads_the_respaced_index_with_a_deprecation_warning(runs):
    step = runs["blend"].steps[2]
    with pytest.warns(DeprecationWarning, match=r"RecordedStep\.t is deprecated.*RecordedStep\.respaced_index"):
        assert step.t == step.respaced_index != step.timestep
    kept = {f: getattr(step, f) for f in ("iteration", "index", "alpha_bar", "num_steps", "losses", "fields",
                                          "timestep", "sample_ids")}
    with pytest.warns(DeprecationWarning, match="respaced_index"):
        made = trajectory.RecordedStep(t=7, **kept)  # the old keyword still builds one
    assert made.respaced_index == 7
    with pytest.warns(DeprecationWarning, match="respaced_index"):
        made.t = 3
    assert made.respaced_index == 3


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_other_dtypes_round_trip(tiny, image, mask, tmp_path, dtype):
    rec = bl.Recorder(fields=("pred_x0",), dtype=dtype, size=16)
    bl.edit(tiny, image, mask, fast_cfg(), hooks=[rec], progress=False)
    loaded = bl.Recorder.load(rec.save(tmp_path / "r.npz"))
    assert_same_recording(rec, loaded)
    assert loaded.steps[0].fields["pred_x0"].shape == (2, 3, 16, 16)


def test_saving_is_atomic(runs, tmp_path, monkeypatch):
    path = runs["blend"].save(tmp_path / "run.npz")
    good = path.read_bytes()
    calls = []

    def failing(zf, name, x):
        calls.append(name)
        if len(calls) > 3:
            raise OSError("disk full")
        return real(zf, name, x)

    real = trajectory._write_member
    monkeypatch.setattr(trajectory, "_write_member", failing)
    with pytest.raises(OSError, match="disk full"):
        runs["blend"].save(path)
    assert path.read_bytes() == good and [p.name for p in tmp_path.iterdir()] == ["run.npz"]


def test_nothing_to_save_and_unsavable_settings(runs, tmp_path):
    with pytest.raises(bl.InputError, match="no steps"):
        bl.Recorder().save(tmp_path / "x.npz")
    rec = bl.Recorder()
    rec.steps, rec.cfg = runs["blend"].steps, runs["cfg"].replace(init_image=torch.zeros(1))
    with pytest.raises(bl.InputError, match="cannot be written as JSON"):
        rec.save(tmp_path / "x.npz")
    assert list(tmp_path.iterdir()) == []


# -- damaged and foreign files ------------------------------------------------------------------
def test_truncated_file_is_a_clear_error(runs, tmp_path):
    path = runs["blend"].save(tmp_path / "run.npz")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(bl.TrajectoryError, match="truncated"):
        bl.load_trajectory(path)
    path.write_bytes(b"")
    with pytest.raises(bl.TrajectoryError, match="empty"):
        bl.load_trajectory(path)


def test_corrupt_bytes_are_found_on_read(runs, tmp_path):
    path = runs["blend"].save(tmp_path / "run.npz")
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("steps/00002/x_t.npy")
    data = bytearray(path.read_bytes())
    at = info.header_offset + 30 + len(info.filename) + 200  # inside the array's bytes
    data[at:at + 8] = bytes(255 - b for b in data[at:at + 8])
    path.write_bytes(bytes(data))
    with pytest.raises(bl.TrajectoryError, match=r"steps/00002/x_t.npy is corrupt"):
        bl.load_trajectory(path, lazy=False)
    lazy = bl.load_trajectory(path)  # lazy: found when that step is read
    assert torch.equal(lazy.steps[1].fields["x_t"], runs["blend"].steps[1].fields["x_t"])
    with pytest.raises(bl.TrajectoryError, match="corrupt"):
        lazy.steps[2].fields["x_t"]


def _set_flag():
    os.environ["BLENDLAB_TEST_PICKLE_RAN"] = "1"
    return None


class Boom:
    def __reduce__(self):
        return (_set_flag, ())


@pytest.mark.parametrize("kind", ["png", "npz", "npy", "torch", "pickle", "other-format", "newer", "object-array"])
def test_foreign_files_are_clear_errors_and_never_run_code(runs, tmp_path, monkeypatch, kind):
    monkeypatch.delenv("BLENDLAB_TEST_PICKLE_RAN", raising=False)
    path = tmp_path / "file.npz"
    expected = {
        "png": "PNG image", "npz": "zip/.npz archive without meta.json", "npy": "single .npy array",
        "torch": "torch checkpoint", "pickle": "pickle", "other-format": "another format",
        "newer": "newer blendlab", "object-array": "object arrays are never loaded",
    }[kind]
    if kind == "png":
        Image.new("RGB", (4, 4)).save(path, format="PNG")
    elif kind == "npz":
        np.savez(path, a=np.zeros(3))
    elif kind == "npy":
        with open(path, "wb") as f:
            np.save(f, np.zeros(3))
    elif kind == "torch":
        torch.save({"w": torch.zeros(2), "boom": Boom()}, path)
    elif kind == "pickle":
        path.write_bytes(pickle.dumps(Boom()))
    else:
        runs["blend"].save(path)
        with zipfile.ZipFile(path) as zf:
            members = {n: zf.read(n) for n in zf.namelist()}
        meta = json.loads(members["meta.json"])
        if kind == "other-format":
            meta["format"] = "something-else"
        elif kind == "newer":
            meta["format_version"] = 99
        else:  # a pickled object array where an image should be
            with zipfile.ZipFile(tmp_path / "obj.npz", "w") as zf:
                with zf.open("x.npy", "w") as fp:
                    np.lib.format.write_array(fp, np.array([Boom()] * 4, dtype=object), allow_pickle=True)
            with zipfile.ZipFile(tmp_path / "obj.npz") as zf:
                blob = zf.read("x.npy")
            spec = meta["steps"][0]["fields"]["x_t"]
            spec["dtype"], spec["shape"] = "float32", [len(blob) // 4 - 64]
            members[spec["member"]] = blob
        members["meta.json"] = json.dumps(meta).encode()
        with zipfile.ZipFile(path, "w") as zf:
            for name, blob in members.items():
                zf.writestr(name, blob)
    with pytest.raises(bl.TrajectoryError, match=expected):
        rec = bl.load_trajectory(path)
        rec.steps[0].fields["x_t"]  # the object array is only read on access
    assert "BLENDLAB_TEST_PICKLE_RAN" not in os.environ


def test_missing_path_and_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="no trajectory file"):
        bl.load_trajectory(tmp_path / "nope.npz")
    with pytest.raises(bl.InputError, match="is a folder"):
        bl.load_trajectory(tmp_path)


def test_lazy_fields_notice_a_changed_file(runs, tmp_path):
    path = runs["blend"].save(tmp_path / "run.npz")
    rec = bl.load_trajectory(path)
    runs["no_blend"].save(path)
    with pytest.raises(bl.TrajectoryError, match="changed after it was loaded"):
        rec.steps[0].fields["x_t"]


# -- comparing ----------------------------------------------------------------------------------
def test_a_recording_compared_with_itself_is_zero_everywhere(runs, tmp_path):
    rec = runs["blend"]
    loaded = bl.load_trajectory(rec.save(tmp_path / "run.npz"))
    for field in FIELDS:
        d = step_distances(rec, loaded, field)
        assert d.sync == "step" and len(d.pairs) == 8
        assert d.mean == [0.0] * 8 and d.peak == [0.0] * 8 and d.first_divergence() is None


def test_blend_vs_no_blend_diverge_where_the_algorithm_says(runs):
    a, b = runs["blend"], runs["no_blend"]
    # step 0: the same x_t and model, so the same x̂0; the blend changes x_{t-1} outside the mask at once
    assert step_distances(a, b, "x_t").first_divergence() == 1
    pred = step_distances(a, b, "pred_x0")
    assert pred.first_divergence() == 1 and pred.first_divergent_pair() == pred.pairs[1]
    assert pred.first_divergent_pair()[0].label.startswith("step 1/8 · t=")
    d = step_distances(a, b, "x_prev")
    assert d.first_divergence() == 0 and d.steps == list(range(8))  # 0, not None: step 0 differs
    inside = runs["mask"][0, 0].bool()
    diff = (a.steps[0].fields["x_prev"] - b.steps[0].fields["x_prev"]).abs().amax(dim=(0, 1))
    assert float(diff[inside].max()) == 0.0 and float(diff[~inside].max()) > 0  # only outside the mask


def test_runs_with_different_step_counts_pair_by_timestep(runs):
    a, b = runs["blend"].steps[:8], runs["coarse"].steps[:4]
    pairs, used = pair_steps(a, b)
    assert used == "timestep"
    for sa, sb in pairs:
        assert abs(sa.timestep - sb.timestep) == min(abs(sa.timestep - s.timestep) for s in b)
    by_step, used = pair_steps(a, b, sync="step")
    assert used == "step" and [sb.index for _, sb in by_step] == [0, 1, 2, 3, 3, 3, 3, 3]
    with pytest.raises(bl.InputError, match="sync must be"):
        pair_steps(a, b, sync="time")


def test_step_distances_errors(runs):
    with pytest.raises(bl.InputError, match="'fg' was not recorded"):
        step_distances(runs["blend"], runs["no_blend"], "fg")
    with pytest.raises(bl.InputError, match="sample 2 out of range"):
        step_distances(runs["blend"], runs["no_blend"], sample=2)
    with pytest.raises(bl.InputError, match="no steps"):
        step_distances(bl.Recorder(), runs["blend"])


# -- videos -------------------------------------------------------------------------------------
def frames_of(path):
    im = Image.open(path)
    out = []
    for k in range(im.n_frames):
        im.seek(k)
        out.append(np.asarray(im.convert("RGB")))
    return out


def test_gif_has_one_frame_per_recorded_step(runs, tmp_path, tiny, image, mask):
    rec = runs["blend"]
    path = rec.to_gif(tmp_path / "x0.gif", sample=1, iteration=1)
    assert Image.open(path).n_frames == 8
    thinned = bl.Recorder(every=3, fields=("pred_x0",))
    bl.edit(tiny, image, mask, fast_cfg(), hooks=[thinned], progress=False)
    assert Image.open(thinned.to_gif(tmp_path / "thin.gif")).n_frames == len(thinned.steps) == 4
    # frames: the image enlarged over a caption band
    frame = frames_of(path)[0]
    assert frame.shape[1] == 32 * 5 and frame.shape[0] > 32 * 5


def test_lossless_video_frames_are_the_recorded_images_and_end_on_the_result(runs, tmp_path):
    rec, result = runs["blend"], runs["result"]
    frames = frames_of(rec.to_video(tmp_path / "x0.apng", sample=0, iteration=1))
    steps = [s for s in rec.steps if s.iteration == 1]
    assert len(frames) == len(steps)
    for frame, s in zip(frames[:-1], steps):
        np.testing.assert_array_equal(frame[:160:5, ::5], bl.images.to_uint8(s.fields["pred_x0_guided"][0]))
    last = frames[-1][:160:5, ::5].astype(int)
    assert np.abs(last - bl.images.to_uint8(result.images[2])).max() <= 1  # iteration 1, sample 0
    # without the paste, the last frame is the raw x̂0 (it differs outside the mask)
    raw = frames_of(rec.to_video(tmp_path / "raw.apng", sample=0, iteration=1, final_paste=False))[-1]
    np.testing.assert_array_equal(raw[:160:5, ::5], bl.images.to_uint8(steps[-1].fields["pred_x0_guided"][0]))
    assert not np.array_equal(raw, frames[-1])


def test_video_of_a_loaded_recording_and_other_fields(runs, tmp_path):
    loaded = bl.load_trajectory(runs["blend"].save(tmp_path / "run.npz"))
    a = frames_of(loaded.to_video(tmp_path / "a.webp", field="grad"))
    b = frames_of(runs["blend"].to_video(tmp_path / "b.apng", field="grad"))
    assert len(a) == len(b) == 8 and all(np.array_equal(x, y) for x, y in zip(a, b))


def test_video_errors(runs, tmp_path, monkeypatch):
    rec = runs["blend"]
    with pytest.raises(bl.InputError, match="video format"):
        rec.to_video(tmp_path / "x.avi")
    with pytest.raises(bl.InputError, match="does not end in .gif"):
        rec.to_gif(tmp_path / "x.png")
    with pytest.raises(bl.InputError, match="'fg' was not recorded"):
        rec.to_gif(tmp_path / "x.gif", field="fg")
    with pytest.raises(bl.InputError, match="sample 5 out of range"):
        rec.to_gif(tmp_path / "x.gif", sample=5)
    with pytest.raises(bl.InputError, match="cannot paste the background"):
        rec.to_gif(tmp_path / "x.gif", field="x_t", final_paste=True)
    monkeypatch.setitem(sys.modules, "imageio", None)
    monkeypatch.setitem(sys.modules, "imageio.v3", None)
    with pytest.raises(bl.InputError, match=r'pip install "imageio\[ffmpeg\]"'):
        rec.to_mp4(tmp_path / "x.mp4")
    assert list(tmp_path.iterdir()) == []


def test_mp4_when_imageio_is_installed(runs, tmp_path):
    iio = pytest.importorskip("imageio.v3")
    pytest.importorskip("imageio_ffmpeg")
    path = runs["blend"].to_mp4(tmp_path / "x.mp4")
    frames = list(iio.imiter(path))
    assert len(frames) == 8 and frames[0].shape[0] % 16 == frames[0].shape[1] % 16 == 0
