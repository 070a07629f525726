"""blendlab.viz: every figure draws exactly the data passed, schedules mark the kept steps, measures."""

import dataclasses
import inspect
import io
import os
import json
import re
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from matplotlib.text import Text
from PIL import Image

import blendlab as bl
from blendlab import viz
from blendlab.guidance import ExtendingAugmentations
from blendlab.masks import erode_mask
from blendlab.sampler import create_diffusion
from blendlab.trajectory import step_distances

from _fast import fast_cfg


def rgb(x):
    """What a figure should draw for one image tensor in [-1, 1]."""
    return x.float().add(1).div(2).clamp(0, 1).permute(1, 2, 0).numpy()


def images_of(fig, axes=None):
    """AxesImage arrays, axis by axis (one image per axes expected; default every axes)."""
    out = []
    for ax in fig.axes if axes is None else axes:
        ims = ax.get_images()
        assert len(ims) == 1, "each panel draws exactly one image"
        out.append(np.asarray(ims[0].get_array()))
    return out


def only(rec, *names):
    """A copy of a recording that kept only some fields."""
    copy = bl.Recorder(fields=names)
    copy.steps = [dataclasses.replace(s, fields={k: s.fields[k] for k in names}) for s in rec.steps]
    return copy


@pytest.fixture(scope="module")
def run(tiny):
    """One small recorded edit: (result, recorder, cfg)."""
    image = bl.sample_image("grace_hopper", size=tiny.image_size)
    mask = bl.box_mask(tiny.image_size, (0.25, 0.25, 0.75, 0.75))
    cfg = fast_cfg(timestep_respacing="12", skip_timesteps=4)  # 8 steps, batch 2
    rec = bl.Recorder(dtype=torch.float32)
    result = bl.edit(tiny, image, mask, cfg, hooks=[rec], progress=False)
    return result, rec, cfg


def test_importable_without_display_and_without_pyplot():
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "MPLBACKEND", "WAYLAND_DISPLAY")}
    code = ("import sys, blendlab.viz as v; f = v.image_grid(__import__('torch').zeros(2, 3, 4, 4)); "
            "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot imported'; "
            "assert f._repr_png_().startswith(b'\\x89PNG')")
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_image_grid_draws_exactly_the_images(image):
    batch = torch.cat([image, -image, image * 3])  # the third is out of range: clamped when drawn
    before = batch.clone()
    fig = viz.image_grid(batch, titles=["a", "b", "c"], ncols=2)
    assert isinstance(fig, Figure) and len(fig.axes) == 3
    for arr, x in zip(images_of(fig), batch):
        np.testing.assert_array_equal(arr, rgb(x))
    assert images_of(fig)[2].max() <= 1 and images_of(fig)[2].min() >= 0
    assert [ax.get_title() for ax in fig.axes] == ["a", "b", "c"]
    assert torch.equal(batch, before)  # input untouched
    png = fig._repr_png_()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    # mixed list: a PIL image and tensors of different sizes
    pil = Image.new("RGB", (5, 3), (255, 0, 0))
    fig = viz.image_grid([image[0], pil, torch.zeros(1, 3, 8, 16)])
    arrs = images_of(fig)
    assert arrs[1].shape == (3, 5, 3) and np.allclose(arrs[1][..., 0], 1) and np.allclose(arrs[1][..., 1:], 0)
    assert arrs[2].shape == (8, 16, 3) and np.allclose(arrs[2], 0.5)


def test_image_grid_bad_input_errors_are_clear(image):
    with pytest.raises(bl.InputError, match="2 titles for 1 images"):
        viz.image_grid(image, titles=["a", "b"])
    with pytest.raises(bl.InputError, match=r"\(3, H, W\)"):
        viz.image_grid([torch.zeros(4, 8, 8)])
    with pytest.raises(bl.InputError, match="cannot draw a str"):
        viz.image_grid(["photo.png"])
    with pytest.raises(bl.InputError, match="at least one image"):
        viz.image_grid([])


def test_mask_overlay_tints_inside_and_outlines(image, mask):
    fig = viz.mask_overlay(image, mask, color=(1.0, 0.0, 0.0), alpha=0.5)
    assert len(fig.axes) == 1
    (arr,) = images_of(fig)
    base = rgb(image[0])
    m = mask[0, 0].numpy().astype(bool)
    np.testing.assert_allclose(arr[~m], base[~m])
    np.testing.assert_allclose(arr[m], base[m] * 0.5 + np.array([0.5, 0, 0], np.float32), atol=1e-6)
    assert len(fig.axes[0].collections) >= 1  # the contour outline
    with pytest.raises(bl.InputError, match="same size"):
        viz.mask_overlay(image, bl.box_mask(16, (0.1, 0.1, 0.5, 0.5)))


def test_step_strip_draws_the_recorded_field(run):
    _, rec, cfg = run
    fig = viz.step_strip(rec, field="pred_x0", sample=1, max_steps=None)
    assert len(fig.axes) == len(rec.steps) == cfg.num_steps
    for arr, step in zip(images_of(fig), rec.steps):
        np.testing.assert_array_equal(arr, rgb(step.fields["pred_x0"][1]))
    # thinned evenly, keeping the first and the last step
    fig = viz.step_strip(rec, field="x_t", max_steps=3)
    arrs = images_of(fig)
    assert len(arrs) == 3
    np.testing.assert_array_equal(arrs[0], rgb(rec.steps[0].fields["x_t"][0]))
    np.testing.assert_array_equal(arrs[-1], rgb(rec.steps[-1].fields["x_t"][0]))
    # gradients are heatmaps of their per-pixel norm; a dict gives one row per recorder
    fig = viz.step_strip({"a": rec, "b": rec}, field="grad", max_steps=4)
    arrs = images_of(fig)
    assert len(arrs) == 8
    np.testing.assert_allclose(arrs[-1], rec.steps[-1].fields["grad"][0].norm(dim=0).numpy(), rtol=1e-6)
    assert fig.axes[0].get_ylabel() == "a" and fig.axes[4].get_ylabel() == "b"


