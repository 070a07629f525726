"""The EditorApp's method choice: Blended Latent Diffusion from the same image, mask, prompt, preview,
gallery and step scrubber, on the tiny presets (no browser)."""

import pytest
import torch

import blendlab as bl
from blendlab.latent import LatentConfig, LatentEditResult, latent_edit, tiny_latent_models
from blendlab.widgets import EditorApp
from blendlab.widgets.method import latent_inputs

BOX = bl.box_mask(32, (0.25, 0.25, 0.75, 0.75))


@pytest.fixture(scope="module")
def latent():
    return tiny_latent_models()


def _app(tiny, latent, **kw):
    app = EditorApp(tiny, prompt="a red circle", latent_models=latent)
    app.painter.set_mask(BOX)
    app.settings.set(**{"batch_size": 2, "iterations_num": 1, "seed": 5, **kw})
    app.method.value = "bld"
    return app


def test_the_method_toggle_shows_bld_settings_only_for_bld(tiny, latent):
    app = EditorApp(tiny, latent_models=latent)
    assert app.method.value == "bd" and app.method.latent_box.layout.display == "none"
    app.method.value = "bld"
    assert app.method.latent_box.layout.display == "" and "classifier-free guidance" in app.method.note.value
    app.method.value = "bd"
    assert app.method.latent_box.layout.display == "none"


def test_a_bld_run_ranks_a_gallery_and_records_steps_for_the_scrubber(tiny, latent):
    app = _app(tiny, latent, iterations_num=2)
    app.record.value = True
    result = app.run(block=True)
    assert isinstance(result, LatentEditResult), app.message
    steps = LatentConfig(prompt="x").steps_run
    assert result.images.shape == (4, 3, 32, 32) and len(app.gallery.children) == 4
    assert app.progress.value == app.progress.max == 2 * steps
    assert "done: 4 images" in app.message
    assert app.preview.value[:4] == b"\x89PNG"
    assert app.scrubber is not None and len(app.recorder) == 2 * steps
    assert isinstance(app.recorder.cfg, LatentConfig) and app.recorder.cfg.reconstruction == "pixel"
    shown = app.scrubber.show(step_pos=-1, field="pred_x0", sample=1, iteration=1)  # a latent run's decoded steps
    assert shown.size[0] > 0 and app.scrubber.step.index == steps - 1 and app.scrubber.step.iteration == 1
    keep = 1 - BOX
    assert torch.equal(result.images * keep, result.init_image.expand_as(result.images) * keep)  # pixel


def test_the_app_gives_what_latent_edit_gives(tiny, latent):
    app = _app(tiny, latent)
    result = app.run(block=True)
    cfg = LatentConfig(prompt="a red circle", batch_size=2, seed=5, reconstruction="pixel")
    again = latent_edit(latent, app.painter.image, BOX, cfg, ranker=tiny, progress=False)
    assert torch.equal(result.images, again.images) and torch.equal(result.distances, again.distances)


def test_bld_mistakes_are_the_library_s_words_in_the_status_line(tiny, latent):
    app = _app(tiny, latent)
    app.prompt.value = ""
    assert app.run(block=True) is None and "prompt" in app.message
    app.prompt.value = "a red circle"
    thin = torch.zeros(1, 1, 32, 32)
    thin[..., 10:20, 16] = 1
    app.painter.set_mask(thin)
    assert app.run(block=True) is None and "latent size" in app.message and not app.running


def test_the_app_s_inputs_are_resized_to_the_latent_model_s_side():
    image = torch.rand(1, 3, 32, 32) * 2 - 1
    big, mask = latent_inputs(image, BOX, 64)
    assert big.shape == (1, 3, 64, 64) and mask.shape == (1, 1, 64, 64)
    assert set(mask.unique().tolist()) == {0.0, 1.0} and float(mask.mean()) == float(BOX.mean())
    same, same_mask = latent_inputs(image, BOX, 32)
    assert same is image and same_mask is BOX
