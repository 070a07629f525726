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
def toy():
    """The toy world's trained models (shipped weights) on CPU."""
    return bl.load_models("toy", device="cpu")


@pytest.fixture(scope="session")
def tiny_cond():
    return bl.load_models("tiny-cond", device="cpu")


@pytest.fixture
def image(tiny):
    return bl.sample_image("grace_hopper", size=tiny.image_size)


@pytest.fixture
def mask(tiny):
    return bl.box_mask(tiny.image_size, (0.25, 0.25, 0.75, 0.75))


from _fast import fast_cfg  # noqa: E402  (tests/ is on sys.path)


@pytest.fixture
def cfg():
    return fast_cfg()


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    """Never read or write the real ~/.cache/blendlab."""
    monkeypatch.setenv("BLENDLAB_HOME", str(tmp_path / "blendlab_home"))
    torch.manual_seed(0)
