"""notebook.setup(): mode selection, Colab widgets, configs, banner, install snippet. No network."""

import importlib.util
import os
import subprocess
import sys
import types

import pytest

import blendlab as bl
from blendlab import notebook
from blendlab.download import blendlab_home
from blendlab.models import PRESETS, clip_remote_file

REAL_IN_COLAB = notebook.in_colab  # the autouse fixture replaces it


@pytest.fixture(autouse=True)
def no_network_no_colab(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("setup() tried the network")

    monkeypatch.setattr(notebook, "_network_reachable", refuse)
    monkeypatch.delenv("BLENDLAB_MODELS", raising=False)
    for name in ("google.colab", "google.colab.output"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    monkeypatch.setattr(notebook, "in_colab", lambda: "google.colab" in sys.modules)


def cache_checkpoints():
    folder = blendlab_home() / "checkpoints"
    folder.mkdir(parents=True)
    for name in (PRESETS["256-uncond"]["checkpoint"].filename, clip_remote_file("ViT-B/16").filename):
        (folder / name).write_bytes(b"x")


def test_env_var_wins(monkeypatch):
    monkeypatch.setattr(notebook, "_cuda_available", lambda: True)
    cache_checkpoints()
    monkeypatch.setenv("BLENDLAB_MODELS", "tiny")
    env = notebook.setup(banner=False)
    assert env.tiny and env.preset == "tiny" and "BLENDLAB_MODELS" in env.reason
    monkeypatch.setenv("BLENDLAB_MODELS", "huge")
    with pytest.raises(bl.InputError, match="256-uncond"):
        notebook.setup(banner=False)


def test_no_gpu_is_the_toy_world(monkeypatch):
    monkeypatch.setattr(notebook, "_cuda_available", lambda: False)
    assert not notebook.checkpoints_cached()
    env = notebook.setup(banner=False)
    assert env.toy and not env.tiny and env.device == "cpu" and not env.in_colab and "GPU" in env.reason
    cache_checkpoints()  # real weights on a CPU would take hours: still the toy world
    assert notebook.setup(banner=False).toy


def test_gpu_cases(monkeypatch):
    monkeypatch.setattr(notebook, "_cuda_available", lambda: True)
    monkeypatch.setenv("BLENDLAB_OFFLINE", "1")
    env = notebook.setup(banner=False)  # nothing cached and offline
    assert env.toy and env.device == "cuda" and "unreachable" in env.reason
    monkeypatch.delenv("BLENDLAB_OFFLINE")
    monkeypatch.setattr(notebook, "_network_reachable", lambda: True)  # a stand-in: no real probe
    env = notebook.setup(banner=False)
    assert env.preset == "256-uncond" and not env.tiny and "downloaded" in env.reason
    monkeypatch.setattr(notebook, "_network_reachable", lambda: False)
    assert notebook.setup(banner=False).toy
    cache_checkpoints()
    assert notebook.checkpoints_cached()
    env = notebook.setup(banner=False)
    assert env.preset == "256-uncond" and "cached" in env.reason


def test_force_tiny(monkeypatch):
    monkeypatch.setattr(notebook, "_cuda_available", lambda: False)
    assert notebook.setup(force_tiny=True, banner=False).tiny
    env = notebook.setup(force_tiny=False, banner=False)
    assert env.preset == "256-uncond" and env.device == "cpu"
    assert "WARNING" in env.banner_text() and "GPU" in env.banner_text()


def test_colab_enables_the_custom_widget_manager(monkeypatch):
    calls = []
    google = types.ModuleType("google")
    colab = types.ModuleType("google.colab")
    output = types.ModuleType("google.colab.output")
    output.enable_custom_widget_manager = lambda: calls.append("enabled")
    colab.output = output
    google.colab = colab
    monkeypatch.setitem(sys.modules, "google", google)
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    monkeypatch.setitem(sys.modules, "google.colab.output", output)
    monkeypatch.setattr(notebook, "_cuda_available", lambda: True)
    env = notebook.setup(banner=False)
    assert calls == ["enabled"]
    assert env.in_colab and env.device == "cuda" and env.preset == "256-uncond" and not env.tiny
    monkeypatch.setattr(notebook, "_cuda_available", lambda: False)  # a Colab CPU runtime
    env = notebook.setup(banner=False)
    assert env.in_colab and env.toy and "GPU" in env.banner_text()


def test_in_colab_detection(monkeypatch):
    assert REAL_IN_COLAB() is False  # not installed here
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    assert REAL_IN_COLAB() is True


def test_config_differs_by_mode():
    tiny = notebook.NotebookEnv(in_colab=False, device="cpu", preset="tiny")
    real = notebook.NotebookEnv(in_colab=True, device="cuda", preset="256-uncond")
    # the paper's settings but one batch of 4, as the lessons say (issue 24)
    assert real.config() == bl.EditConfig(**notebook.LESSON_BATCH)
    assert (real.config().batch_size, real.config().iterations_num) == (4, 1)
    assert real.config(iterations_num=8).iterations_num == 8
    cfg = tiny.config()
    for name, value in notebook.TINY_SETTINGS.items():
        assert getattr(cfg, name) == value
    assert cfg != real.config() and cfg.num_steps == 10
    assert tiny.config(batch_size=1, prompt="rock").batch_size == 1
    assert real.config(prompt="rock").prompt == "rock"
    big = notebook.NotebookEnv(in_colab=True, device="cuda", preset="512-cond")
    assert big.config().model_output_size == 512
    toy = notebook.NotebookEnv(in_colab=False, device="cpu", preset="toy")
    cfg = toy.config(prompt="a red circle")
    # the toy world keeps the paper's guidance; only the number of samples is smaller
    paper = bl.EditConfig(prompt="a red circle")
    for name in ("clip_guidance_lambda", "range_lambda", "aug_num", "skip_timesteps", "timestep_respacing"):
        assert getattr(cfg, name) == getattr(paper, name)
    assert cfg.batch_size * cfg.iterations_num < paper.batch_size * paper.iterations_num


def test_setup_sets_torchs_threads_by_the_preset(monkeypatch):
    import torch

    from blendlab.threads import threads_for

    monkeypatch.delenv("BLENDLAB_THREADS", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(notebook, "_cuda_available", lambda: False)
    torch.set_num_threads(3)
    env = notebook.setup(banner=False)  # the toy world: few threads for its small models
    assert env.toy and env.threads == torch.get_num_threads() == threads_for("toy")[0] <= 2
    assert notebook.setup(banner=False, threads=3).threads == torch.get_num_threads() == 3
    monkeypatch.setenv("BLENDLAB_THREADS", "1")
    assert notebook.setup(banner=False).threads == torch.get_num_threads() == 1


def test_load_models_is_cached():
    env = notebook.NotebookEnv(in_colab=False, device="cpu", preset="tiny")
    models = env.load_models()
    assert models.preset == "tiny" and models.device.type == "cpu"
    assert env.load_models() is models


def test_banner(monkeypatch, capsys):
    monkeypatch.setattr(notebook, "_cuda_available", lambda: False)
    env = notebook.setup(repo_url="https://example.org/blendlab", banner=False)
    assert "TOY WORLD" in env.banner_text() and "trained" in env.banner_text()
    env = notebook.setup(repo_url="https://example.org/blendlab", force_tiny=True)
    text = capsys.readouterr().out  # outside IPython the banner is printed
    assert "TINY MODE" in text and "random" in text and "Colab" in text and "GPU" in text
    assert "https://example.org/blendlab" in text
    assert "TINY MODE" in env._repr_html_() and "<script" not in env._repr_html_()
    env = notebook.NotebookEnv(in_colab=True, device="cuda", preset="256-uncond")
    assert "TINY" not in env.banner_text() and "WARNING" not in env.banner_text()


def test_install_snippet(monkeypatch):
    runs = []
    monkeypatch.delenv(notebook.SOURCE_ENV, raising=False)
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: runs.append((a, k)) or types.SimpleNamespace(returncode=0))
    exec(compile(notebook.INSTALL_SNIPPET, "<first cell>", "exec"), {})
    assert runs == []  # blendlab importable: nothing installed
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "blendlab" else real_find_spec(name, *a))
    exec(compile(notebook.INSTALL_SNIPPET, "<first cell>", "exec"), {})
    (args, kwargs), = runs
    assert args[0][1:4] == ["-m", "pip", "install"] and args[0][-1] == "git+" + notebook.REPO_URL
    assert kwargs == {}
    monkeypatch.setenv(notebook.SOURCE_ENV, "/content/my-blendlab")  # the one setting: your own copy
    exec(compile(notebook.INSTALL_SNIPPET, "<first cell>", "exec"), {})
    assert runs[-1][0][0][-1] == "/content/my-blendlab"


def test_a_failed_install_ends_the_first_cell_with_one_sentence(tmp_path):
    """pip cannot install from a copy that does not exist (fails fast, no network): the cell stops
    with one sentence saying what failed and how to install your own copy; no traceback."""
    hide = ("import importlib.util as u; f = u.find_spec; "
            "u.find_spec = lambda n, *a: None if n == 'blendlab' else f(n, *a)\n")
    missing = tmp_path / "no-such-copy"
    run = subprocess.run([sys.executable, "-c", hide + notebook.INSTALL_SNIPPET], capture_output=True, text=True,
                         env={**os.environ, notebook.SOURCE_ENV: str(missing)}, timeout=120)
    out = run.stdout + run.stderr
    assert run.returncode == 1 and "Traceback" not in out and "CalledProcessError" not in out, out
    last = run.stderr.strip().splitlines()[-1]
    assert last == (f"blendlab could not be installed from {missing} (pip says why above); to install your own "
                    f"copy, set BLENDLAB_SOURCE to your fork's git+https URL or a local path "
                    f"(e.g. %env BLENDLAB_SOURCE=/content/blendlab) and run this cell again.")
    assert not missing.exists()


def test_examples_follow_the_preset():
    toy = notebook.NotebookEnv(in_colab=False, device="cpu", preset="toy")
    tiny = notebook.NotebookEnv(in_colab=False, device="cpu", preset="tiny")
    for name in ("insert", "replace", "background", "scribble", "extrapolate"):
        ex = toy.example(name)
        assert ex.toy and ex.image.shape == (1, 3, 32, 32) and ex.mask.shape == (1, 1, 32, 32)
        assert ex.mask.sum() > 0 and ex.prompt
        photo = tiny.example(name)
        assert not photo.toy and photo.image.shape[-1] == 32
    assert toy.example("scribble").scribble_mask is not None
    assert toy.example("extrapolate").prompts
    with pytest.raises(ValueError, match="unknown example"):
        toy.example("nonsense")
