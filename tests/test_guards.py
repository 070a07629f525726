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
    ("-10", r"timestep_respacing='-10' asks for -10 steps; the step count must be from 1 to 1000, "
            r"e\.g\. timestep_respacing='100'"),
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

