"""``blendlab edit --method bld``: Blended Latent Diffusion from the command line, on the tiny latent preset,
writing what ``blendlab edit`` writes, and every mistake answered before a weight loads."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from blendlab.cli import main
from blendlab.latent import LatentConfig, latent_edit, tiny_latent_models
from blendlab.latent.models import latent_image_size
from blendlab.latent.toy import TOY_LATENT

BLD = ["--method", "bld", "--preset", "tiny", "--num_steps", "8", "--batch_size", "2", "--iterations_num", "1",
       "--no_progress"]


@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (48, 48, 3), dtype=np.uint8)).save(tmp_path / "img.png")
    mask = np.zeros((48, 48), np.uint8)
    mask[12:36, 12:36] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    thin = np.zeros((48, 48), np.uint8)
    thin[:, 24] = 255  # one pixel wide: less than half of any 4x4 latent cell at 32 px
    Image.fromarray(thin).save(tmp_path / "thin.png")
    return tmp_path


def _status(argv):
    """main's status; argparse's usage errors exit (status 2)."""
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


def _edit(files, *extra, out="out"):
    return _status(["edit", "-p", "a red circle", "-i", str(files / "img.png"), "--mask", str(files / "mask.png"),
                 "--output_path", str(files / out), *BLD, *extra])


def test_bld_edits_from_the_command_line_and_writes_what_edit_writes(files, capsys):
    before = (files / "img.png").read_bytes()
    assert _edit(files, "--iterations_num", "2", "--export_assets", "--reconstruction", "pixel") == 0
    out = files / "out"
    summary = json.loads((out / "ranked.json").read_text())
    assert summary["method"] == "bld" and summary["latent_model"] == "tiny-latent"
    assert summary["settings"]["num_steps"] == 8 and summary["settings"]["reconstruction"] == "pixel"
    dists = [r["clip_distance"] for r in summary["ranked"]]
    assert len(dists) == 4 and dists == sorted(dists)
    assert len(list((out / "ranked").iterdir())) == 4
    assert sorted(p.name for p in out.glob("bld_i_*.png")) == [f"bld_i_{i}_b_{b}.png" for i in range(2) for b in range(2)]
    assert (out / "assets" / "output.png").is_file() and (out / "assets" / "output_mask.png").is_file()
    assert (files / "img.png").read_bytes() == before
    assert "Blended Latent Diffusion (tiny-latent)" in capsys.readouterr().out


def test_the_command_line_gives_what_latent_edit_gives(files):
    from blendlab.images import load_image
    from blendlab.masks import load_mask

    assert _edit(files, "--seed", "7") == 0
    summary = json.loads((files / "out" / "ranked.json").read_text())
    cfg = LatentConfig(prompt="a red circle", num_steps=8, batch_size=2, seed=7)
    result = latent_edit(tiny_latent_models(), load_image(files / "img.png", size=32),
                         load_mask(files / "mask.png", size=32), cfg, progress=False)
    assert [r["clip_distance"] for r in summary["ranked"]] == pytest.approx([d for _, d in result.ranked])


@pytest.mark.parametrize("extra, says", [
    (["--clip_guidance_lambda", "500"], "--clip_guidance_lambda is Blended Diffusion's"),
    (["--vid", "--ddim"], "--ddim, --vid are Blended Diffusion's"),
    (["--guidance_scale", "-1"], "guidance_scale must be a number >= 0"),
    (["--blending_start", "1"], "blending_start must be"),
])
def test_mistakes_of_a_bld_command_line_are_one_line_each(files, capsys, extra, says):
    assert _edit(files, *extra) in (1, 2)
    err = capsys.readouterr().err
    assert says in err and "Traceback" not in err
    assert not (files / "out").exists()


def test_a_latent_flag_without_method_bld_is_refused(files, capsys):
    code = _status(["edit", "-p", "rock", "-i", str(files / "img.png"), "--preset", "tiny", "--guidance_scale", "3",
                 "--output_path", str(files / "out")])
    assert code == 2 and "--guidance_scale is for Blended Latent Diffusion; add --method bld" in capsys.readouterr().err


def test_a_mask_too_thin_for_the_latent_grid_is_refused_before_loading(files, capsys):
    code = _status(["edit", "-p", "a red circle", "-i", str(files / "img.png"), "--mask", str(files / "thin.png"),
                 "--output_path", str(files / "out"), *BLD])
    assert code == 1 and "nothing is left of it at the latent size 8×8" in capsys.readouterr().err


def test_a_missing_latent_model_folder_names_what_to_do(files, capsys):
    assert _edit(files, "--latent_model", str(files / "no_such_model")) == 1
    err = capsys.readouterr().err
    assert "lacks unet/config.json" in err and "save_pretrained" in err


def test_a_blended_diffusion_preset_needs_a_latent_model_with_method_bld(files, capsys):
    code = _status(["edit", "-p", "a", "-i", str(files / "img.png"), "--method", "bld", "--preset", "256-uncond",
                 "--output_path", str(files / "out")])
    assert code == 2 and "--latent_model" in capsys.readouterr().err


def test_the_latent_image_size_is_read_from_the_configs_alone(tmp_path):
    assert latent_image_size(TOY_LATENT) == (32, 4)
    tiny_latent_models().save_pretrained(tmp_path / "tiny")
    assert latent_image_size(tmp_path / "tiny") == (32, 4)
