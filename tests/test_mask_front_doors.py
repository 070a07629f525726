"""Every front door judges a mask against its image the same way: another aspect ratio is an error
naming both sizes, another size only a warning (the CLI and a sweep spec; the library's own
load_mask is tested in test_guards.py)."""

import io
import subprocess
import sys
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import blendlab as bl
import blendlab.sweep as sw
from blendlab.errors import InputError, MaskResizedWarning

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(tmp_path / "photo.png")  # 64×48
    wide = np.zeros((48, 96), np.uint8); wide[10:30, 20:60] = 255
    Image.fromarray(wide).save(tmp_path / "wide_mask.png")     # 96×48: another aspect ratio
    big = np.zeros((96, 128), np.uint8); big[20:60, 40:100] = 255
    Image.fromarray(big).save(tmp_path / "big_mask.png")       # 128×96: the same aspect, twice the size
    return tmp_path


def _edit(tmp_path, mask):
    env = dict(os.environ, PYTHONPATH=str(ROOT), BLENDLAB_OFFLINE="1", BLENDLAB_THREADS="1",
               BLENDLAB_HOME=str(tmp_path / "home"))
    args = ["edit", "--preset", "tiny", "-p", "rock", "-i", "photo.png", "--mask", mask, "--timestep_respacing",
            "6", "--skip_timesteps", "2", "--batch_size", "1", "--iterations_num", "1", "--aug_num", "1",
            "--no_progress", "--no_figures", "--output_path", "out"]
    return subprocess.run([sys.executable, "-m", "blendlab.cli", *args], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)


def test_the_cli_refuses_a_mask_of_another_aspect_ratio_in_one_line(files):
    run = _edit(files, "wide_mask.png")
    assert run.returncode == 1
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in run.stderr, run.stderr
    assert "96×48" in lines[0] or "96x48" in lines[0], lines[0]
    assert "64×48" in lines[0] or "64x48" in lines[0], lines[0]
    assert not (files / "out").exists()


def test_the_cli_resizes_a_mask_of_the_same_aspect_with_a_one_line_warning(files):
    run = _edit(files, "big_mask.png")
    assert run.returncode == 0, run.stderr
    warned = [line for line in run.stderr.splitlines() if "warning" in line and "resiz" in line]
    assert len(warned) == 1, run.stderr
    assert "Traceback" not in run.stderr


def test_a_sweep_spec_names_the_row_whose_mask_does_not_fit(files):
    spec = {"preset": "tiny", "inputs": [{"name": "photo", "image": str(files / "photo.png"),
                                          "mask": str(files / "wide_mask.png"), "prompt": "rock"}],
            "config": {"timestep_respacing": "6", "skip_timesteps": 2, "batch_size": 1, "iterations_num": 1},
            "seeds": [0]}
    rows = sw.expand(spec)
    with pytest.raises(InputError, match=r"(?s)\(photo, .*the mask is 96×48 but the image is 64×48"):
        sw.validate(rows)
    spec["inputs"][0]["mask"] = str(files / "big_mask.png")
    with pytest.warns(MaskResizedWarning):
        sw.validate(sw.expand(spec))


def test_file_size_reads_the_size_load_image_sees_from_the_header(tmp_path):
    from blendlab.images import file_size, load_image

    im = Image.fromarray(np.zeros((48, 64, 3), np.uint8))
    exif = im.getexif()
    exif[0x0112] = 6  # a phone photo taken sideways: load_image turns it upright
    im.save(tmp_path / "turned.jpg", exif=exif)
    im.save(tmp_path / "plain.png")
    for name in ("turned.jpg", "plain.png"):
        t = load_image(tmp_path / name)
        assert file_size(tmp_path / name) == (t.shape[-1], t.shape[-2])
    with pytest.raises(InputError, match="could not read image"):
        (tmp_path / "broken.png").write_bytes(b"not a png")
        file_size(tmp_path / "broken.png")


def test_own_size_is_the_size_load_image_sees_for_every_kind_of_input():
    from blendlab.images import load_image, own_size

    plain = Image.fromarray(np.zeros((48, 64, 3), np.uint8))
    exif = plain.getexif()
    exif[0x0112] = 6  # sideways: load_image turns it upright
    turned = Image.open(io.BytesIO(_jpeg(plain, exif)))
    kinds = [turned, Image.fromarray(np.zeros((48, 64, 3), np.uint8)), np.zeros((48, 64), np.uint8),
             np.zeros((48, 64, 4), np.uint8), np.zeros((3, 48, 64), np.float32),
             torch.zeros(1, 48, 64, 3, dtype=torch.uint8), torch.zeros(1, 3, 48, 64)]
    for src in kinds:
        t = load_image(src)
        assert own_size(src) == (t.shape[-1], t.shape[-2]), type(src)


def _jpeg(im, exif) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format="JPEG", exif=exif)
    return buf.getvalue()


def test_prepare_decodes_an_in_memory_image_and_mask_once(monkeypatch):
    """A PIL image and mask are decoded once each (their own sizes come from the size and the EXIF
    tag), and give exactly what the files' path gives."""
    from blendlab import images as images_room, inputs as inputs_room, masks as masks_room

    decoded = {"image": 0, "mask": 0}
    to_rgb, to_mask = images_room.ImageOps.exif_transpose, masks_room._pil_mask_array

    def counting_image(im, *a, **k):
        decoded["image"] += 1
        return to_rgb(im, *a, **k)

    def counting_mask(im, *a, **k):
        decoded["mask"] += 1
        return to_mask(im, *a, **k)

    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (48, 48, 3), dtype=np.uint8))
    box = np.zeros((48, 48), np.uint8)
    box[10:30, 12:40] = 255
    mask = Image.fromarray(box)
    cfg = bl.EditConfig(prompt="rock")
    want = inputs_room.prepare("tiny", image, mask, cfg)
    monkeypatch.setattr(images_room.ImageOps, "exif_transpose", counting_image)
    monkeypatch.setattr(masks_room, "_pil_mask_array", counting_mask)
    got = inputs_room.prepare("tiny", image, mask, cfg)
    assert decoded == {"image": 1, "mask": 1}
    assert torch.equal(got.image, want.image) and torch.equal(got.mask, want.mask)
    assert torch.equal(got.edit_mask, want.edit_mask)
