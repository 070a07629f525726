"""The "toy" preset: the shipped, trained toy-world weights load offline and are checked."""

import json
import shutil

import pytest

import blendlab as bl
from blendlab import checkpoints


def test_toy_preset_loads_shipped_weights_offline(toy):
    assert toy.preset == "toy" and toy.is_toy and toy.is_local and not toy.is_tiny
    assert toy.image_size == 32 and toy.clip_name == "toy"
    assert type(toy.unet).__name__ == "UNetModel" and type(toy.clip).__name__ == "CLIP"
    assert toy.clip_size != toy.image_size, "the toy CLIP exercises the resize to CLIP's size"
    for kind in checkpoints.TOY_KINDS:
        card = json.loads((checkpoints.TOY_WEIGHTS / f"toy_{kind}.json").read_text())
        assert card["steps"] > 100, "the shipped weights are trained, not a smoke run"
        assert checkpoints.toy_weights(kind).stat().st_size == card["bytes"]
    total = sum(p.stat().st_size for p in checkpoints.TOY_WEIGHTS.iterdir())
    assert total <= 40 * 2**20, "the whole toy world ships in 40 MB"


def test_corrupted_toy_weights_give_a_checkpoint_error(tmp_path, monkeypatch):
    folder = tmp_path / "weights"
    shutil.copytree(checkpoints.TOY_WEIGHTS, folder, ignore=shutil.ignore_patterns("*.state.pt"))
    data = bytearray((folder / "toy_unet.pt").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (folder / "toy_unet.pt").write_bytes(bytes(data))
    monkeypatch.setattr(checkpoints, "TOY_WEIGHTS", folder)
    with pytest.raises(bl.CheckpointError, match="corrupt.*retrain"):
        bl.load_models("toy", device="cpu")
    # a missing file says where it should be and how to make it
    (folder / "toy_clip.pt").unlink()
    with pytest.raises(bl.CheckpointError, match="missing.*train_clip"):
        checkpoints.toy_weights("clip")