def test_step_strip_errors(run):
    _, rec, _ = run
    with pytest.raises(bl.InputError, match="has no steps"):
        viz.step_strip(bl.Recorder())
    with pytest.raises(bl.InputError, match="'fg' was not recorded"):
        viz.step_strip(only(rec, "x_t"), field="fg")
    with pytest.raises(bl.InputError, match="sample 5 out of range"):
        viz.step_strip(rec, sample=5)
    with pytest.raises(bl.InputError, match="iteration 3 was not recorded"):
        viz.step_strip(rec, iteration=3)


def test_step_panels_show_the_six_tensors_of_a_live_step(tiny, image, mask):
    sampler = bl.BlendedSampler(tiny, image, mask, fast_cfg())
    state = next(iter(sampler.steps()))
    fig = viz.step_panels(state, sample=1)
    assert len(fig.axes) == 6
    arrs = images_of(fig)
    for arr, name in zip(arrs, ("x_t", "pred_x0", "grad", "fg", "bg", "x_prev")):
        value = getattr(state, name)[1]
        expected = value.norm(dim=0).numpy() if name == "grad" else rgb(value)
        np.testing.assert_allclose(arr, expected, rtol=1e-6)
    assert len(fig.axes[-1].collections) >= 1  # mask outline on x_{t-1}
    assert "max" in fig.axes[2].get_title()


def test_step_panels_from_a_recording(run):
    _, rec, _ = run
    fig = viz.step_panels(rec.steps[-1], mask=rec.mask)
    np.testing.assert_array_equal(images_of(fig)[5], rgb(rec.steps[-1].fields["x_prev"][0]))
    with pytest.raises(bl.InputError, match="'grad' was not recorded"):
        viz.step_panels(only(rec, "x_t", "pred_x0").steps[0])


def test_unguided_step_panel_says_zero(tiny, image, mask):
    state = next(iter(bl.BlendedSampler(tiny, image, mask, fast_cfg(prompt="")).steps()))
    fig = viz.step_panels(state)
    assert "zero" in fig.axes[2].get_title()


@pytest.mark.parametrize("respacing,skip", [("20", 10), ("12", 0), ("ddim10", 3), ("100", 25)])
def test_noise_schedule_marks_exactly_the_kept_steps(tiny, image, mask, respacing, skip):
    cfg = fast_cfg(timestep_respacing=respacing, skip_timesteps=skip)
    sampler = bl.BlendedSampler(tiny, image, mask, cfg)
    visited = [sampler.diffusion.timestep_map[i] for i in sampler.timesteps]  # what the loop runs
    fig = viz.noise_schedule(tiny, cfg)
    assert len(fig.axes) == 2
    full = create_diffusion(tiny, "")
    for ax, curve in zip(fig.axes, (full.alphas_cumprod, full.alphas_cumprod / (1 - full.alphas_cumprod))):
        lines = {line.get_gid(): line for line in ax.get_lines()}
        kept = lines["kept"]
        assert list(kept.get_xdata()) == visited and len(visited) == cfg.num_steps
        np.testing.assert_allclose(kept.get_ydata(), curve[visited])
        if skip:
            skipped = list(lines["skipped"].get_xdata())
            assert len(skipped) == skip and min(skipped) > max(visited)
        else:
            assert "skipped" not in lines
        assert ax.get_yscale() == "log"
    # a sampler carries its own cfg; keywords override it
    fig = viz.noise_schedule(sampler, skip_timesteps=0)
    kept = [l for l in fig.axes[0].get_lines() if l.get_gid() == "kept"][0]
    assert len(kept.get_xdata()) == cfg.num_steps_total()


def test_noise_schedule_errors(tiny):
    with pytest.raises(bl.InputError, match="skip_timesteps=20"):
        viz.noise_schedule(tiny, timestep_respacing="20", skip_timesteps=20)
    with pytest.raises(bl.InputError, match="bl.load_models"):
        viz.noise_schedule("tiny")


def test_noised_inputs_are_q_sample_at_every_kept_step(tiny, image):
    cfg = fast_cfg(timestep_respacing="20", skip_timesteps=10)
    fig = viz.noised_inputs(tiny, image, cfg, seed=3)
    arrs = images_of(fig)
    assert len(arrs) == cfg.num_steps == 10
    spaced = create_diffusion(tiny, "20")
    eps = torch.randn(image.shape, generator=torch.Generator().manual_seed(3))
    for arr, i in zip(arrs, range(9, -1, -1)):  # first kept step (most noise) first
        a = float(spaced.alphas_cumprod[i])
        expected = a**0.5 * image[0] + (1 - a) ** 0.5 * eps[0]
        np.testing.assert_allclose(arr, rgb(expected), atol=1e-5)
        assert f"t={spaced.timestep_map[i]}" in fig.axes[9 - i].get_title()
    assert len(viz.noised_inputs(tiny, image, cfg, max_panels=4).axes) == 4
    with pytest.raises(bl.InputError, match=r"\(1, 3, H, W\)"):
        viz.noised_inputs(tiny, image[0], cfg)


