"""CLIP's input size differs from the UNet's image size on the real presets (UNet 256, ViT-B/16 224):
the guidance pools its views to CLIP's size, the ranking and the text renderings resize to it. The
tiny presets use 32 for both, so these paths would go untested; here they run where the sizes
differ: the toy preset (UNet 32, CLIP 28) and the tiny UNet with tiny CLIPs of input 24 (smaller,
as on the real presets) and 48 (larger), loaded from a state dict through ``clip_path``, the code
path the official ViT-B-16.pt takes."""

import pytest
import torch

import blendlab as bl
from blendlab import ranking
from blendlab.presets import TINY_CLIP

CLIP_SIZES = ["toy", 24, 48]


def _tiny_with_clip(resolution: int, folder) -> bl.Models:
    from clip.model import CLIP

    with torch.random.fork_rng():
        torch.manual_seed(resolution)
        clip_model = CLIP(**dict(TINY_CLIP, image_resolution=resolution)).float()
    path = folder / f"tiny_clip_{resolution}.pt"
    torch.save(clip_model.state_dict(), path)
    return bl.load_models("tiny", device="cpu", clip_path=path)


@pytest.fixture(scope="module", params=CLIP_SIZES, ids=lambda p: f"clip-{p}")
def models(request, tmp_path_factory):
    if request.param == "toy":
        return request.getfixturevalue("toy")
    return _tiny_with_clip(request.param, tmp_path_factory.mktemp("clip"))


def test_clip_and_unet_sizes_differ(models):
    assert models.image_size == 32 and models.clip_size != models.image_size
    sampler = bl.BlendedSampler(models, bl.sample_image(size=32), bl.box_mask(32, (0.2, 0.2, 0.8, 0.8)),
                                bl.EditConfig(prompt="a red circle", aug_num=3))
    views = sampler.loss.augment(torch.zeros(2, 3, 32, 32))  # what the guidance hands CLIP
    assert views.shape == (3 * 2, 3, models.clip_size, models.clip_size)


def test_guided_pruned_edit_and_every_ranking_are_finite(models):
    image = bl.sample_image("shapes", size=models.image_size)
    mask = bl.box_mask(models.image_size, (0.25, 0.25, 0.75, 0.75))
    cfg = bl.EditConfig(prompt="a red circle", timestep_respacing="10", skip_timesteps=4, batch_size=4,
                        iterations_num=1, aug_num=3, seed=3, prune_at=0.5, keep=2, anti_typography_lambda=100.0)
    states = []
    result = bl.edit(models, image, mask, cfg, [states.append], progress=False)
    assert result.images.shape == (2, 3, 32, 32) and torch.isfinite(result.images).all()
    assert torch.isfinite(result.distances).all()
    assert all(s.losses.keys() >= {"clip", "range", "typography"} for s in states)
    assert all(torch.isfinite(torch.tensor(list(s.losses.values()))).all() for s in states)
    assert all(torch.isfinite(s.grad).all() and s.grad.abs().sum() > 0 for s in states)
    pruned = next(s for s in states if s.kept is not None)
    assert torch.isfinite(pruned.prune_scores).all()
    table = ranking.compare(result, metrics=("masked_clip", "whole_clip", "psnr", "textness"))
    for metric in ("masked_clip", "whole_clip", "textness"):
        assert all(torch.isfinite(torch.tensor(row[metric])) for row in table), metric
    assert all(row["psnr"] > 0 for row in table)  # infinite where the background is the input's
