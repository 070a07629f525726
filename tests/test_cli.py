"""`blendlab edit | demo | download` end to end on the tiny preset, and bad input."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

import blendlab as bl
from blendlab.cli import build_parser, config_from_args, main

FAST = ["--preset", "tiny", "--timestep_respacing", "10", "--skip_timesteps", "4", "--batch_size", "2",
        "--iterations_num", "1", "--aug_num", "2", "--no_progress"]


def test_parser_flags_and_defaults_match_edit_config():
    args = build_parser().parse_args(["edit", "-p", "rock", "-i", "x.png"])
    assert config_from_args(args) == bl.EditConfig(prompt="rock", init_image="x.png")
    args = build_parser().parse_args(["edit", "-p", "rock", "-i", "x.png", "--no_enforce_background",
                                      "--invert_mask", "--ddim", "--vid", "--export_assets", "-o", "a.png"])
    cfg = config_from_args(args)
    assert not cfg.enforce_background and cfg.invert_mask and cfg.ddim and cfg.save_video
    assert cfg.export_assets and cfg.output_file == "a.png"


def test_edit_end_to_end(files):
    out = files / "out"
    before = (files / "img.png").read_bytes()
    code = main(["edit", "-p", "rock", "-i", str(files / "img.png"), "--mask", str(files / "mask.png"),
                 "--output_path", str(out), "--export_assets", "--vid", *FAST])
    assert code == 0
    ranked = sorted((out / "ranked").iterdir())
    assert len(ranked) == 2
    summary = json.loads((out / "ranked.json").read_text())
    dists = [r["clip_distance"] for r in summary["ranked"]]
    assert dists == sorted(dists)
    for r in summary["ranked"]:
        name = r["file"].rsplit("/", 1)[1]
        assert name.startswith(f"{r['clip_distance']:.4f}".replace(".", "") + "_output_i_0_b_")
    assert Image.open(ranked[0]).size == (32, 32)
    assets = {p.name for p in (out / "assets").iterdir()}
    assert {"output.png", "output_mask.png", "output_i_0_b_0.png", "output_i_0_b_1.png"} <= assets
    video = Image.open(out / "output_i_0_b_0.apng")
    assert video.n_frames == 6  # one frame per step (10 respaced - 4 skipped)
    assert (files / "img.png").read_bytes() == before  # input untouched
    # outside the mask the result is the (resized) input: enforce_background
    result = bl.load_image(ranked[0])
    mask = bl.load_mask(files / "mask.png", size=32)
    image = bl.load_image(files / "img.png", size=32)
    assert torch.allclose(result * (1 - mask), image * (1 - mask), atol=1 / 127.5 + 1e-6)


def last_frame(path, size=32):
    """The image part of a video's last frame (frames are the image enlarged k x over a caption band)."""
    video = Image.open(path)
    video.seek(video.n_frames - 1)
    frame = np.asarray(video.convert("RGB"))
    k = frame.shape[1] // size
    return video.n_frames, frame[:size * k:k, ::k]


@pytest.mark.parametrize("extra", [[], ["--ddim"], ["--no_enforce_background"], ["--invert_mask"]],
                         ids=["ddpm", "ddim", "no-paste", "inverted"])
def test_vid_keeps_every_step_and_ends_on_the_saved_result(files, extra):
    out = files / "out"
    assert main(["edit", "-p", "rock", "-i", str(files / "img.png"), "--mask", str(files / "mask.png"),
                 "--output_path", str(out), "--export_assets", "--vid", *FAST, *extra]) == 0
    for b in (0, 1):
        n, last = last_frame(out / f"output_i_0_b_{b}.apng")
        saved = np.asarray(Image.open(out / "assets" / f"output_i_0_b_{b}.png").convert("RGB"))
        assert n == 6
        assert np.abs(last.astype(int) - saved).max() <= 1  # float16 frames: within uint8 rounding


def test_a_run_failing_in_a_later_batch_deletes_the_videos_of_earlier_batches(files, monkeypatch, capsys):
    import blendlab.runner

    real_edit = blendlab.runner.edit

    def edit_whose_second_batch_goes_nan(models, inputs, mask=None, cfg=None, hooks=(), **kw):
        def poison(state):
            if state.iteration == 1 and state.index == 1:
                state.x_prev = state.x_prev * float("nan")
        return real_edit(models, inputs, mask, cfg, [*hooks, poison], **kw)

    monkeypatch.setattr(blendlab.runner, "edit", edit_whose_second_batch_goes_nan)
    out = files / "out"
    code = main(["edit", "-p", "rock", "-i", str(files / "img.png"), "--output_path", str(out), "--vid",
                 *FAST, "--iterations_num", "2"])
    assert code == 1 and "became NaN" in capsys.readouterr().err
    assert not [p for p in out.rglob("*") if p.is_file()], "the first batch's videos were deleted"