def test_loss_curves_plot_the_recorded_losses(run):
    _, rec, _ = run
    fig = viz.loss_curves(rec)
    (ax,) = fig.axes
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert set(lines) == {"clip", "range"}
    # per sample by default: the summed terms divided by the samples of the step
    assert list(lines["clip"].get_ydata()) == [s.losses["clip"] / 2 for s in rec.steps]
    assert list(lines["range"].get_ydata()) == [s.losses["range"] / 2 for s in rec.steps]
    assert list(lines["clip"].get_xdata()) == [s.index for s in rec.steps] == list(range(8))  # step k from 0
    assert "per sample" in ax.get_ylabel() and "per sample" in ax.get_title() and "from 0" in ax.get_xlabel()
    sums = viz.loss_curves(rec, term="clip", per_sample=False, ylabel="CLIP loss")
    assert list(sums.axes[0].get_lines()[0].get_ydata()) == [s.losses["clip"] for s in rec.steps]
    assert "sum over the batch" in sums.axes[0].get_ylabel()  # kept even under a ylabel of one's own
    # a batch pruned on the way: the sum drops with the rows, the per-sample mean does not
    pruned = bl.Recorder(fields=("x_t",))
    pruned.steps = [dataclasses.replace(s, sample_ids=(0, 1) if s.index < 4 else (1,), losses={"clip": 2.0}
                                        if s.index < 4 else {"clip": 1.0}) for s in rec.steps]
    assert list(viz.loss_curves(pruned).axes[0].get_lines()[0].get_ydata()) == [1.0] * 8
    fig = viz.loss_curves({"run": rec, "list": [3.0, 2.0, 1.0]}, term="clip", log=True)
    labels = [line.get_label() for line in fig.axes[0].get_lines()]
    assert labels == ["run", "list"] and fig.axes[0].get_yscale() == "log"
    assert list(fig.axes[0].get_lines()[1].get_ydata()) == [3.0, 2.0, 1.0]
    with pytest.raises(bl.InputError, match="'lpips' was not recorded"):
        viz.loss_curves(rec, term="lpips")


@pytest.fixture(scope="module")
def other_runs(tiny, run):
    """The run without blending (same seed), and one with half as many steps."""
    _, _, cfg = run
    image = bl.sample_image("grace_hopper", size=tiny.image_size)
    mask = bl.box_mask(tiny.image_size, (0.25, 0.25, 0.75, 0.75))
    out = {}
    for name, c in [("no blend", cfg.replace(local_clip_guided_diffusion=True)),
                    ("coarse", cfg.replace(timestep_respacing="6", skip_timesteps=2))]:
        out[name] = bl.Recorder(dtype=torch.float32)
        bl.edit(tiny, image, mask, c, hooks=[out[name]], progress=False)
    return out


def test_compare_strips_draws_both_runs_at_the_paired_steps(run, other_runs):
    _, rec, _ = run
    other = other_runs["no blend"]
    fig = viz.compare_strips(rec, other, field="x_prev", sample=1, labels=("blend", "no blend"), max_steps=4)
    arrs = images_of(fig)
    assert len(arrs) == 8  # two rows of four
    picked = [0, 2, 5, 7]  # evenly spaced over 8 steps, the first and the last always
    for c, k in enumerate(picked):
        np.testing.assert_array_equal(arrs[c], rgb(rec.steps[k].fields["x_prev"][1]))
        np.testing.assert_array_equal(arrs[4 + c], rgb(other.steps[k].fields["x_prev"][1]))
        assert fig.axes[c].get_title() == f"step {k}/8 · t={rec.steps[k].timestep}"
    assert fig.axes[0].get_ylabel() == "blend" and fig.axes[4].get_ylabel() == "no blend"
    # with a difference row on one colour scale and a colour bar
    fig = viz.compare_strips(rec, other, field="x_prev", max_steps=4, diff=True)
    diffs = [np.asarray(ax.get_images()[0].get_array()) for ax in fig.axes[8:12]]
    for d, k in zip(diffs, picked):
        want = (rec.steps[k].fields["x_prev"][0] - other.steps[k].fields["x_prev"][0]).abs().mean(0).numpy()
        np.testing.assert_allclose(d, want, rtol=1e-6)
    assert len({ax.get_images()[0].get_clim() for ax in fig.axes[8:12]}) == 1
    assert len(fig.axes) == 13  # 12 panels and the colour bar


def test_compare_strips_with_itself_and_across_step_counts(run, other_runs):
    _, rec, _ = run
    fig = viz.compare_strips(rec, rec, diff=True, max_steps=3)
    assert all(float(np.max(ax.get_images()[0].get_array())) == 0 for ax in fig.axes[6:9])
    coarse = other_runs["coarse"]
    fig = viz.compare_strips(rec, coarse, field="pred_x0", max_steps=None)
    titles = [ax.get_title() for ax in fig.axes]
    assert len(titles) == 16 and "nearest timestep" in fig.get_suptitle()
    for k, s in enumerate(rec.steps):
        nearest = min(coarse.steps, key=lambda c: abs(c.timestep - s.timestep))
        assert titles[8 + k] == f"step {nearest.index}/4 · t={nearest.timestep}"
    with pytest.raises(bl.InputError, match="two names"):
        viz.compare_strips(rec, rec, labels=("a",))


