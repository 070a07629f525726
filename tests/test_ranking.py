"""Ranking variants over a real tiny edit: each orders the samples by its own metric."""

import dataclasses
import io
import math

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

import blendlab as bl
from blendlab import ranking
from blendlab import typography as ty
from blendlab.guidance import encode_text, masked_clip_distance


@pytest.fixture(scope="module")
def result(tiny):
    image = bl.sample_image("grace_hopper", size=tiny.image_size)
    mask = bl.box_mask(tiny.image_size, (0.25, 0.25, 0.75, 0.75))
    cfg = bl.EditConfig(prompt="rubber toy", timestep_respacing="6", skip_timesteps=3, batch_size=4,
                        iterations_num=1, aug_num=2, seed=11)
    return bl.edit(tiny, image, mask, cfg, progress=False)


def with_background_noise(result, sigmas, seed=0):
    """A copy of ``result`` whose sample i has Gaussian noise of std sigmas[i] outside the mask."""
    g = torch.Generator().manual_seed(seed)
    noise = torch.randn(result.images.shape, generator=g) * torch.tensor(sigmas).view(-1, 1, 1, 1)
    images = (result.images + noise * (1 - result.mask)).clamp(-1, 1)
    return dataclasses.replace(result, images=images)


def pixels(im):
    return np.asarray(im)


@pytest.mark.parametrize("metric", sorted(ranking.METRICS))
def test_each_metric_orders_samples_by_its_score(result, metric):
    before = result.images.clone()
    scores = ranking.score(result, metric)
    _, higher = ranking.METRICS[metric]
    assert scores.shape == (4,) and scores.dtype == torch.float32
    assert not torch.isnan(scores).any()
    ranked = ranking.rank_by(result, metric)
    assert len(ranked) == 4
    got = [s for _, s in ranked]
    assert got == sorted(got, reverse=higher)
    order = ranking.order(result, metric)
    assert sorted(order) == [0, 1, 2, 3]
    for (im, s), i in zip(ranked, order):
        assert s == pytest.approx(float(scores[i]))
        assert np.array_equal(pixels(im), pixels(bl.to_pil(result.images[i])))
    assert torch.equal(result.images, before)  # ranking never modifies the result


def test_masked_clip_is_the_edits_own_ranking(result):
    scores = ranking.score(result, "masked_clip")
    assert torch.allclose(scores, result.distances, atol=1e-6)
    assert ranking.order(result, "masked_clip") == result.order
    via_method = result.rank_by("masked_clip")
    assert [s for _, s in via_method] == [s for _, s in ranking.rank_by(result, "masked_clip")]


def test_whole_image_clip_distance(result, tiny):
    whole = ranking.score(result, "whole_clip")
    text = encode_text(tiny.clip, "rubber toy")
    assert torch.allclose(whole, masked_clip_distance(tiny.clip, result.images, text, None), atol=1e-6)
    assert not torch.allclose(whole, ranking.score(result, "masked_clip"), atol=1e-4)
    full = dataclasses.replace(result, mask=torch.ones_like(result.mask))
    assert torch.allclose(ranking.score(full, "masked_clip"), whole, atol=1e-6)


def test_psnr_is_infinite_for_a_kept_background_and_falls_with_noise(result):
    assert torch.isinf(ranking.score(result, "psnr")).all()  # enforce_background pasted the input
    inside = dataclasses.replace(result, images=(result.images + 0.3 * result.mask).clamp(-1, 1))
    assert torch.isinf(ranking.score(inside, "psnr")).all()  # changes inside the mask do not count
    noisy = with_background_noise(result, [0.2, 0.01, 0.4, 0.05])
    scores = ranking.score(noisy, "psnr")
    assert torch.isfinite(scores).all()
    assert ranking.order(noisy, "psnr") == [1, 3, 0, 2]  # least background noise first
    levels = ranking.score(with_background_noise(result, [0.01, 0.03, 0.1, 0.3]), "psnr")
    assert torch.all(levels[:-1] > levels[1:])
    expected = 10 * math.log10(1 / float(((noisy.images[0] - result.init_image[0]) / 2).pow(2)
                                         .mul(1 - result.mask[0]).sum() / (3 * (1 - result.mask).sum())))
    assert float(scores[0]) == pytest.approx(expected, rel=1e-4)


def test_psnr_uses_each_samples_own_mask(result):
    masks = torch.zeros(4, 1, 32, 32)
    masks[0, :, :16] = 1  # sample 0 may change the top half
    masks[1:, :, 16:] = 1
    images = result.init_image.repeat(4, 1, 1, 1)
    images[:, :, :16] = images[:, :, :16].mul(0.5)  # every sample changed its top half
    fake = dataclasses.replace(result, images=images, mask=masks,
                               sample_ids=[(0, 0), (0, 1), (0, 2), (0, 3)])
    scores = ranking.score(fake, "psnr")
    assert math.isinf(scores[0]) and torch.isfinite(scores[1:]).all()