def test_vid_formats(files, monkeypatch, capsys):
    out = files / "out"
    args = ["edit", "-p", "rock", "-i", str(files / "img.png"), "--output_path", str(out), "--vid", *FAST]
    assert main([*args, "--vid_format", "gif"]) == 0
    assert Image.open(out / "output_i_0_b_1.gif").n_frames == 6
    monkeypatch.setitem(sys.modules, "imageio", None)  # as if imageio were not installed
    monkeypatch.setitem(sys.modules, "imageio.v3", None)
    assert main([*args, "--output_path", str(files / "mp4"), "--vid_format", "mp4"]) == 1
    assert 'pip install "imageio[ffmpeg]"' in capsys.readouterr().err
    assert not (files / "mp4").exists()  # refused before any work


def test_demo_end_to_end_in_the_toy_world(tmp_path, capsys, monkeypatch):
    import blendlab.runner as runner

    configs = []
    real_edit = runner.edit
    monkeypatch.setattr(runner, "edit", lambda models, image, mask, cfg, *a, **k: (
        configs.append(cfg), real_edit(models, image, mask, cfg, *a, **k))[1])
    out = tmp_path / "demo"
    assert main(["demo", "--output_path", str(out), "--no_progress"]) == 0
    # the 8 samples as one batch of 8, at the paper's settings per sample (bench_demo: the faster layout)
    (cfg,) = configs
    assert (cfg.batch_size, cfg.iterations_num) == (8, 1)
    assert (cfg.timestep_respacing, cfg.skip_timesteps, cfg.aug_num) == ("100", 25, 8)
    ranked = sorted((out / "ranked").glob("*.png"))
    assert len(ranked) == 8
    strip = Image.open(out / "steps.png")
    assert strip.size[0] > strip.size[1] > 0
    assert (out / "input.png").exists() and (out / "mask.png").exists()
    text = capsys.readouterr().out
    assert "toy world" in text and "judge" in text and "'a red circle'" in text
    assert "in the lower-right quarter" in text and "right half" not in text
    assert str(out / "comparison.png") in text and str(out / "judge.json") in text
    figure = Image.open(out / "comparison.png")  # source | mask | best 4, each 32 px panel shown at 256 px
    assert figure.size[0] >= 3 * 256 and figure.size[1] >= 2 * 256
    # the best results hold a red object in the mask (the independent judge), the outside is untouched
    verdicts = json.loads((out / "judge.json").read_text())
    assert [v["rank"] for v in verdicts] == list(range(8))
    assert sum(v["colour"] == "red" for v in verdicts[:4]) >= 3, verdicts
    image = bl.load_image(out / "input.png")
    mask = bl.load_mask(out / "mask.png")
    best = bl.load_image(ranked[0])
    assert torch.equal(best * (1 - mask), image * (1 - mask))