def test_loss_curves_of_several_runs_on_one_axis_by_step_or_timestep(run, other_runs):
    _, rec, _ = run
    coarse = other_runs["coarse"]
    fig = viz.loss_curves({"fine": rec, "coarse": coarse}, term="clip", x="t")
    (ax,) = fig.axes
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert list(lines["fine"].get_xdata()) == [s.timestep for s in rec.steps]
    assert list(lines["coarse"].get_xdata()) == [s.timestep for s in coarse.steps]
    assert ax.xaxis_inverted() and ax.get_xlabel() == "timestep t"
    d = step_distances(rec, other_runs["no blend"], "x_t")
    fig = viz.loss_curves({"|a − b| of x_t": d}, ylabel="mean |a − b|")
    line = fig.axes[0].get_lines()[0]
    assert list(line.get_xdata()) == list(range(8)) and list(line.get_ydata()) == d.mean
    with pytest.raises(bl.InputError, match='use x="step"'):
        viz.loss_curves({"list": [1.0, 2.0]}, x="t")


def test_loss_curves_of_an_unguided_run_explain(tiny, image, mask):
    rec = bl.Recorder(fields=("x_t",))
    bl.edit(tiny, image, mask, fast_cfg(prompt="", clip_guidance_lambda=0), hooks=[rec], progress=False)
    with pytest.raises(bl.InputError, match="unguided"):
        viz.loss_curves(rec)


def test_ranked_gallery_is_best_first_with_distances(run):
    result, _, _ = run
    fig = viz.ranked_gallery(result)
    arrs = images_of(fig)
    assert len(arrs) == len(result.images)
    dists = sorted(float(d) for d in result.distances)
    for k, (arr, i) in enumerate(zip(arrs, result.order)):
        np.testing.assert_array_equal(arr, rgb(result.images[i]))
        assert fig.axes[k].get_title() == f"#{k + 1}  d = {dists[k]:.4f}"
    # the .ranked list of (PIL, distance) works too, and n limits
    fig = viz.ranked_gallery(result.ranked, n=1)
    assert len(fig.axes) == 1
    with pytest.raises(bl.InputError, match="EditResult"):
        viz.ranked_gallery(result.images)


def test_augmentation_views_are_what_clip_sees(image, mask):
    fig = viz.augmentation_views(image, mask, size=16, aug_num=5, seed=11)
    arrs = images_of(fig)
    assert len(arrs) == 5
    expected = ExtendingAugmentations(16, 5)(image * mask, seed=11)
    for arr, view in zip(arrs, expected):
        np.testing.assert_allclose(arr, rgb(view), atol=1e-6)
    np.testing.assert_allclose(arrs[0], rgb(F.adaptive_avg_pool2d(image * mask, 16)[0]), atol=1e-6)
    assert not np.allclose(arrs[1], arrs[0])  # warped
    again = images_of(viz.augmentation_views(image, mask, size=16, aug_num=5, seed=11))
    assert all(np.array_equal(a, b) for a, b in zip(arrs, again))  # same seed, same views
    assert len(viz.augmentation_views(image, size=16, aug_num=1).axes) == 1
    with pytest.raises(bl.InputError, match="mask is"):
        viz.augmentation_views(image, bl.box_mask(8, (0, 0, 0.5, 0.5)), size=16)
    with pytest.raises(ValueError, match="aug_num must be at least 1"):
        viz.augmentation_views(image, size=16, aug_num=0)


def test_augmentation_views_are_titled_by_the_warps_drawn_for_them(image, mask):
    """A title says what its view is: a view left unwarped is not called warped, and one warped is."""
    fig = viz.augmentation_views(image, mask, size=16, aug_num=8, seed=0)
    titles = [ax.get_title().split("\n")[1] for ax in fig.axes]
    pooled = images_of(fig)[0]
    assert titles[0] == "pooled only"
    assert set(titles[1:]) <= {"affine + perspective", "affine", "perspective", "no warp drawn"}
    for title, arr in zip(titles[1:], images_of(fig)[1:]):
        assert (title == "no warp drawn") == np.allclose(arr, pooled, atol=1e-6), title
    kinds = {t for seed in range(6) for t in [ax.get_title().split("\n")[1] for ax in
                                              viz.augmentation_views(image, mask, size=16, aug_num=8, seed=seed).axes]}
    assert {"affine", "perspective", "affine + perspective"} <= kinds  # each warp is drawn on its own


def test_gradient_maps_are_norm_heatmaps():
    g = torch.zeros(2, 3, 4, 4)
    g[0, 0, 1, 2] = 3.0
    g[0, 1, 1, 2] = 4.0
    g[1] = -1.0
    fig = viz.gradient_maps(g, titles=["x", "y"])
    a, b = images_of(fig, fig.axes[:2])
    assert a[1, 2] == pytest.approx(5.0) and a.sum() == pytest.approx(5.0)
    np.testing.assert_allclose(b, np.full((4, 4), 3**0.5), rtol=1e-6)
    assert fig.axes[0].get_title().startswith("x\nmax 5") and fig.axes[1].get_title() == "y\nmax 1.7"
    # by default on one scale (0 to the largest maximum) with one colour bar
    assert [ax.get_images()[0].get_clim() for ax in fig.axes[:2]] == [(0, 5.0), (0, 5.0)]
    assert len(fig.axes) == 3 and not fig.axes[2].get_images()
    # each on its own scale: one bar per panel
    own = viz.gradient_maps(g, shared_scale=False)
    clims = [ax.get_images()[0].get_clim() for ax in own.axes if ax.get_images()]
    assert clims == [(0, 5.0), (0, pytest.approx(3**0.5))] and len(own.axes) == 4
    assert len(viz.gradient_maps(g, shared_scale=False, colorbar=False).axes) == 2


