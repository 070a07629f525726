"""Every mistake answered (issue 24): misspelt settings, step counts, masks of another shape or size,
an empty prompt, output file modes. Each message names the problem and the fix; inputs stay as given."""

import os
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

import blendlab as bl
from blendlab.images import atomic_write, save_image
from blendlab.masks import check_mask, check_mask_fits

from _fast import fast_cfg


# -- settings ------------------------------------------------------------------------------------
def test_a_misspelt_setting_names_the_closest_one():
    with pytest.raises(bl.UnknownSettingError, match=r"^unknown setting 'promt' — did you mean 'prompt'\?$"):
        bl.EditConfig(promt="a rock")
    with pytest.raises(TypeError, match="did you mean 'batch_size'"):  # what Python would raise, too
        bl.EditConfig(prompt="x", batchsize=2)
    with pytest.raises(bl.InputError, match="did you mean 'skip_timesteps'"):
        bl.EditConfig().replace(skip_timestep=5)
    with pytest.raises(bl.UnknownSettingError, match="unknown setting 'zzz' — the settings are EditConfig's fields"):
        bl.EditConfig(zzz=1)
    assert issubclass(bl.UnknownSettingError, bl.BlendlabError)
    assert bl.EditConfig(prompt="rock").prompt == "rock"  # the right names still work


@pytest.mark.parametrize("respacing, says", [
    ("-10", r"timestep_respacing='-10' asks for a negative step count \(-10\); the step count must be from "
            r"1 to 1000, e\.g\. timestep_respacing='100'"),
    ("10,-5", r"asks for a negative step count \(-5\)"),
    ("ddim10,10", r"'ddim' takes one step count"),
    ("0", r"timestep_respacing='0' asks for 0 steps; the step count must be from 1 to 1000"),
    ("ddim0", r"asks for 0 steps"),
    ("2000", r"more steps than the schedule's 1000; use a step count from 1 to 1000"),
    ("ten", r"timestep_respacing='ten' is not understood; use a step count from 1 to 1000 such as '100'"),
    ("ddim999", r"no whole-number stride takes exactly 999 of the 1000 steps; use e\.g\. 'ddim50'"),
])
def test_step_counts_that_cannot_run_say_the_valid_range(respacing, says):
    with pytest.raises(bl.InputError, match=says) as err:
        bl.EditConfig(prompt="x", timestep_respacing=respacing)
    assert "fewer skipped steps" not in str(err.value)


@pytest.mark.parametrize("skip, says", [
    (-1, r"skip_timesteps=-1 is negative; skip_timesteps must be a whole number from 0 to 99"),
    (100, r"skip_timesteps=100 leaves no step of the 100 respaced steps \(timestep_respacing='100'\); "
          r"skip_timesteps must be a whole number from 0 to 99 .*timestep_respacing='200'"),
    (2.5, r"skip_timesteps=2\.5 is not a whole number of steps; skip_timesteps must be a whole number from 0 to 99"),
])
def test_skipped_steps_out_of_range_say_the_range(skip, says):
    with pytest.raises(bl.InputError, match=says):
        bl.EditConfig(prompt="x", skip_timesteps=skip)
    assert bl.EditConfig(prompt="x", skip_timesteps=99).num_steps == 1
    assert bl.EditConfig(prompt="x", timestep_respacing="10,10,10", skip_timesteps=5).num_steps == 25


# -- masks ---------------------------------------------------------------------------------------
def test_check_mask_fits_errs_on_another_shape_and_warns_on_another_size():
    with pytest.raises(bl.InputError, match=r"the mask is 64×48 but the image is 32×32 \(width×height\): "
                                            r"their shapes differ.*Make the mask from this image, at 32×32"):
        check_mask_fits((64, 48), (32, 32))
    with pytest.warns(bl.MaskResizedWarning, match=r"the mask is 64×64 and the image 32×32: same shape, so "
                                                   r"the mask is resized.*Save the mask at 32×32"):
        assert check_mask_fits((64, 64), (32, 32)) is None
    with pytest.warns(bl.MaskResizedWarning):
        check_mask_fits((333, 250), (1000, 750))  # one pixel of rounding is the same shape
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert check_mask_fits((40, 30), (40, 30)) is None  # the image's own size: silent
    assert issubclass(bl.MaskResizedWarning, bl.BlendlabWarning) and issubclass(bl.BlendlabWarning, UserWarning)


