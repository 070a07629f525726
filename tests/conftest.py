import os

import pytest
import torch

import blendlab as bl

os.environ.setdefault("BLENDLAB_OFFLINE", "1")  # tests never reach the internet


@pytest.fixture(scope="session")
def tiny():
    """The tiny preset on CPU (shared: nothing mutates it)."""
    return bl.load_models("tiny", device="cpu")


@pytest.fixture(scope="session")
def tiny_cond():
    return bl.load_models("tiny-cond", device="cpu")


@pytest.fixture
def image(tiny):
    return bl.sample_image("grace_hopper", size=tiny.image_size)


@pytest.fixture
def mask(tiny):
    return bl.box_mask(tiny.image_size, (0.25, 0.25, 0.75, 0.75))


def fast_cfg(**kw):
    base = dict(prompt="rock", timestep_respacing="12", skip_timesteps=4, batch_size=2,
                iterations_num=1, aug_num=3, seed=7)
    base.update(kw)
    return bl.EditConfig(**base)


@pytest.fixture
def cfg():
    return fast_cfg()


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    """Never read or write the real ~/.cache/blendlab."""
    monkeypatch.setenv("BLENDLAB_HOME", str(tmp_path / "blendlab_home"))
    torch.manual_seed(0)