def test_paste_background_and_drift(image, mask):
    gen = torch.rand(2, 3, 32, 32) * 2 - 1
    keep = gen.clone(), image.clone(), mask.clone()
    pasted = viz.paste_background(gen, image, mask)
    assert torch.equal(pasted * mask, gen * mask)
    assert torch.equal(pasted * (1 - mask), (image * (1 - mask)).expand(2, -1, -1, -1))
    assert all(torch.equal(a, b) for a, b in zip(keep, (gen, image, mask)))
    assert torch.equal(viz.background_drift(pasted, image, mask), torch.zeros(2))
    shifted = (image * 0.5 + 0.2).expand(2, -1, -1, -1)  # moved by 0.2 in [-1, 1] units = 0.1 in [0, 1]
    ref = image * 0.5
    drift = viz.background_drift(shifted, ref, mask)
    np.testing.assert_allclose(drift.numpy(), [0.01, 0.01], rtol=1e-5)
    with pytest.raises(bl.InputError, match="no background"):
        viz.background_drift(shifted, ref, torch.ones_like(mask))


def test_seam_strength_sees_a_jump_on_the_border_only():
    mask = bl.box_mask(32, (0.25, 0.25, 0.75, 0.75))
    flat = torch.zeros(1, 3, 32, 32)
    jump = mask.expand(1, 3, -1, -1) * 2 - 1  # black outside, white inside: a hard seam
    assert float(viz.seam_strength(flat, mask)[0]) == 0
    s = float(viz.seam_strength(jump, mask)[0])
    assert s > 0.2
    # changes away from the border do not move it; smoothing the border lowers it
    far = jump.clone()
    far[..., 0:3, 0:3] = 0.3
    far[..., 15:17, 15:17] = -0.5
    assert float(viz.seam_strength(far, mask)[0]) == pytest.approx(s)
    soft = F.avg_pool2d(jump, 5, stride=1, padding=2, count_include_pad=False)
    assert float(viz.seam_strength(soft, mask)[0]) < s
    # batch, widths, errors
    both = torch.cat([flat, jump])
    assert viz.seam_strength(both, mask).shape == (2,)
    assert float(viz.seam_strength(jump, mask, width=3)[0]) < s  # a wider band averages in flat pixels
    with pytest.raises(bl.InputError, match="no border"):
        viz.seam_strength(jump, torch.zeros_like(mask))
    with pytest.raises(bl.InputError, match="mask is"):
        viz.seam_strength(jump, bl.box_mask(16, (0.2, 0.2, 0.6, 0.6)))


def test_seam_comparison_figure(image, mask):
    jump = mask.expand(1, 3, -1, -1) * 2 - 1
    fig = viz.seam_comparison({"input": image, "jump": jump[0]}, mask)
    assert len(fig.axes) == 4
    top_input, bottom_input, top_jump, bottom_jump = fig.axes  # per label: image, then its gradient
    np.testing.assert_array_equal(np.asarray(top_input.get_images()[0].get_array()), rgb(image[0]))
    value = float(viz.seam_strength(jump, mask)[0])
    assert f"seam {value:.3f}" in top_jump.get_title() and value > float(viz.seam_strength(image, mask)[0])
    grad = np.asarray(bottom_jump.get_images()[0].get_array())
    ring = (bl.dilate_mask(mask, 1) - erode_mask(mask, 1))[0, 0].numpy()
    assert grad.shape == (32, 32) and grad.max() > 0 and grad[ring == 0].max() == 0  # the jump is on the border
    with pytest.raises(bl.InputError, match="dict"):
        viz.seam_comparison([image], mask)


def test_save_step_strip_writes_a_png_atomically(run, tmp_path):
    _, rec, _ = run
    path = viz.save_step_strip(rec, tmp_path / "out" / "steps.png", field="pred_x0")
    assert path == tmp_path / "out" / "steps.png"
    with Image.open(path) as im:
        im.verify()
    with Image.open(path) as im:
        assert im.format == "PNG" and im.size[0] > im.size[1] > 0
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["steps.png"]  # no temporary left behind
    with pytest.raises(bl.InputError, match="was not recorded"):
        viz.save_step_strip(rec, tmp_path / "bad.png", field="pred_x0_guided")
    assert not (tmp_path / "bad.png").exists()


def test_comparison_figure_is_source_mask_edited_titled_like_the_reference(image, mask):
    edited = -image
    fig = viz.comparison_figure(image, edited, mask, prompt="a red rose", distance=0.77314)
    assert isinstance(fig, Figure)
    assert [ax.get_title() for ax in fig.axes] == ["Source Image", "Mask", "Edited Image"]
    assert fig._suptitle.get_text() == 'Prompt: "a red rose" (0.7731)'
    source, drawn_mask, drawn_edit = images_of(fig)
    np.testing.assert_allclose(source, rgb(image[0]), atol=1e-6)
    np.testing.assert_array_equal(drawn_mask, mask[0, 0].numpy())
    np.testing.assert_allclose(drawn_edit, rgb(edited[0]), atol=1e-6)
    two = viz.comparison_figure(image, edited, prompt="x", distance="0.5000")
    assert [ax.get_title() for ax in two.axes] == ["Source Image", "Edited Image"]
    assert two._suptitle.get_text() == 'Prompt: "x" (0.5000)'
    with pytest.raises(bl.InputError, match="index a batch first"):
        viz.comparison_figure(image, torch.cat([image, image]), mask)


