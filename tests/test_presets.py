"""The presets and the one map from a preset to the size an edit works at."""

import pytest

from blendlab.errors import InputError


def test_output_size_is_the_one_map_from_presets_to_sizes():
    from blendlab.cli.parser import PRESET_FOR_SIZE
    from blendlab.notebook import NotebookEnv
    from blendlab.presets import PRESETS, output_size, preset_for_size

    assert {p: output_size(p) for p in PRESETS} == {"256-uncond": 256, "512-cond": 512, "toy": None,
                                                     "tiny": None, "tiny-cond": None}
    assert PRESET_FOR_SIZE == {256: "256-uncond", 512: "512-cond"}
    assert preset_for_size(512) == "512-cond" and preset_for_size(32) is None
    with pytest.raises(InputError, match="toy"):
        output_size("toys")
    from blendlab.presets import image_size  # the size the models work at, for every preset

    assert {p: image_size(p) for p in PRESETS} == {"256-uncond": 256, "512-cond": 512, "toy": 32, "tiny": 32,
                                                   "tiny-cond": 32}
    with pytest.raises(InputError, match="toy"):
        image_size("toys")
    for preset in PRESETS:  # the notebooks' config follows it, with no GPU needed to ask
        env = NotebookEnv.__new__(NotebookEnv)
        env.preset = preset
        assert env.config().model_output_size == (output_size(preset) or 256)


def test_quick_settings_live_in_presets_and_keep_their_old_home():
    from blendlab import notebook, presets
    from blendlab.config import EditConfig

    for name in ("TINY_SETTINGS", "TOY_SETTINGS", "LESSON_BATCH", "TOY_PRESET", "REAL_PRESET", "settings_for"):
        assert getattr(notebook, name) is getattr(presets, name), name
    assert presets.settings_for("tiny-cond") == presets.TINY_SETTINGS
    assert presets.settings_for("toy") == presets.TOY_SETTINGS == presets.LESSON_BATCH
    assert presets.settings_for("256-uncond") == {}
    quick = presets.settings_for("tiny")
    quick["batch_size"] = 99  # a copy: the policy itself is never changed by a caller
    assert presets.TINY_SETTINGS["batch_size"] == 2
    EditConfig(**presets.TINY_SETTINGS)  # every override is a real, valid setting
