"""What a CLI user sees when something goes wrong (issue 24): one line and a status, never a traceback
(Ctrl-C as a real SIGINT to a subprocess: status 130, what was kept, nothing half-written); strict
sweep specs; the batch guard; --threads; --help's defaults and presets."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import pytest
import torch

import blendlab.sweep as sw
from blendlab.cli import build_parser, console, main
from blendlab.errors import InputError
from blendlab.presets import PRESETS

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--preset", "tiny", "--timestep_respacing", "10", "--skip_timesteps", "4", "--batch_size", "2",
        "--iterations_num", "1", "--aug_num", "2", "--no_progress"]


def cli(tmp_path, *args, **popen):
    env = dict(os.environ, PYTHONPATH=str(ROOT), BLENDLAB_OFFLINE="1", BLENDLAB_THREADS="1",
               BLENDLAB_HOME=str(tmp_path / "home"))
    # a terminal's Ctrl-C reaches a process whose SIGINT is at its default; a test runner started in the
    # background of a non-interactive shell passes SIGINT on as ignored, so the child starts from the default
    return subprocess.Popen([sys.executable, "-m", "blendlab.cli", *args], env=env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL), **popen)


def interrupt_when(proc, ready, timeout=240):
    """Send SIGINT to ``proc`` once ``ready(stderr so far)`` holds; returns (status, stdout, stderr)."""
    err = bytearray()
    reader = threading.Thread(target=lambda: [err.extend(c) for c in iter(lambda: proc.stderr.read(1), b"")],
                              daemon=True)
    reader.start()
    deadline = time.monotonic() + timeout
    while not ready(err.decode(errors="replace")):
        assert proc.poll() is None, f"ended before it was interrupted: {err.decode(errors='replace')}"
        assert time.monotonic() < deadline, "never got going"
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out = proc.stdout.read().decode()
    status = proc.wait(timeout=120)
    reader.join(timeout=10)
    return status, out, err.decode(errors="replace")


def no_half_written(folder: Path):
    """No temporary file of an atomic write is left, and every JSON file parses."""
    files = [p for p in folder.rglob("*") if p.is_file()]
    assert not [p for p in files if p.name.startswith(".")], files
    for p in files:
        if p.suffix == ".json":
            json.loads(p.read_text())
    return files


def test_ctrl_c_during_edit_is_one_line_status_130_and_writes_nothing(files):
    out = files / "out"
    proc = cli(files, "edit", "-p", "rock", "-i", "img.png", "--mask", "mask.png", "--preset", "tiny",
               "--timestep_respacing", "100", "--skip_timesteps", "20", "--iterations_num", "50",
               "--batch_size", "2", "--aug_num", "2", "--output_path", str(out), "--vid")
    status, stdout, stderr = interrupt_when(proc, lambda err: "sample batch 1:" in err and "/80" in err)
    assert status == 130, stderr
    assert "Traceback" not in stdout + stderr
    lines = [l for l in stderr.replace("\r", "\n").split("\n") if l.startswith("blendlab")]
    assert len(lines) == 1 and lines[0].startswith("blendlab edit: interrupted: nothing was written to "), lines
    assert "run the same command again (blendlab edit -p rock" in lines[0]
    assert not no_half_written(out) if out.exists() else True  # not even the videos of finished batches


def test_ctrl_c_during_sweep_keeps_finished_rows_and_says_how_to_resume(tmp_path):
    spec = tmp_path / "s.json"
    spec.write_text(json.dumps(dict(preset="tiny", seeds=40, inputs=[{"example": "insert"}],
                                    config=dict(timestep_respacing="10", skip_timesteps=2, batch_size=1,
                                                iterations_num=1, aug_num=2))))
    out = tmp_path / "o"
    proc = cli(tmp_path, "sweep", "s.json", "--out", "o")
    status, stdout, stderr = interrupt_when(proc, lambda _: len(list((out / "records").glob("*.json"))) >= 2)
    assert status == 130, stderr
    assert "Traceback" not in stdout + stderr
    lines = [l for l in stderr.replace("\r", "\n").split("\n") if l.startswith("blendlab")]
    assert len(lines) == 1 and lines[0].startswith("blendlab sweep: interrupted: "), lines
    done = len(sw.read_records(out))
    assert f"{done}/40 rows done and kept in o" in lines[0] and "run the same command again" in lines[0]
    assert "blendlab sweep s.json --out o) to resume" in lines[0]
    no_half_written(out)
    assert all(r["status"] == "done" for r in sw.read_records(out).values())


def test_batch_that_will_not_fit_is_refused_at_once_naming_the_size_that_fits(files):
    t0 = time.monotonic()
    proc = cli(files, "edit", "-p", "a red circle", "-i", "img.png", "--preset", "toy", "--batch_size", "100000",
               "--output_path", "out")
    stdout, stderr = (s.decode() for s in proc.communicate(timeout=120))
    assert proc.returncode == 1 and time.monotonic() - t0 < 60
    assert "Traceback" not in stdout + stderr
    lines = stderr.strip().split("\n")
    assert len(lines) == 1 and lines[0].startswith("blendlab edit: error: --batch_size 100000 will not fit"), lines
    fits = int(lines[0].split("use --batch_size ")[1].split()[0])
    assert 1 <= fits < 100000
    assert not (files / "out").exists()


def test_a_sweep_whose_batch_will_not_fit_is_refused_before_any_row(tmp_path):
    spec = {"preset": "toy", "inputs": [{"example": "insert"}],
            "config": {"batch_size": 100000, "iterations_num": 1}, "seeds": [0]}
    (tmp_path / "s.json").write_text(json.dumps(spec))
    proc = cli(tmp_path, "sweep", "s.json", "--out", "o")
    stdout, stderr = (s.decode() for s in proc.communicate(timeout=120))
    assert proc.returncode == 1 and "Traceback" not in stdout + stderr
    lines = stderr.strip().split("\n")
    assert len(lines) == 1 and "batch_size 100000 will not fit" in lines[0] and "use batch_size " in lines[0], lines
    assert not (tmp_path / "o").exists()


def test_the_batch_guard_names_the_largest_batch(monkeypatch):
    from blendlab import capacity

    fixed, per_sample = capacity.memory_needed("toy", 1, 8)
    monkeypatch.setattr(capacity, "free_memory", lambda device: int((fixed + 10.5 * per_sample) / capacity.USABLE))
    assert capacity.check_batch_fits("toy", 10, 8, "cpu") == 10
    with pytest.raises(InputError, match="use --batch_size 10 or less"):
        capacity.check_batch_fits("toy", 11, 8, "cpu")
    monkeypatch.setattr(capacity, "free_memory", lambda device: fixed // 2)
    with pytest.raises(InputError, match="even one sample of the toy preset"):
        capacity.check_batch_fits("toy", 1, 8, "cpu")
    # a real preset's estimate was never measured: over it, the same words are a warning, not an error
    monkeypatch.setattr(capacity, "free_memory", lambda device: 2**30)
    with pytest.warns(capacity.BatchMayNotFitWarning, match="may not fit.*use --batch_size 1"):
        assert capacity.check_batch_fits("256-uncond", 4, 8, "cpu") == 0
    # more views, more memory; the real presets are counted from their own resolution and channels
    assert capacity.memory_needed("toy", 1, 16)[1] > per_sample
    assert capacity.memory_needed("512-cond", 1, 8)[1] > capacity.memory_needed("256-uncond", 1, 8)[1] > per_sample


def test_a_negative_step_count_is_one_line(files, capsys):
    code = main(["edit", "-p", "rock", "-i", str(files / "img.png"), "--output_path", str(files / "out"),
                 *TINY, "--timestep_respacing", "-10"])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    assert len(err.strip().split("\n")) == 1 and err.startswith("blendlab edit: error: ") and "-10" in err
    assert not (files / "out").exists()


def test_threads_flag_is_in_force_before_models_load(files, monkeypatch):
    import blendlab.models

    seen, real = [], blendlab.models.load_models
    monkeypatch.setattr(blendlab.models, "load_models",
                        lambda *a, **kw: seen.append(torch.get_num_threads()) or real(*a, **kw))
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert main(["edit", "-p", "rock", "-i", str(files / "img.png"), "--output_path", str(files / "o"),
                     *TINY, "--threads", "2"]) == 0
        assert seen == [2] and torch.get_num_threads() == 2
        monkeypatch.setenv("BLENDLAB_THREADS", "1")  # without the flag: the policy (here the variable)
        assert main(["edit", "-p", "rock", "-i", str(files / "img.png"), "--output_path", str(files / "o"),
                     *TINY]) == 0
        assert seen == [2, 1]
    finally:
        torch.set_num_threads(before)


def test_a_bad_threads_value_is_one_line(files, capsys):
    assert main(["edit", "-p", "rock", "-i", str(files / "img.png"), *TINY, "--threads", "0"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("blendlab edit: error: threads must be a whole number of threads") and "Traceback" not in err


def test_help_shows_defaults_and_every_preset():
    parser = build_parser()
    sub = parser._subparsers._group_actions[0].choices
    edit, demo, sweep = (sub[c].format_help() for c in ("edit", "demo", "sweep"))
    flat = " ".join(edit.split())
    assert "--batch_size BATCH_SIZE samples per batch" in flat and "(default: 4)" in flat
    assert "(default: 100)" in flat and "(default: output.png)" in flat and "(default: None)" not in flat
    for name in PRESETS:
        assert f"{name}:" in flat and f"{name}:" in " ".join(demo.split())
    assert "--threads" in edit and "--threads" in demo and "--threads" in sweep
    assert "(default: local)" in " ".join(sweep.split())


@pytest.mark.parametrize("suffix,text,where", [
    (".yaml", "preset: tiny\ninputs:\n  - {example: insert\n", ":4:1: "),
    (".json", '{"preset": "tiny",\n "inputs": [}', ":2:13: "),
    (".toml", 'preset = "tiny"\nseeds = [1,\n', ":3:1: "),
    (".toml", 'preset = "tiny"\nseeds = [1,,2]\n', ":2:12: "),
], ids=["yaml", "json", "toml-end", "toml"])
def test_a_spec_that_does_not_parse_names_file_line_and_column(tmp_path, capsys, suffix, text, where):
    path = tmp_path / f"spec{suffix}"
    path.write_text(text)
    assert main(["sweep", "--dry-run", "--no_measure", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"blendlab sweep: error: sweep spec {path}{where}"), err
    assert "Traceback" not in err and len(err.strip().split("\n")) == 1


def _write(tmp_path, name, text):
    (tmp_path / name).write_text(text)
    return str(tmp_path / name)


@pytest.mark.parametrize("level,change,key,guess", [
    ("top", dict(seed=2), "seed", "seeds"),
    ("top", dict(model="toy"), "model", "preset"),
    ("top", dict(input=[]), "input", "inputs"),
    ("config", dict(config=dict(skip_timestep=2)), "skip_timestep", "skip_timesteps"),
    ("grid", dict(grid=dict(aug_nums=[1, 2])), "aug_nums", "aug_num"),
    ("files input", dict(inputs=[dict(imag="a.png", prompt="x")]), "imag", "image"),
    ("kind misspelt", dict(inputs=[dict(exampel="insert")]), "exampel", "example"),
    ("example input", dict(inputs=[dict(example="insert", promt="x")]), "promt", "prompt"),
    ("toy options", dict(inputs=[dict(toy=dict(scene=2))]), "scene", "scenes"),
])
def test_an_unknown_key_at_every_level_names_the_nearest(level, change, key, guess):
    spec = {**dict(preset="tiny", seeds=1, inputs=[{"example": "insert"}]), **change}
    with pytest.raises(InputError) as info:
        sw.expand(spec)
    assert f"unknown key {key!r}; did you mean {guess!r}?" in str(info.value), str(info.value)


def test_unknown_manifest_columns_and_keys_in_a_file_name_the_file(tmp_path, capsys):
    _write(tmp_path, "edits.csv", "image,mask,promt\na.png,,x\n")
    with pytest.raises(InputError, match="unknown key 'promt'; did you mean 'prompt'"):
        sw.expand(dict(preset="tiny", inputs=[{"manifest": "edits.csv"}], base=str(tmp_path)))
    path = _write(tmp_path, "s.yaml", "model: toy\ninputs:\n  - {example: insert}\n")
    assert main(["sweep", "--dry-run", "--no_measure", path]) == 1
    err = capsys.readouterr().err
    assert err == f"blendlab sweep: error: sweep spec {path}: unknown key 'model'; did you mean 'preset'?\n"


def test_the_dry_run_names_the_preset_the_device_and_the_rows(tmp_path, capsys):
    path = _write(tmp_path, "s.json", json.dumps(dict(preset="toy", seeds=2, inputs=[{"example": "insert"}],
                                                      grid=dict(aug_num=[1, 2]))))
    assert main(["sweep", "--dry-run", "--no_measure", path]) == 0
    text = capsys.readouterr().out
    device = "cuda" if torch.cuda.is_available() else "cpu"
    assert text.startswith(f"preset toy on {device}: 4 rows\n")
    for row in sw.expand(path):
        assert f"{row['id']}  insert  aug_num={row['setting']['aug_num']}  seed {row['seed']}" in text


def test_warnings_are_one_line_each(capsys):
    def noisy():
        warnings.warn("first thing\n  you can act on", UserWarning)
        warnings.warn("second", FutureWarning)

    assert console.run("edit", noisy) == 0
    assert capsys.readouterr().err == ("blendlab edit: warning: first thing you can act on\n"
                                       "blendlab edit: warning: second\n")


def test_a_bug_keeps_its_traceback():
    with pytest.raises(ZeroDivisionError):
        console.run("edit", lambda: 1 / 0)


def test_the_demo_mask_is_described_as_it_is():
    from blendlab.cli.demo import mask_region
    from blendlab.examples import example
    from blendlab.masks import box_mask

    assert mask_region(example("insert", toy=True, size=32).mask) == "the lower-right quarter"
    assert mask_region(box_mask(32, (0.0, 0.0, 1.0, 0.5))) == "the upper half"
    assert mask_region(box_mask(32, (0.0, 0.0, 1.0, 1.0))) == "the whole image"