def test_save_comparison_figures_one_per_sample_where_the_reference_writes(run, tmp_path, monkeypatch):
    result, _, _ = run
    titles = []
    original = viz.comparison_figure

    def spy(*args, **kwargs):
        fig = original(*args, **kwargs)
        titles.append([ax.get_title() for ax in fig.axes])
        return fig

    monkeypatch.setattr(viz.results, "comparison_figure", spy)  # where save_comparison_figures finds it
    paths = viz.save_comparison_figures(result, tmp_path / "out")
    assert [p.name for p in paths] == [result.sample_name(i) for i in range(len(result.images))]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(p.name for p in paths)  # no temporaries
    for p in paths:
        with Image.open(p) as im:
            assert im.format == "PNG" and im.size[0] > 2 * im.size[1]
    assert titles == [["Source Image", "Mask", "Edited Image"]] * len(paths)
    titles.clear()
    full = dataclasses.replace(result, mask=torch.ones_like(result.mask))
    viz.save_comparison_figures(full, tmp_path / "full")  # an edit without a mask: no mask panel
    assert titles == [["Source Image", "Edited Image"]] * len(paths)


# -- one step vocabulary ------------------------------------------------------------------------
def test_step_label_counts_steps_from_zero_and_names_t():
    assert viz.step_label(9, 10, 473) == "step 9/10 · t=473"  # the last of ten steps
    assert viz.step_label(0, 10) == "step 0/10"  # a recording without timesteps
    assert viz.step_label(3, 10, 473, sep="\n") == "step 3/10\nt=473"
    for bad in (10, -1):  # a 1-based number is a bug
        with pytest.raises(bl.InputError, match="count from 0"):
            viz.step_label(bad, 10, 473)


def _t_values(text):
    """Every number written as "t=…" or "t = …" in a text."""
    return set(re.findall(r"(?<![\w$])t\s*=\s*(\d+)", text))


def test_one_label_for_one_step_in_scrubber_panels_strips_and_schedule(tiny, run):
    from blendlab.widgets import StepScrubber

    _, rec, cfg = run
    image = bl.sample_image("grace_hopper", size=tiny.image_size)
    scrubber = StepScrubber(rec)
    strip = viz.step_strip(rec, field="x_prev", max_steps=None)
    grads = viz.step_strip(rec, field="grad", max_steps=None)
    schedule = viz.noised_inputs(tiny, image, cfg)
    n = cfg.num_steps
    assert [s.index for s in rec.steps] == list(range(n)) and any(s.respaced_index != s.timestep for s in rec.steps)
    for k, step in enumerate(rec.steps):
        want = f"step {k}/{n} · t={step.timestep}"
        scrubber.show(k)
        shown = {
            "recorded step": step.label,
            "scrubber beside the slider": scrubber.step_text.value,
            "scrubber info": scrubber.info,
            "step_panels": viz.step_panels(step, mask=rec.mask).get_suptitle(),
            "x_{t-1} strip": strip.axes[k].get_title(),
            "grad strip": grads.axes[k].get_title(),
            "noised inputs": schedule.axes[k].get_title(),
        }
        assert scrubber.slider.value == k
        for where, text in shown.items():
            assert text.startswith(want), f"{where}: {text!r}"
            assert _t_values(text) == {str(step.timestep)}, f"{where} shows another t: {text!r}"
            assert "respaced" not in text and "index" not in text, where


# -- legible, honest figures -----------------------------------------------------------------------
def _rank_table(n=6):
    from blendlab.table import Table

    metrics = ["masked_clip", "whole_clip", "psnr"]
    rows = [{"sample": i, **{f"{m} rank": (i + j) % n + 1 for j, m in enumerate(metrics)}} for i in range(n)]
    for row in rows:
        ranks = [row[f"{m} rank"] for m in metrics]
        row["spread"] = max(ranks) - min(ranks)
    table = Table(rows)
    table.metrics = metrics
    return table


def _pareto_summary(n=15):
    return {f"mode-{k}": {"label": f"a long mode name, number {k} of {n} modes",
                          "cpu_s_per_set": 2.0 + k, "best_success": 0.2 + 0.02 * k, "best_success_ci": (0.1, 0.5),
                          "all_success": 0.1 + 0.02 * k, "all_success_ci": (0.05, 0.4), "pareto": k % 3 == 0}
            for k in range(n)}