def test_demo_with_the_tiny_preset(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--preset", "tiny", "--output_path", str(out), "--no_progress"]) == 0
    assert len(list((out / "ranked").glob("*.png"))) == 2
    assert "mechanics only" in capsys.readouterr().out and not (out / "judge.json").exists()


def test_console_script_runs(files):
    proc = subprocess.run([sys.executable, "-m", "blendlab.cli", "edit", "--help"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "--skip_timesteps" in proc.stdout and "--invert_mask" in proc.stdout


@pytest.mark.parametrize("case,expected", [
    ("missing_image", "image file not found"),
    ("corrupt_image", "could not read image"),
    ("empty_mask", "mask is empty"),
    ("bad_output", "must end in .png"),
])
def test_edit_bad_input_is_a_clear_error(files, capsys, case, expected):
    args = ["edit", "-p", "rock", "-i", str(files / "img.png"), "--mask", str(files / "mask.png"),
            "--output_path", str(files / "out"), *FAST]
    if case == "missing_image":
        args[4] = str(files / "nope.png")
    elif case == "corrupt_image":
        (files / "bad.png").write_bytes(b"\x89PNG garbage")
        args[4] = str(files / "bad.png")
    elif case == "empty_mask":
        Image.fromarray(np.zeros((48, 64), np.uint8)).save(files / "mask.png")
    elif case == "bad_output":
        args += ["-o", "result.jpg"]
    if case == "bad_output":
        with pytest.raises(SystemExit) as exit_info:
            main(args)
        assert exit_info.value.code == 2
    else:
        assert main(args) == 1
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err
    assert not (files / "out" / "ranked").exists() or not any((files / "out" / "ranked").iterdir())


@pytest.fixture
def no_model_locating(monkeypatch):
    """Offline, with an empty cache; records (and refuses) every call that locates, downloads or
    loads a model."""
    import torch.hub

    from blendlab import download, models

    monkeypatch.setenv("BLENDLAB_OFFLINE", "1")
    calls = []

    def refuse(name):
        def called(*args, **kwargs):
            calls.append(name)
            raise AssertionError(f"{name} was called before the inputs were checked")
        return called

    for module, name in ((models, "load_models"), (models, "ensure_file"), (models, "load_clip"),
                         (models, "load_unet_checkpoint"), (download, "ensure_file"),
                         (torch.hub, "download_url_to_file")):
        monkeypatch.setattr(module, name, refuse(f"{module.__name__}.{name}"))
    return calls


@pytest.mark.parametrize("case,expected", [
    ("missing image", "image file not found: {files}/missing.png"),
    ("image is a folder", "is a folder; pass the path of an image file"),
    ("unreadable image", "could not read image {files}/bad.png"),
    ("missing mask", "image file not found: {files}/nomask.png"),
    ("empty mask", "mask is empty"),
    ("inverted without a mask", "your mask covered the whole image"),
    ("output path under a file", "--output_path {files}/img.png/out cannot be made: {files}/img.png is a file"),
    ("output path is a file", "--output_path {files}/img.png is a file"),
    ("missing --clip_path", "--clip_path {files}/clip.pt: no such file"),
    ("unknown preset", "unknown model preset 'nope'"),
    ("bad respacing", "timestep_respacing='abc' is not understood"),
])
def test_edit_checks_every_input_before_locating_a_model(files, capsys, no_model_locating, case, expected):
    """With an empty cache and no network, a bad input is reported as itself, never as a 2.2 GB
    checkpoint to download; nothing is located, downloaded, loaded or written first."""
    image, out = str(files / "img.png"), str(files / "out")
    extra = {
        "missing image": ["-i", str(files / "missing.png")],
        "image is a folder": ["-i", str(files)],
        "unreadable image": ["-i", str(files / "bad.png")],
        "missing mask": ["-i", image, "--mask", str(files / "nomask.png")],
        "empty mask": ["-i", image, "--mask", str(files / "black.png")],
        "inverted without a mask": ["-i", image, "--invert_mask"],
        "output path under a file": ["-i", image, "--output_path", str(files / "img.png" / "out")],
        "output path is a file": ["-i", image, "--output_path", image],
        "missing --clip_path": ["-i", image, "--clip_path", str(files / "clip.pt")],
        "unknown preset": ["-i", image, "--preset", "nope"],
        "bad respacing": ["-i", image, "--timestep_respacing", "abc"],
    }[case]
    (files / "bad.png").write_bytes(b"\x89PNG garbage")
    Image.fromarray(np.zeros((48, 64), np.uint8)).save(files / "black.png")
    before = sorted(p.name for p in files.iterdir())
    assert main(["edit", "-p", "rock", "--preset", "256-uncond", "--output_path", out, *extra]) == 1
    err = capsys.readouterr().err
    assert expected.format(files=files) in err, err
    assert "Traceback" not in err and ".pt " not in err.replace("clip.pt:", "") and "checkpoint" not in err
    assert no_model_locating == []
    assert sorted(p.name for p in files.iterdir()) == before  # nothing written, no output folder made


def test_download_offline_names_the_files(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("BLENDLAB_OFFLINE", "1")
    assert main(["download", "--cache_dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "256x256_diffusion_uncond.pt" in err and str(tmp_path) in err
    with pytest.raises(SystemExit):
        main(["download", "--preset", "tiny"])


def test_download_uses_cache(tmp_path, monkeypatch, capsys, tiny):
    """With both files already in the cache, download verifies and prints their paths."""
    monkeypatch.setenv("BLENDLAB_OFFLINE", "1")
    from blendlab import models as M

    (tmp_path / "256x256_diffusion_uncond.pt").write_bytes(b"x" * 10)
    clip_file = M.clip_remote_file("ViT-B/16")
    monkeypatch.setattr(M, "clip_remote_file", lambda name: type(clip_file)(
        clip_file.filename, clip_file.urls))  # hash unknown: a file the test made stands in
    (tmp_path / clip_file.filename).write_bytes(b"y" * 10)
    assert main(["download", "--cache_dir", str(tmp_path)]) == 0
    printed = capsys.readouterr().out.split()
    assert printed == [str(tmp_path / "256x256_diffusion_uncond.pt"), str(tmp_path / clip_file.filename)]


def test_edit_that_goes_non_finite_exits_non_zero_and_saves_nothing(files, capsys):
    out = files / "out"
    code = main(["edit", "--preset", "tiny", "-p", "a red ball", "-i", str(files / "img.png"),
                 "--mask", str(files / "mask.png"), "--skip_timesteps", "0", "--timestep_respacing", "100",
                 "--output_path", str(out), "--export_assets", "--vid", "--no_progress"])  # the repro
    assert code == 1
    err = capsys.readouterr().err
    assert err.startswith("blendlab edit: error: step ") and " · t=" in err
    assert "became infinite" in err and "Try: more skipped steps (skip_timesteps is 0 of 100" in err
    assert not out.exists() or not [p for p in out.rglob("*") if p.is_file()]  # no results, figures, videos
