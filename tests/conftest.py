import os

import numpy as np
import pytest
import torch
from PIL import Image

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
def files(tmp_path):
    """A folder holding ``img.png`` (64x48 random RGB) and ``mask.png`` (a white box) for the CLI."""
    img = (np.random.default_rng(1).random((48, 64, 3)) * 255).astype(np.uint8)
    Image.fromarray(img).save(tmp_path / "img.png")
    m = np.zeros((48, 64), np.uint8)
    m[10:30, 20:50] = 255
    Image.fromarray(m).save(tmp_path / "mask.png")
    return tmp_path


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


@pytest.fixture(autouse=True)
def _restore_torch_threads():
    """notebook.setup() and EditorApp() set torch's thread count (blendlab.threads): put it back."""
    before = torch.get_num_threads()
    yield
    if torch.get_num_threads() != before:
        torch.set_num_threads(before)