def _figure_cases(tiny, run, other_runs):
    """For every figure function of blendlab.viz: calls at its default size on long inputs (many
    panels, long titles), so wrapping and small text would show."""
    from blendlab.typography import Sweep

    result, rec, cfg = run
    other = other_runs["no blend"]
    image = bl.sample_image("grace_hopper", size=tiny.image_size)
    mask = bl.box_mask(tiny.image_size, (0.25, 0.25, 0.75, 0.75))
    many = torch.rand(12, 3, 16, 16) * 2 - 1
    labels = ["a photo of a dog", "a photo of a cat", "the word dog", "a red circle"]
    viz_cases = {
        "image_grid": lambda: viz.image_grid(many, titles=[f"image number {k}" for k in range(12)],
                                             suptitle="twelve images"),
        "mask_overlay": lambda: viz.mask_overlay(image, mask),
        "gradient_maps": lambda: viz.gradient_maps(torch.randn(12, 3, 16, 16)),
        "step_strip": lambda: viz.step_strip({"guided": rec, "no blend": other}, field="grad"),
        "compare_strips": lambda: viz.compare_strips(rec, other, labels=("blend", "no blend"), diff=True),
        "step_panels": lambda: viz.step_panels(rec.steps[-1], mask=rec.mask),
        "loss_curves": lambda: viz.loss_curves({"blend": rec, "no blend": other}),
        "noise_schedule": lambda: viz.noise_schedule(tiny, timestep_respacing="100", skip_timesteps=25),
        "noised_inputs": lambda: viz.noised_inputs(tiny, image, timestep_respacing="40", skip_timesteps=10),
        "augmentation_views": lambda: viz.augmentation_views(image, mask, size=16, aug_num=8),
        "ranked_gallery": lambda: viz.ranked_gallery(result.ranked * 5),
        "comparison_figure": lambda: viz.comparison_figure(image, -image, mask, prompt="a red rose in a vase",
                                                           distance=0.7731),
        "seam_comparison": lambda: viz.seam_comparison({f"variant {k}": image * (k / 6) for k in range(6)}, mask),
        "setting_sweep": lambda: viz.setting_sweep({lam: image.repeat(2, 1, 1, 1) * (k / 5) for k, lam in
                                                    enumerate((0, 100, 300, 1000, 3000))}, image, mask,
                                                   {lam: ["a red circle", "nothing"] for lam in (0, 100, 300, 1000, 3000)}),
        "training_curves": lambda: viz.training_curves(
            {name: json.loads((Path(bl.__file__).parent / "toyworld" / "weights" / f"toy_{name}.json").read_text())
             for name in ("unet", "clip")}),
    }
    sweep = Sweep("size", [0.02 * k for k in range(1, 13)], labels, torch.rand(12, 4).softmax(1),
                  torch.rand(4).softmax(0), torch.rand(12, 3, 16, 16) * 2 - 1, "dog")
    other_cases = {
        "typography.plot_zero_shot": lambda: __import__("blendlab.typography").typography.plot_zero_shot(
            torch.rand(6, 4).softmax(1), labels, images=torch.rand(6, 3, 16, 16) * 2 - 1),
        "typography.plot_sweep": lambda: __import__("blendlab.typography").typography.plot_sweep(sweep),
        "ranking.plot_rank_disagreement": lambda: __import__("blendlab.ranking").ranking.plot_rank_disagreement(
            types.SimpleNamespace(images=torch.rand(6, 3, 16, 16) * 2 - 1), table=_rank_table()),
        "speed.plot_pareto": lambda: __import__("blendlab.speed").speed.plot_pareto(
            _pareto_summary(), labels={k: v["label"] for k, v in _pareto_summary().items()}, title="a title"),
    }
    return viz_cases, other_cases


#: Public names of blendlab.viz that do not return a figure.
NOT_FIGURES = {"Figure", "to_rgb", "grad_magnitude", "kept_timesteps", "save_comparison_figures", "save_step_strip",
               "paste_background", "seam_strength", "background_drift", "step_label", "label_of",
               "outside_change"}


def _public_callables():
    return {name for name in viz.__all__ if callable(getattr(viz, name))}


def test_every_figure_function_of_viz_is_checked_for_legibility(tiny, run, other_runs):
    cases, _ = _figure_cases(tiny, run, other_runs)
    public = _public_callables()
    unlisted = public - set(cases) - NOT_FIGURES
    assert not unlisted, f"new public names of viz {sorted(unlisted)}: give a figure function inputs in _figure_cases"
    assert not (set(cases) | NOT_FIGURES) - public, "listed names that viz no longer exports"
    for name in NOT_FIGURES - {"Figure"}:  # a figure function cannot hide among the others
        assert "Figure" not in str(inspect.signature(getattr(viz, name)).return_annotation), name
    for name in cases:
        assert "Figure" in str(inspect.signature(getattr(viz, name)).return_annotation), name
    for module in (viz.base, viz.steps, viz.inputs, viz.results):  # every room's figures are exported
        for name in module.__all__:
            fn = getattr(module, name)
            if inspect.isfunction(fn) and "Figure" in str(inspect.signature(fn).return_annotation):
                assert name in cases, f"{module.__name__}.{name} returns a figure: export it and check it"


def _illegible(fig):
    """Texts under 9 pt and the width, once the figure is laid out as a notebook shows it."""
    fig.savefig(io.BytesIO(), format="png", bbox_inches="tight")
    small = [(t.get_text(), t.get_fontsize()) for t in fig.findobj(Text)
             if t.get_visible() and t.get_text().strip() and t.get_fontsize() < 9]
    return small, float(fig.get_size_inches()[0])


@pytest.mark.parametrize("group", ["viz", "typography, ranking, speed"])
def test_figures_are_legible_in_a_notebook_column(tiny, run, other_runs, group):
    """No text under 9 pt, no figure wider than 10 inches, at the default size."""
    cases = _figure_cases(tiny, run, other_runs)[0 if group == "viz" else 1]
    problems = {}
    for name, make in cases.items():
        fig = make()
        small, width = _illegible(fig)
        texts = [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]
        assert texts, f"{name}: no text found (the walk over the figure's Text objects is broken)"
        if small or width > 10:
            problems[name] = (width, small[:4])
        if name == "speed.plot_pareto":
            import matplotlib.pyplot as plt

            plt.close(fig)
    assert not problems, f"figures not legible in a notebook column (width in inches, small texts): {problems}"