def test_load_mask_for_an_image_checks_and_resizes_to_it(tmp_path):
    arr = np.zeros((48, 64), np.uint8)
    arr[10:30, 20:50] = 255
    before = arr.copy()
    with pytest.raises(bl.InputError, match="64×48 but the image is 32×32"):
        bl.load_mask(arr, size=32, image_size=(32, 32))
    Image.fromarray(arr).save(tmp_path / "mask.png")
    with pytest.warns(bl.MaskResizedWarning, match="64×48 and the image 32×24"):
        mask = bl.load_mask(tmp_path / "mask.png", image_size=(32, 24))
    assert mask.shape == (1, 1, 24, 32) and set(mask.unique().tolist()) == {0.0, 1.0}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # both stretched alike to the model's size: nothing to say
        assert bl.load_mask(arr, size=32, image_size=(64, 48)).shape == (1, 1, 32, 32)
    np.testing.assert_array_equal(arr, before)  # the input is not modified


def test_tensors_of_another_shape_name_both_sizes():
    image = torch.zeros(1, 3, 32, 32)
    with pytest.raises(bl.InputError, match="the mask is 64×48 but the image is 32×32"):
        check_mask(torch.ones(1, 1, 48, 64), image)
    with pytest.raises(bl.InputError, match="same size"):
        check_mask(torch.ones(1, 1, 16, 16), image)
    with pytest.warns(bl.FullMaskWarning, match="whole image"):
        check_mask(torch.ones(1, 1, 32, 32), image)


def test_the_painter_refuses_a_mask_of_another_shape_and_keeps_its_own():
    from blendlab.widgets import MaskPainter

    painter = MaskPainter(torch.zeros(1, 3, 32, 32))
    painter.set_mask(bl.box_mask(32, (0.25, 0.25, 0.75, 0.75)))
    kept = painter.mask
    with pytest.raises(bl.InputError, match="the mask is 64×48 but the image is 32×32"):
        painter.set_mask(np.ones((48, 64), np.uint8))
    assert torch.equal(painter.mask, kept)
    with pytest.warns(bl.MaskResizedWarning):
        painter.set_mask(np.ones((64, 64), np.uint8))
    assert painter.mask.shape == (1, 1, 32, 32)


# -- an empty prompt -----------------------------------------------------------------------------
def test_an_empty_prompt_warns_once_that_the_edit_runs_unguided(tiny, image, mask):
    cfg = fast_cfg(prompt="", iterations_num=2, timestep_respacing="4", skip_timesteps=2)
    with pytest.warns(bl.UnguidedWarning) as caught:
        result = bl.edit(tiny, image, mask, cfg, progress=False)
    unguided = [w for w in caught if issubclass(w.category, bl.UnguidedWarning)]
    assert len(unguided) == 1, "once per edit, not per batch"
    text = str(unguided[0].message)
    assert "prompt is empty" in text and "runs unguided" in text and "clip_guidance_lambda=0" in text
    assert result.images.shape[0] == 4 and cfg.clip_guidance_lambda == 1000  # ran; cfg as given
    with warnings.catch_warnings():
        warnings.simplefilter("error", bl.UnguidedWarning)
        bl.edit(tiny, image, mask, cfg.replace(clip_guidance_lambda=0, iterations_num=1), progress=False)


# -- file modes ----------------------------------------------------------------------------------
@pytest.fixture(params=[0o022, 0o077, 0o002])
def umask(request):
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def test_outputs_follow_the_umask(umask, tmp_path):
    png = save_image(torch.zeros(1, 3, 8, 8), tmp_path / "out" / "a.png")
    text = atomic_write(tmp_path / "b.json", lambda tmp: open(tmp, "w").write("{}"))
    for path in (png, text):
        assert path.stat().st_mode & 0o777 == 0o666 & ~umask, oct(path.stat().st_mode)


def test_a_failed_write_leaves_nothing(umask, tmp_path):
    def broken(tmp):
        open(tmp, "w").write("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(tmp_path / "c.txt", broken)
    assert list(tmp_path.iterdir()) == []
