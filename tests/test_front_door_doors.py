"""One front door through the user's doors (issue 23): ``blendlab edit``, the EditorApp and a sweep
check an edit's inputs through blendlab.inputs.prepare once per edit, build the diffusion, the text
embedding and the guidance loss once for its three batches, and say one mistake in one wording."""

import numpy as np
import pytest
import torch
from PIL import Image

import blendlab as bl
import blendlab.sweep as sw
from blendlab import embeddings, guidance, masks, models as models_module, runner, sampler
from blendlab.cli import main
from blendlab.inputs import prepare
from blendlab.masks import EMPTY_INVERTED_MASK, EMPTY_MASK
from blendlab.widgets import EditorApp

FAST = dict(timestep_respacing="4", skip_timesteps=1, batch_size=2, iterations_num=3, aug_num=1, seed=3)
SWEEP_FAST = {k: v for k, v in FAST.items() if k != "seed"}
CLI_FAST = ["--timestep_respacing", "4", "--skip_timesteps", "1", "--batch_size", "2", "--iterations_num", "3",
            "--aug_num", "1", "--no_progress", "--no_figures"]
ONCE = {"check_mask": 1, "create_diffusion": 1, "encode_text": 1, "GuidanceLoss": 1}


@pytest.fixture
def counts(monkeypatch):
    """Counting wrappers around what an edit should do once, patched in every room that calls them."""
    seen = dict.fromkeys(ONCE, 0)

    def counting(name, fn):
        def wrapper(*args, **kwargs):
            seen[name] += 1
            return fn(*args, **kwargs)
        return wrapper

    monkeypatch.setattr(masks, "check_mask", counting("check_mask", masks.check_mask))
    diffusion = counting("create_diffusion", models_module.create_diffusion)
    text = counting("encode_text", embeddings.encode_text)
    loss = counting("GuidanceLoss", guidance.GuidanceLoss)
    for room in (runner, sampler):
        monkeypatch.setattr(room, "create_diffusion", diffusion)
        monkeypatch.setattr(room, "encode_text", text)
        monkeypatch.setattr(room, "GuidanceLoss", loss)
    return seen


@pytest.fixture
def files(tmp_path, monkeypatch):
    monkeypatch.setenv("BLENDLAB_OFFLINE", "1")
    bl.save_image(bl.sample_image("shapes", size=32), tmp_path / "img.png")
    box = np.zeros((32, 32), np.uint8)
    box[8:24, 8:24] = 255
    Image.fromarray(box).save(tmp_path / "box.png")
    return tmp_path


def _cli(files, mask, *extra):
    return main(["edit", "--preset", "tiny", "-p", "rock", "-i", str(files / "img.png"), "--mask",
                 str(files / mask), "--output_path", str(files / "out"), *CLI_FAST, *extra])


def _rows(files, mask, **settings):
    return sw.expand(dict(preset="tiny", config={**SWEEP_FAST, **settings}, seeds=[0],
                          inputs=[{"image": str(files / "img.png"), "mask": str(files / mask), "prompt": "rock"}]))


def test_the_cli_checks_once_and_builds_once(files, counts):
    assert _cli(files, "box.png") == 0
    assert len(list((files / "out" / "ranked").glob("*.png"))) == 6 and counts == ONCE


def test_the_app_checks_once_and_builds_once(tiny, counts):
    app = EditorApp(tiny, prompt="rock")
    app.painter.set_mask(bl.box_mask(32, (0.25, 0.25, 0.75, 0.75)))
    app.settings.set(**FAST)
    counts.update(dict.fromkeys(counts, 0))  # the painter's own checks are not the edit's
    assert app.run(block=True) is not None, app.message
    assert app.result.images.shape[0] == 6 and counts == ONCE


def test_a_sweep_row_checks_once_and_builds_once(tiny, files, counts):
    rows = sw.validate(_rows(files, "box.png"))
    assert counts == {**dict.fromkeys(ONCE, 0), "check_mask": 1}  # validated before any model is made
    record = sw.run_row(tiny, rows[0], files / "sweep")
    assert record["samples"] == 6 and counts == {**ONCE, "check_mask": 2}  # validate's, then the run's


@pytest.mark.parametrize("case", ["empty mask", "inverted full mask"])
def test_the_same_bad_mask_gets_the_same_words_through_every_door(tiny, files, capsys, case):
    value, settings, expected = {"empty mask": (0, {}, EMPTY_MASK),
                                 "inverted full mask": (1, {"invert_mask": True}, EMPTY_INVERTED_MASK)}[case]
    Image.fromarray(np.full((32, 32), 255 * value, np.uint8)).save(files / "bad.png")
    tensor = torch.full((1, 1, 32, 32), float(value))
    said = {}
    assert _cli(files, "bad.png", *(["--invert_mask"] if settings else [])) == 1
    said["cli"] = capsys.readouterr().err
    app = EditorApp(tiny, prompt="rock")
    app.settings.set(**FAST, **settings)
    app.painter.set_mask(tensor)
    assert app.run(block=True) is None
    said["app"] = app.message
    with pytest.raises(bl.InputError) as err:
        sw.validate(_rows(files, "bad.png", **settings))
    said["sweep"] = str(err.value)
    with pytest.raises(bl.InputError) as err:
        bl.edit(tiny, bl.load_image(files / "img.png"), tensor, bl.EditConfig(prompt="rock", **FAST, **settings))
    said["bl.edit"] = str(err.value)
    assert said["bl.edit"] == said["app"] == expected
    assert expected in said["cli"] and expected in said["sweep"], said
    assert not (files / "out").exists()


def test_an_empty_prompt_is_said_in_one_wording(tiny, files):
    with pytest.warns(bl.UnguidedWarning) as caught:
        bl.edit(tiny, bl.load_image(files / "img.png"), bl.box_mask(32, (0.2, 0.2, 0.6, 0.6)),
                bl.EditConfig(prompt="", **{**FAST, "iterations_num": 1}), progress=False)
    words = str(caught[0].message)
    app = EditorApp(tiny, prompt="")
    app.settings.set(**FAST)
    assert app.run(block=True) is None and app.message == words  # the app refuses it, in the same words
    rows = sw.expand(dict(preset="tiny", config=SWEEP_FAST, seeds=[0],
                          inputs=[{"image": str(files / "img.png"), "mask": str(files / "box.png")}]))
    with pytest.raises(bl.InputError) as err:
        sw.validate(rows)
    assert words in str(err.value)


def test_a_sweep_estimate_checks_once_and_builds_once(files, counts):
    """The estimate's timed one-sample run goes through the front door like every other edit."""
    rows = _rows(files, "box.png")
    est = sw.core.estimate(rows)
    assert est["rows"] == 1 and est["seconds"] > 0
    assert counts == ONCE


def test_row_inputs_are_the_front_doors_tensors(files):
    row = _rows(files, "box.png")[0]
    image, mask = sw.spec.row_inputs(row, 32)
    inputs = prepare("tiny", files / "img.png", files / "box.png", sw.spec.row_config(row))
    assert torch.equal(image, inputs.image) and torch.equal(mask, inputs.mask)
    with pytest.raises(bl.InputError, match="works at 32 px, not 64"):
        sw.spec.row_inputs(row, 64)
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(files / "bad.png")
    with pytest.raises(bl.InputError) as err:
        sw.spec.row_inputs(_rows(files, "bad.png")[0], 32)
    assert str(err.value) == EMPTY_MASK