def test_long_strips_wrap_into_rows_instead_of_growing_wider(run, other_runs):
    _, rec, _ = run
    fig = viz.step_strip(rec, field="pred_x0", max_steps=None)  # 8 panels of 1.6 in: two rows of 4
    assert fig.get_size_inches()[0] <= 10
    spans = [ax.get_subplotspec() for ax in fig.axes]
    assert {s.get_geometry()[:2] for s in spans} == {(2, 4)}
    assert [s.num1 for s in spans] == list(range(8))  # row by row, in step order
    for arr, step in zip(images_of(fig), rec.steps):
        np.testing.assert_array_equal(arr, rgb(step.fields["pred_x0"][0]))
    # two recordings: the blocks repeat, each recording's row above the other's, the label on each block
    fig = viz.compare_strips(rec, other_runs["no blend"], max_steps=None, diff=True)
    assert fig.get_size_inches()[0] <= 10
    panels = [ax for ax in fig.axes if ax.get_images()]
    grid = panels[0].get_subplotspec().get_geometry()[:2]
    assert grid == (6, 4)  # (a, b, |a − b|) × two blocks of four steps
    rows = [ax.get_subplotspec().rowspan.start for ax in panels]
    assert rows == [0] * 4 + [3] * 4 + [1] * 4 + [4] * 4 + [2] * 4 + [5] * 4
    assert [ax.get_ylabel() for ax in panels if ax.get_ylabel()] == ["a", "a", "b", "b", "|a − b|", "|a − b|"]


def test_gradient_strips_on_one_scale_with_a_colour_bar(run):
    _, rec, _ = run
    own = viz.step_strip(rec, field="grad", max_steps=4)
    clims = [ax.get_images()[0].get_clim()[1] for ax in own.axes]
    peaks = [float(s.fields["grad"][0].norm(dim=0).max()) for s in [rec.steps[k] for k in (0, 2, 5, 7)]]
    np.testing.assert_allclose(clims, peaks, rtol=1e-6)  # each its own maximum, written in its title
    assert all(f"max {p:.2g}" in ax.get_title() for ax, p in zip(own.axes, peaks))
    shared = viz.step_strip(rec, field="grad", max_steps=4, shared_scale=True)
    images = [ax.get_images()[0] for ax in shared.axes if ax.get_images()]
    assert len(images) == 4 and all(im.get_clim() == (0, pytest.approx(max(peaks))) for im in images)
    assert len(shared.axes) == 5  # and the colour bar


# -- one setting swept over several edits --------------------------------------------------------
def _sweep_inputs():
    g = torch.Generator().manual_seed(0)
    init = torch.rand(1, 3, 16, 16, generator=g) * 2 - 1
    mask = torch.zeros(1, 1, 16, 16)
    mask[..., 4:12, 4:12] = 1
    results = {}
    for k, lam in enumerate((0, 100, 1000)):
        edit = init.repeat(2, 1, 1, 1).clone()
        edit[..., 4:12, 4:12] = 0.5 * k  # the edit inside the mask
        edit[1, :, 0, 0] += 0.2 * k      # sample 1 changes one background pixel more with every value
        results[lam] = edit.clamp(-1, 1)
    return results, init, mask


def test_setting_sweep_draws_each_edit_and_its_change_on_one_scale():
    results, init, mask = _sweep_inputs()
    verdicts = {lam: [f"v{lam}a", f"v{lam}b"] for lam in results}
    fig = viz.setting_sweep(results, init, mask, verdicts, sample=1)
    assert fig.get_size_inches()[0] <= viz.MAX_WIDTH
    tops = [ax for ax in fig.axes if ax.get_title().startswith("λ_CLIP = ")]
    assert [ax.get_title() for ax in tops] == ["λ_CLIP = 0\nv0b", "λ_CLIP = 100\nv100b", "λ_CLIP = 1000\nv1000b"]
    for ax, images in zip(tops, results.values()):
        assert np.allclose(images_of(fig, [ax])[0], rgb(images[1]))
    bottoms = [ax for ax in fig.axes if ax.get_title().startswith("outside: ")]
    drifts = [float(viz.background_drift(im[1:2], init, mask)[0]) for im in results.values()]
    assert [ax.get_title() for ax in bottoms] == [f"outside: {d:.2g}" for d in drifts]
    assert drifts[0] == 0 and drifts[2] > drifts[1] > 0
    maps = [ax.get_images()[0] for ax in bottoms]
    assert len({m.get_clim() for m in maps}) == 1  # one colour scale
    assert np.allclose(maps[2].get_array(), viz.outside_change(results[1000], init)[1])


def test_setting_sweep_says_what_is_wrong():
    results, init, mask = _sweep_inputs()
    with pytest.raises(bl.InputError, match="dict"):
        viz.setting_sweep([], init, mask)
    with pytest.raises(bl.InputError, match="sample 5"):
        viz.setting_sweep(results, init, mask, sample=5)
    with pytest.raises(bl.InputError, match="at most"):
        viz.setting_sweep({k: results[0] for k in range(9)}, init, mask)
