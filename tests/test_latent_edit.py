"""latent_edit: batches of Blended Latent Diffusion ranked by masked CLIP distance, as blendlab.edit ranks
Blended Diffusion's; the inputs checked and the prompt encoded once per edit; one generator for all batches."""

import pytest
import torch

import blendlab as bl
from blendlab import ranking
from blendlab.embeddings import encode_text, masked_clip_distance
from blendlab.errors import InputError
from blendlab.latent import BlendedLatentSampler, LatentConfig, latent_edit, ranking_models, tiny_latent_models
from blendlab.latent import sampler as latent_sampler
from blendlab.masks import box_mask

MASK = box_mask(32, (0.25, 0.25, 0.75, 0.75))


@pytest.fixture(scope="module")
def models():
    return tiny_latent_models()


@pytest.fixture(scope="module")
def ranker(models):
    return ranking_models(models)


@pytest.fixture(scope="module")
def image():
    return torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(3)) * 2 - 1


def _cfg(**kw):
    return LatentConfig(**{"prompt": "a red circle", "num_steps": 8, "batch_size": 2, "seed": 5, **kw})


def test_the_samples_are_ranked_by_the_masked_clip_distance_to_the_prompt(models, ranker, image):
    result = latent_edit(models, image, MASK, _cfg(), iterations=2, ranker=ranker, progress=False)
    assert result.images.shape == (4, 3, 32, 32) and result.sample_ids == [(0, 0), (0, 1), (1, 0), (1, 1)]
    want = masked_clip_distance(ranker.clip, result.images, encode_text(ranker.clip, "a red circle"), result.mask)
    torch.testing.assert_close(result.distances, want)
    torch.testing.assert_close(ranking.masked_clip(result), want)  # the ranking room agrees
    assert result.order == torch.argsort(want, stable=True).tolist()
    assert torch.equal(result.best[0], result.images[result.order[0]])
    assert [d for _, d in result.ranked] == sorted(float(d) for d in want)
    assert result.sample_name(3) == "bld_i_1_b_1.png" and isinstance(result.cfg, LatentConfig)
    table = ranking.compare(result)
    assert [row["name"] for row in table] == [result.sample_name(i) for i in range(4)]


def test_one_generator_drives_every_batch(models, ranker, image):
    two = latent_edit(models, image, MASK, _cfg(), iterations=2, ranker=ranker, progress=False)
    first = BlendedLatentSampler(models, image, MASK, _cfg()).run()
    assert torch.equal(two.images[:2], first.cpu())  # batch 1 is the single run's
    assert not torch.equal(two.images[2:], two.images[:2])  # batch 2 draws on from the same generator


def test_the_inputs_are_checked_and_the_prompt_encoded_once_per_edit(models, ranker, image, monkeypatch):
    calls = {"mask": 0, "text": 0}
    real_mask, real_encode = latent_sampler.edit_mask, models.text.encode  # bound to the real encoder

    def counting_mask(*a, **k):
        calls["mask"] += 1
        return real_mask(*a, **k)

    def counting_encode(*a, **k):
        calls["text"] += 1
        return real_encode(*a, **k)

    monkeypatch.setattr(latent_sampler, "edit_mask", counting_mask)
    monkeypatch.setattr(type(models.text), "encode", lambda self, *a, **k: counting_encode(*a, **k))
    latent_edit(models, image, MASK, _cfg(), iterations=3, ranker=ranker, progress=False)
    assert calls == {"mask": 1, "text": 1}


def test_hooks_see_every_step_of_every_batch_and_the_inputs_stay_unchanged(models, ranker, image):
    seen = []
    before_image, before_mask = image.clone(), MASK.clone()
    latent_edit(models, image, MASK, _cfg(), iterations=2, ranker=ranker, progress=False,
                hooks=[lambda s: seen.append((s.iteration, s.index))])
    steps = _cfg().steps_run
    assert seen == [(it, k) for it in range(2) for k in range(steps)]
    assert torch.equal(image, before_image) and torch.equal(MASK, before_mask)


def test_the_ranked_samples_save_best_first(models, ranker, image, tmp_path):
    result = latent_edit(models, image, MASK, _cfg(), ranker=ranker, progress=False)
    paths = result.save_ranked(tmp_path)
    assert [p.name.split("_", 1)[1] for p in paths] == [result.sample_name(i) for i in result.order]


def test_bad_inputs_get_blendlab_errors_before_anything_runs(models, ranker, image):
    with pytest.raises(InputError, match="LatentConfig"):
        latent_edit(models, image, MASK, bl.EditConfig(prompt="a red circle"), ranker=ranker)
    with pytest.raises(InputError, match="iterations"):
        latent_edit(models, image, MASK, _cfg(), iterations=0, ranker=ranker)
    with pytest.raises(InputError, match="mask"):
        latent_edit(models, image, torch.zeros(1, 1, 32, 32), _cfg(), ranker=ranker)
    with pytest.raises(InputError, match="needs a mask"):
        latent_edit(models, image, None, _cfg(), ranker=ranker)


def test_each_latent_world_is_ranked_by_the_clip_of_its_pixel_world(models):
    assert ranking_models(models).clip_name == "tiny"


def test_the_latent_world_beside_a_pixel_world():
    from blendlab.cli.parser import DEFAULT_LATENT_MODEL
    from blendlab.latent import STABLE_DIFFUSION, latent_models_for

    assert latent_models_for(bl.load_models("tiny", device="cpu")).name == "tiny-latent"
    assert latent_models_for(bl.load_models("toy", device="cpu", progress=False)).name == "toy-latent"
    assert DEFAULT_LATENT_MODEL == STABLE_DIFFUSION