def test_lpips_mechanics(result):
    clean = ranking.score(result, "lpips")
    assert torch.allclose(clean, torch.zeros(4), atol=1e-6)  # identical backgrounds
    noisy = ranking.score(with_background_noise(result, [0.0, 0.3, 0.0, 0.6]), "lpips")
    assert noisy[0] == pytest.approx(0, abs=1e-6) and noisy[1] > 1e-4 and noisy[3] > 1e-4


def test_textness_metric_is_typographys_textness_of_the_masked_region(result, tiny):
    scores = ranking.score(result, "textness")
    assert torch.allclose(scores, ty.textness(tiny.clip, result.images, "rubber toy", result.mask), atol=1e-7)
    # a sample that *is* the prompt written out, inside the mask, is scored on that region only
    card = ty.text_card("rubber", 16)
    images = result.images.clone()
    images[0, :, 8:24, 8:24] = card[0]
    written = dataclasses.replace(result, images=images)
    framed = torch.zeros_like(images[:1])  # the region alone, on black, in the whole frame
    framed[0, :, 8:24, 8:24] = card[0]
    assert float(ranking.score(written, "textness")[0]) == pytest.approx(
        float(ty.textness(tiny.clip, framed, "rubber toy")[0]), abs=2e-7)  # tiny CLIP: scores ~1e-4
    assert float(ranking.score(written, "textness")[0]) != pytest.approx(float(scores[0]), abs=2e-6)


def test_compare_table_shows_ranks_under_each_metric(result):
    table = ranking.compare(result, metrics=["masked_clip", "whole_clip", "psnr", "textness"])
    assert len(table) == 4 and [row["sample"] for row in table] == [0, 1, 2, 3]
    for metric in table.metrics:
        ranks = [row[f"{metric} rank"] for row in table]
        order = ranking.order(result, metric)
        scores = [row[metric] for row in table]
        if len(set(scores)) == len(scores):  # no ties: the ranks are the order
            assert [order.index(i) + 1 for i in range(4)] == ranks
    assert all(row["psnr rank"] == 1 for row in table)  # all infinite: a four-way tie
    for row in table:
        ranks = [row[f"{m} rank"] for m in table.metrics]
        assert row["spread"] == max(ranks) - min(ranks)
    assert table[0]["name"] == result.sample_name(0)
    text = str(table)
    assert "masked_clip rank" in text and "spread" in text


def test_plot_rank_disagreement(result):
    fig = ranking.plot_rank_disagreement(result, metrics=["masked_clip", "whole_clip", "textness"])
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 1 + 4  # the chart plus one thumbnail per sample
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    assert buf.getvalue()[:4] == b"\x89PNG"


def test_bad_inputs(result):
    with pytest.raises(bl.InputError, match="unknown ranking metric 'sharpness'.*masked_clip"):
        ranking.score(result, "sharpness")
    with pytest.raises(bl.InputError, match="unknown ranking metric"):
        ranking.rank_by(result, "sharpness")
    with pytest.raises(bl.InputError, match="unknown ranking metric"):
        ranking.compare(result, metrics=["masked_clip", "sharpness"])
    with pytest.raises(bl.InputError, match="metrics is empty"):
        ranking.compare(result, metrics=[])
    orphan = dataclasses.replace(result, models=None)
    with pytest.raises(bl.InputError, match="pass models="):
        ranking.score(orphan, "masked_clip")
    assert torch.allclose(ranking.score(orphan, "masked_clip", models=result.models), result.distances, atol=1e-6)
    full = dataclasses.replace(result, mask=torch.ones_like(result.mask))
    with pytest.raises(bl.InputError, match="no background to compare"):
        ranking.score(full, "psnr")
    unprompted = dataclasses.replace(result, cfg=result.cfg.replace(prompt=""))
    with pytest.raises(bl.InputError, match="prompt is empty"):
        ranking.score(unprompted, "textness")


def test_masked_clip_follows_reference_ranking(result, tiny):
    reference = dataclasses.replace(result, cfg=result.cfg.replace(reference_ranking=True))
    text = encode_text(tiny.clip, result.cfg.prompt)
    expected = masked_clip_distance(tiny.clip, result.images, text, result.sample_masks, normalize=False)
    assert torch.allclose(ranking.score(reference, "masked_clip"), expected, atol=1e-6)
    assert not torch.allclose(expected, result.distances, atol=1e-3)
    assert torch.allclose(ranking.score(reference, "whole_clip"), ranking.score(result, "whole_clip"))
