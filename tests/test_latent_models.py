"""The latent models' loader (a locally saved tiny bundle through the Hub's code path, the offline
error) and Poisson background reconstruction."""

import logging

import pytest
import torch

import blendlab.latent.models as latent_models
from blendlab.errors import InputError, WeightsNotFoundError
from blendlab.latent import LatentModels, load_latent_models, poisson_blend, reconstruct, tiny_latent_models
from blendlab.masks import box_mask


@pytest.fixture(scope="module")
def tiny():
    return tiny_latent_models(seed=0, device="cpu")


@pytest.fixture
def calls(monkeypatch):
    """Every component load, as (name, source): the spy sits on the one from_pretrained call."""
    seen = []
    real = latent_models._load_component

    def spy(name, source, dtype, **kwargs):
        seen.append((name, source))
        return real(name, source, dtype, **kwargs)

    monkeypatch.setattr(latent_models, "_load_component", spy)
    return seen


def test_a_saved_tiny_bundle_loads_through_the_hub_code_path(tiny, tmp_path, calls, caplog):
    folder = tiny.save_pretrained(tmp_path / "tiny")
    assert sorted(p.name for p in folder.iterdir()) == sorted(latent_models.COMPONENTS)
    with caplog.at_level(logging.WARNING):
        loaded = load_latent_models(folder, device="cpu", progress=False)
    assert not [r for r in caplog.records if "accelerate" in r.getMessage()]
    assert calls == [(name, str(folder)) for name in latent_models.COMPONENTS]
    assert isinstance(loaded, LatentModels) and loaded.dtype == torch.float32 and loaded.name == str(folder)
    for a, b in ((tiny.vae, loaded.vae), (tiny.unet, loaded.unet), (tiny.text.text_encoder, loaded.text.text_encoder)):
        assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))
        assert not any(p.requires_grad for p in b.parameters()) and not b.training
    assert loaded.scheduler.config.set_alpha_to_one is False and loaded.scheduler.config.steps_offset == 1
    torch.testing.assert_close(loaded.text.encode(["a red circle", ""]), tiny.text.encode(["a red circle", ""]))
    assert loaded.text.encode(["a red circle", ""]).shape == (2, 16, 32)
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    assert loaded.encode_image(x).shape == (1, 4, 8, 8)
    torch.testing.assert_close(loaded.decode_latents(loaded.encode_image(x)), tiny.decode_latents(tiny.encode_image(x)))


def test_a_hub_id_that_is_not_there_offline_is_one_clear_error(tmp_path, calls):
    with pytest.raises(WeightsNotFoundError) as info:
        load_latent_models("stabilityai/stable-diffusion-2-1-base", device="cpu", progress=False,
                           local_files_only=True, cache_dir=tmp_path / "hub")
    message = str(info.value)
    assert "'stabilityai/stable-diffusion-2-1-base'" in message and "hf download stabilityai/stable-diffusion-2-1-base" in message
    assert info.value.__cause__ is None and info.value.__suppress_context__  # no chained traceback
    assert len(message.splitlines()) == 1
    assert calls == [("vae", "stabilityai/stable-diffusion-2-1-base")]  # the same loader as the folder


def test_a_folder_that_lacks_components_is_named(tiny, tmp_path):
    with pytest.raises(WeightsNotFoundError, match="does not exist"):
        load_latent_models(tmp_path / "nowhere", device="cpu", progress=False)
    tiny.vae.save_pretrained(tmp_path / "half" / "vae")
    with pytest.raises(WeightsNotFoundError, match="lacks unet/config.json, scheduler/scheduler_config.json"):
        load_latent_models(tmp_path / "half", device="cpu", progress=False)


def _laplacian(x):
    """The 5-point Laplacian of (B, C, H, W) at the interior pixels (B, C, H−2, W−2)."""
    return (4 * x[..., 1:-1, 1:-1] - x[..., :-2, 1:-1] - x[..., 2:, 1:-1] - x[..., 1:-1, :-2] - x[..., 1:-1, 2:])


def test_poisson_keeps_the_outside_and_the_edits_gradients_inside():
    g = torch.Generator().manual_seed(0)
    source = torch.rand(1, 3, 24, 24, generator=g) * 2 - 1
    decoded = torch.rand(2, 3, 24, 24, generator=g) * 2 - 1
    mask = box_mask(24, (0.25, 0.25, 0.75, 0.7))
    before = decoded.clone(), source.clone(), mask.clone()
    out = poisson_blend(decoded, source, mask)
    outside = (mask == 0).expand_as(out)
    assert torch.equal(out[outside], source.expand_as(out)[outside])
    inner = mask[..., 1:-1, 1:-1].bool().expand(2, 3, -1, -1)  # the Poisson equation holds in the mask
    torch.testing.assert_close(_laplacian(out.double())[inner], _laplacian(decoded.double())[inner],
                               atol=1e-4, rtol=0)
    for a, b in zip(before, (decoded, source, mask)):
        assert torch.equal(a, b)


def test_poisson_removes_a_colour_shift_that_pasting_leaves_as_a_seam():
    source = torch.linspace(-0.8, 0.8, 20).expand(1, 3, 20, 20).clone()
    decoded = (source + 0.3).expand(2, -1, -1, -1)  # the edit: the source, brighter (a VAE colour drift)
    mask = box_mask(20, (0.3, 0.3, 0.7, 0.7))
    torch.testing.assert_close(poisson_blend(decoded, source, mask), source.expand(2, -1, -1, -1),
                               atol=1e-5, rtol=0)
    pasted = reconstruct(decoded, source, mask, "pixel")
    assert float((pasted - source).abs().max()) == pytest.approx(0.3, abs=1e-6)


def test_poisson_per_sample_masks_touching_the_border_and_full_or_empty_masks():
    g = torch.Generator().manual_seed(2)
    source = torch.rand(1, 3, 16, 16, generator=g) * 2 - 1
    decoded = torch.rand(3, 3, 16, 16, generator=g) * 2 - 1
    masks = torch.stack([box_mask(16, (0.0, 0.0, 0.5, 0.5))[0], torch.zeros(1, 16, 16), torch.ones(1, 16, 16)])
    out = poisson_blend(decoded, source, masks)
    assert torch.equal(out[1], source[0]) and torch.equal(out[2], decoded[2])
    corner = masks[0, 0].bool()
    assert torch.equal(out[0][:, ~corner], source[0][:, ~corner])
    one = poisson_blend(decoded[:1], source, masks[:1])  # a mask of its own gives the same answer
    torch.testing.assert_close(one[0], out[0], atol=1e-6, rtol=0)
    with pytest.raises(InputError, match="same height and width"):
        poisson_blend(decoded, source, box_mask(8, (0.2, 0.2, 0.8, 0.8)))
    with pytest.raises(InputError, match="reconstruction must be"):
        reconstruct(decoded, source, masks, "blur")
    with pytest.raises(InputError, match="pass models="):
        reconstruct(decoded, source, masks, "optimization")
