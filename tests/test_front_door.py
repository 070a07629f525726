"""One front door (blendlab.inputs.prepare): an edit's inputs are checked once, what depends only on
the edit (diffusion, text embedding, guidance loss) is built once, whatever the number of batches,
and one mistake gets one wording whichever door it came through."""

import dataclasses
import sys
import warnings

import pytest
import torch

import blendlab as bl
from blendlab import embeddings, guidance, masks, models as models_room
from blendlab.errors import FullMaskWarning, InputError, UnguidedWarning
from blendlab.inputs import EditInputs, prepare

from _fast import fast_cfg


@pytest.fixture
def calls(monkeypatch):
    """Count every call of check_mask, encode_text, GuidanceLoss and create_diffusion, wherever a
    blendlab room imported them from (each room holds its own name for them)."""
    counts = {}
    originals = {"check_mask": (masks, masks.check_mask), "encode_text": (embeddings, embeddings.encode_text),
                 "GuidanceLoss": (guidance, guidance.GuidanceLoss),
                 "create_diffusion": (models_room, models_room.create_diffusion)}
    for name, (_, original) in originals.items():
        counts[name] = 0

        def counting(*args, _name=name, _original=original, **kwargs):
            counts[_name] += 1
            return _original(*args, **kwargs)

        for module in list(sys.modules.values()):
            if getattr(module, "__name__", "").startswith("blendlab") and getattr(module, name, None) is original:
                monkeypatch.setattr(module, name, counting)
    return counts


def test_bl_edit_checks_the_mask_once_and_builds_diffusion_text_and_loss_once(tiny, image, mask, calls):
    cfg = fast_cfg(iterations_num=3, batch_size=1)
    result = bl.edit(tiny, image, mask, cfg, progress=False)
    assert result.images.shape[0] == 3  # three batches ran
    assert calls == {"check_mask": 1, "encode_text": 1, "GuidanceLoss": 1, "create_diffusion": 1}


def test_the_sampler_on_its_own_still_checks_and_builds_what_it_needs(tiny, image, mask, calls):
    sampler = bl.BlendedSampler(tiny, image, mask, fast_cfg())
    assert calls == {"check_mask": 1, "encode_text": 1, "GuidanceLoss": 1, "create_diffusion": 1}
    assert sampler.loss is not None and sampler.text_embed.shape[0] == 1


def test_an_edit_equals_its_batches_sampled_one_by_one_bit_for_bit(tiny, image, mask):
    """Sharing the text embedding and the loss between batches changes nothing: bl.edit's samples are
    those of BlendedSampler runs built each on its own, drawing from one generator."""
    cfg = fast_cfg(iterations_num=2)
    result = bl.edit(tiny, image, mask, cfg, progress=False)
    generator = torch.Generator(device=tiny.device)
    generator.manual_seed(cfg.seed)
    alone = []
    for iteration in range(cfg.iterations_num):
        sampler = bl.BlendedSampler(tiny, image, mask, cfg, generator=generator)
        sampler.iteration = iteration
        alone.append(sampler.run())
    assert torch.equal(result.images, torch.cat(alone).cpu())


def test_prepare_returns_warnings_as_data_and_gives_none_itself(tiny, image):
    full = torch.ones(1, 1, tiny.image_size, tiny.image_size)
    before = full.clone()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # prepare itself warns nothing
        inputs = prepare(tiny, image, full, fast_cfg(prompt=""))
    assert isinstance(inputs, EditInputs) and inputs.size == tiny.image_size
    assert [w.category for w in inputs.warnings] == [FullMaskWarning, UnguidedWarning]
    assert "whole image" in inputs.of(FullMaskWarning)[0].message
    assert inputs.image is image and torch.equal(full, before)  # nothing given is modified
    with pytest.warns(UnguidedWarning) as given:
        inputs.warn()
    assert [w.category for w in given] == [FullMaskWarning, UnguidedWarning]


def test_prepared_inputs_go_straight_to_edit_and_must_match_the_models(tiny, image, mask):
    cfg = fast_cfg()
    inputs = prepare("tiny", image, mask, cfg)  # a preset's name: checked before any model loads
    assert inputs.preset == "tiny"
    result = bl.edit(tiny, inputs, progress=False)
    assert torch.equal(result.images, bl.edit(tiny, image, mask, cfg, progress=False).images)
    with pytest.raises(InputError, match="takes prepared inputs alone"):
        bl.edit(tiny, inputs, mask, cfg, progress=False)
    moved = EditInputs(image=inputs.image, mask=inputs.mask, edit_mask=inputs.edit_mask, cfg=cfg,
                       preset="tiny", size=inputs.size * 2)
    with pytest.raises(InputError, match=r"prepared at 64x64, but the models work at 32x32"):
        bl.edit(tiny, moved, progress=False)


def _bad_inputs(size):
    empty = torch.zeros(1, 1, size, size)
    small = torch.ones(1, 1, size // 2, size // 2)
    full = torch.ones(1, 1, size, size)
    return {"empty mask": (empty, {}, masks.EMPTY_MASK),
            "inverted full mask": (full, {"invert_mask": True}, masks.EMPTY_INVERTED_MASK),
            "mask of another size": (small, {}, "mask is (16, 16) but the image is (32, 32)")}


@pytest.mark.parametrize("case", ["empty mask", "inverted full mask", "mask of another size"])
def test_one_mistake_one_wording_through_every_library_door(tiny, image, case):
    bad, settings, wording = _bad_inputs(tiny.image_size)[case]
    cfg = fast_cfg(**settings)
    doors = {"prepare": lambda: prepare(tiny, image, bad, cfg),
             "prepare, preset name": lambda: prepare("tiny", image, bad, cfg),
             "bl.edit": lambda: bl.edit(tiny, image, bad, cfg, progress=False),
             "BlendedSampler": lambda: bl.BlendedSampler(tiny, image, bad, cfg)}
    said = {}
    for door, call in doors.items():
        with pytest.raises(InputError) as err:
            call()
        said[door] = str(err.value)
    assert len(set(said.values())) == 1, said
    assert wording in said["bl.edit"], said["bl.edit"]


def test_edit_inputs_move_to_a_device_in_one_place_and_only_when_needed(tiny, image, mask):
    inputs = prepare(tiny, image, mask, fast_cfg(prompt="rock"))
    assert inputs.to("cpu") is inputs  # already there: nothing copied, the caller's tensors kept
    wide = dataclasses.replace(inputs, image=image.double())
    moved = wide.to("cpu")
    assert moved is not wide and moved.image.dtype == torch.float32 and wide.image.dtype == torch.float64
    assert torch.equal(moved.image, image) and moved.mask is inputs.mask and moved.cfg is inputs.cfg
