"""Widgets driven through their handlers: MaskPainter, StepScrubber, EditorApp (no browser)."""

import dataclasses
import io
import threading

import ipywidgets
import numpy as np
import pytest
import torch
from PIL import Image

import blendlab as bl
from blendlab.masks import check_mask
from blendlab.notebook import TINY_SETTINGS
from blendlab.widgets import SETTINGS, EditorApp, MaskPainter, StepScrubber


# -- MaskPainter --------------------------------------------------------------------------------
def centre(painter, row, col):
    """Canvas coordinates of the centre of mask pixel [row, col]."""
    dw, dh = painter.display_size
    h, w = painter.mask_size
    return (col + 0.5) * dw / w, (row + 0.5) * dh / h


def drag(painter, points):
    painter.on_mouse_down(*points[0])
    for p in points[1:]:
        painter.on_mouse_move(*p)
    painter.on_mouse_up(*points[-1])


def expected(shape, *cells):
    m = np.zeros(shape, bool)
    for r, c in cells:
        m[r, c] = True
    return m


@pytest.fixture
def painter(image):
    p = MaskPainter(image, brush=1)
    assert p.mask_size == (32, 32) and p.display_size == (384, 384)  # 32 px x 12 >= 384
    return p


def test_fast_brush_stroke_paints_the_segment_at_model_resolution_and_nothing_else(painter):
    # one move event across 6 pixels: the segment between events is painted, no gaps
    drag(painter, [centre(painter, 3, 5), centre(painter, 3, 10)])
    assert np.array_equal(painter.mask_array, expected((32, 32), *[(3, c) for c in range(5, 11)]))
    mask = painter.mask
    assert mask.shape == (1, 1, 32, 32) and mask.dtype == torch.float32
    assert set(mask.unique().tolist()) == {0.0, 1.0}
    # a diagonal drag in one jump also leaves no gaps (8-connected line)
    painter.clear()
    drag(painter, [centre(painter, 10, 10), centre(painter, 20, 20)])
    assert np.array_equal(painter.mask_array, expected((32, 32), *[(i, i) for i in range(10, 21)]))


def test_brush_diameter_in_mask_pixels(painter):
    painter.size_slider.value = 3
    drag(painter, [centre(painter, 8, 8)])
    assert np.array_equal(np.argwhere(painter.mask_array).min(0), [7, 7])
    assert np.array_equal(np.argwhere(painter.mask_array).max(0), [9, 9])
    assert painter.mask_array.sum() == 9
    painter.clear()
    painter.size_slider.value = 2  # even: centred on the nearest pixel corner
    painter.on_mouse_down(12 * 8 + 1, 12 * 8 + 1)  # just past the corner between 7 and 8
    painter.on_mouse_up(12 * 8 + 1, 12 * 8 + 1)
    assert np.array_equal(painter.mask_array, expected((32, 32), (7, 7), (7, 8), (8, 7), (8, 8)))


def test_display_scale_4_maps_canvas_to_mask_pixels(image):
    p = MaskPainter(image, display_size=128, brush=1)
    assert p.display_size == (128, 128)
    assert p.canvas.width == 128 and p.canvas.height == 128
    # canvas x in [4c, 4c+4) is mask column c
    for x, y, cell in [(4 * 7 + 0.2, 4 * 9 + 3.9, (9, 7)), (127.9, 0.0, (0, 31)), (0.0, 127.5, (31, 0))]:
        p.clear()
        drag(p, [(x, y)])
        assert np.array_equal(p.mask_array, expected((32, 32), cell)), (x, y)
    assert p.to_mask(64, 32) == (16.0, 8.0)


def test_mask_size_and_anisotropic_display(image):
    p = MaskPainter(image, size=16, display_size=(128, 64), brush=1)  # 8 px per column, 4 per row
    assert p.mask_size == (16, 16) and p.image.shape == (1, 3, 16, 16)
    drag(p, [(8 * 3 + 7.5, 4 * 5 + 0.5)])
    assert np.array_equal(p.mask_array, expected((16, 16), (5, 3)))
    assert p.mask.shape == (1, 1, 16, 16)


def test_real_ipycanvas_events_reach_the_handlers(painter):
    """The frontend sends {event, x, y} messages to the MultiCanvas; its top layer dispatches them."""
    canvas = painter.canvas
    for event, (r, c) in [("mouse_down", (2, 2)), ("mouse_move", (2, 6)), ("mouse_up", (2, 6))]:
        x, y = centre(painter, r, c)
        canvas._handle_custom_msg({"event": event, "x": x, "y": y}, [])
    assert np.array_equal(painter.mask_array, expected((32, 32), *[(2, c) for c in range(2, 7)]))
    # a drag that leaves the canvas ends the stroke (mouse_out), so later moves do not paint
    x, y = centre(painter, 9, 9)
    canvas._handle_custom_msg({"event": "mouse_down", "x": x, "y": y}, [])
    canvas._handle_custom_msg({"event": "mouse_out", "x": 400, "y": y}, [])
    before = painter.mask_array
    canvas._handle_custom_msg({"event": "mouse_move", "x": x, "y": y + 60}, [])
    assert np.array_equal(painter.mask_array, before)
    assert painter.can_undo


def test_eraser_clears_only_under_the_stroke(painter):
    painter.fill()
    painter.tool.value = "eraser"
    painter.size_slider.value = 1
    drag(painter, [centre(painter, 4, 4), centre(painter, 4, 7)])
    want = np.ones((32, 32), bool)
    want[4, 4:8] = False
    assert np.array_equal(painter.mask_array, want)


def test_rectangle_tool_previews_then_commits_corner_to_corner(painter):
    painter.tool.value = "rectangle"
    painter.on_mouse_down(*centre(painter, 20, 12))
    painter.on_mouse_move(*centre(painter, 10, 3))
    # during the drag the shape is only a preview on the overlay
    assert painter.mask_array.sum() == 0
    assert painter.overlay_rgba()[..., 3].sum() == 0
    painter.on_mouse_move(*centre(painter, 5, 2))
    painter.on_mouse_up(*centre(painter, 5, 2))
    want = np.zeros((32, 32), bool)
    want[5:21, 2:13] = True
    assert np.array_equal(painter.mask_array, want)


def test_ellipse_tool_matches_library_ellipse(painter):
    painter.tool.value = "ellipse"
    drag(painter, [(0, 0), (200, 100), (383.9, 383.9)])
    want = bl.ellipse_mask(32, (0.5, 0.5), (0.5, 0.5))[0, 0].bool().numpy()
    assert np.array_equal(painter.mask_array, want)
    # a partial ellipse in the corner; rectangle + ellipse add up
    painter.clear()
    drag(painter, [centre(painter, 0, 0), centre(painter, 7, 15)])
    want = bl.ellipse_mask(32, (0.25, 0.125), (0.25, 0.125))[0, 0].bool().numpy()
    assert np.array_equal(painter.mask_array, want)


def test_undo_redo_history(painter):
    drag(painter, [centre(painter, 3, 3), centre(painter, 3, 8)])
    stroke = painter.mask_array
    assert stroke.sum() == 6 and painter.can_undo and not painter.can_redo
    painter.undo()
    assert painter.mask_array.sum() == 0 and painter.can_redo
    assert painter.undo_button.disabled and not painter.redo_button.disabled
    painter.redo()
    assert np.array_equal(painter.mask_array, stroke)
    painter.undo()
    painter.undo()  # nothing left to undo: no-op
    drag(painter, [centre(painter, 9, 9)])  # a new change drops the redo branch
    assert not painter.can_redo
    assert np.array_equal(painter.mask_array, expected((32, 32), (9, 9)))


def test_invert_clear_fill(painter):
    drag(painter, [centre(painter, 1, 1)])
    painter.invert()
    assert painter.mask_array.sum() == 32 * 32 - 1 and not painter.mask_array[1, 1]
    painter.clear()
    assert painter.mask_array.sum() == 0
    painter.fill()
    assert painter.mask_array.all()
    painter.undo()
    assert painter.mask_array.sum() == 0


def test_set_mask_round_trip_resize_and_undo(painter):
    box = bl.box_mask(32, (0.25, 0.25, 0.75, 0.5))
    painter.set_mask(box)
    assert torch.equal(painter.mask, box)
    big = bl.box_mask(128, (0.1, 0.2, 0.6, 0.9))
    with pytest.warns(bl.MaskResizedWarning, match="the mask is 128×128 and the image 32×32"):
        painter.set_mask(Image.fromarray((big[0, 0].numpy() * 255).astype(np.uint8)))
    assert torch.equal(painter.mask, bl.load_mask(big, size=32))
    painter.undo()
    assert torch.equal(painter.mask, box)
    with pytest.raises(bl.InputError, match="not understood"):
        painter.set_mask(np.zeros((2, 3, 4, 5)))
    with pytest.raises(FileNotFoundError):
        painter.set_mask("no/such/mask.png")
    assert torch.equal(painter.mask, box)  # a failed load changes nothing


def test_mask_is_a_copy_and_inputs_are_untouched(image):
    original = image.clone()
    p = MaskPainter(image, brush=2)
    drag(p, [centre(p, 5, 5)])
    m = p.mask
    m.fill_(1)
    arr = p.mask_array
    arr[:] = True
    assert p.mask_array.sum() == 4
    assert torch.equal(image, original)
    assert torch.allclose(p.image, original)


def test_on_change_fires_once_per_finished_change(painter):
    seen = []
    painter.on_change(lambda m: seen.append(float(m.sum())))
    painter.on_mouse_down(*centre(painter, 2, 2))
    painter.on_mouse_move(*centre(painter, 2, 4))
    assert seen == []  # not during the stroke
    painter.on_mouse_up(*centre(painter, 2, 5))
    painter.undo()
    painter.fill()
    assert seen == [4.0, 0.0, 1024.0]


def test_overlay_is_drawn_from_the_mask_by_dirty_rectangles(painter):
    layer = painter.canvas[1]
    puts = []
    original = layer.put_image_data
    layer.put_image_data = lambda data, x=0, y=0: (puts.append((data.shape, x, y)), original(data, x, y))
    drag(painter, [centre(painter, 6, 6)])  # one 1-pixel dab
    assert puts and all(shape[0] <= 3 * 12 and shape[1] <= 3 * 12 for shape, _, _ in puts)
    assert all(shape[2] == 4 for shape, _, _ in puts)  # RGBA arrays, no per-pixel calls
    rgba = painter.overlay_rgba()
    painted = np.kron(painter.mask_array, np.ones((12, 12), bool))
    assert np.array_equal(rgba[..., 3] > 0, painted)
    assert painter.composite().size == (384, 384)


# -- StepScrubber -------------------------------------------------------------------------------
SCRUB_CFG = bl.EditConfig(prompt="rock", timestep_respacing="4", skip_timesteps=1, batch_size=2,
                          iterations_num=2, aug_num=1, seed=3)


def recorded_edit(cfg):
    """A tiny edit of the "shapes" image in a centred box, recorded: (recorder, image)."""
    models = bl.load_models("tiny", device="cpu")
    image = bl.sample_image("shapes", size=models.image_size)
    mask = bl.box_mask(models.image_size, (0.25, 0.25, 0.75, 0.75))
    rec = bl.Recorder()
    bl.edit(models, image, mask, cfg, hooks=[rec], progress=False)
    return rec, image


@pytest.fixture(scope="module")
def recording():
    return recorded_edit(SCRUB_CFG)


def test_scrubber_slider_changes_info_and_image(recording):
    rec, image = recording
    s = StepScrubber(rec, init_image=image)
    assert s.slider.max == 2 and len(s.iteration.options) == 2
    first_info, first = s.info, s.image.value
    s.slider.value = 2
    step = rec.steps[2]
    assert s.info != first_info and s.image.value != first
    assert s.info.startswith(f"step 2/3 · t={step.timestep} · ᾱ_t = {step.alpha_bar:.4f}")
    assert s.step_text.value == step.label == f"step 2/3 · t={step.timestep}"  # beside the slider
    assert f"clip loss = {step.losses['clip']:.4g}" in s.info
    assert s.current_image().size == (256, 256)  # 32 px enlarged x8, NEAREST
    assert s.step is step


def test_scrubber_fields_samples_and_iterations(recording):
    rec, image = recording
    s = StepScrubber(rec, init_image=image)
    x_t = np.asarray(s.show(1, field="x_t", sample=0))
    pred = np.asarray(s.show(field="pred_x0"))
    assert not np.array_equal(x_t, pred)
    # shown image = the recorded tensor, enlarged with NEAREST
    small = bl.to_pil(rec.steps[1].fields["pred_x0"][0].float())
    assert np.array_equal(pred[::8, ::8], np.asarray(small))
    other = np.asarray(s.show(field="x_t", sample=1))
    assert not np.array_equal(other, x_t)
    s.show(0, iteration=1)
    assert "batch 2" in s.info and s.step is rec.steps[3]
    with pytest.raises(bl.InputError, match="field"):
        s.show(field="nope")


def test_grad_heatmap_is_normalised_per_image(recording):
    rec, _ = recording
    s = StepScrubber(rec)
    heat = np.asarray(s.show(0, field="grad", sample=0))
    x_t = np.asarray(s.show(field="x_t"))
    assert not np.array_equal(heat, x_t)
    from matplotlib import colormaps

    arr = s.render_array(rec.steps[0], "grad", 0)
    norm = rec.steps[0].fields["grad"][0].float().norm(dim=0)
    peak = np.unravel_index(int(norm.argmax()), norm.shape)
    top = (np.asarray(colormaps["magma"](1.0)[:3]) * 255 + 0.5).astype(np.uint8)
    assert np.array_equal(arr[peak], top)  # the largest |grad| of each image maps to the top colour
    assert not np.array_equal(s.render_array(rec.steps[0], "grad", 1), arr)


def test_mask_overlay_tints_inside_only(recording):
    rec, _ = recording
    s = StepScrubber(rec)
    step = rec.steps[1]
    base = s.render_array(step, "x_prev", 0)
    over = s.render_array(step, "mask", 0)
    inside = rec.mask[0, 0].numpy() > 0.5
    assert np.array_equal(over[~inside], base[~inside])
    assert (over[inside] != base[inside]).any()
    shown = np.asarray(s.show(1, field="mask"))
    assert (shown == (255, 230, 0)).all(-1).any()  # the outline


def test_play_widget_is_linked_to_the_slider(recording):
    rec, _ = recording
    s = StepScrubber(rec)
    assert s.play.max == s.slider.max == 2
    before = s.info
    s.play.value = 2
    assert s.slider.value == 2 and s.info != before
    s.slider.value = 1
    assert s.play.value == 1


def test_scrubber_rejects_an_empty_recording():
    with pytest.raises(bl.InputError, match="hook"):
        StepScrubber(bl.Recorder())


@pytest.fixture(scope="module")
def pair_of_runs():
    """blend vs no blend from the same seed, and a run with fewer steps."""
    cfg = SCRUB_CFG.replace(timestep_respacing="8", skip_timesteps=2, iterations_num=1)
    configs = {"blend": cfg, "no blend": cfg.replace(local_clip_guided_diffusion=True),
               "coarse": cfg.replace(timestep_respacing="4", skip_timesteps=1)}
    return {name: recorded_edit(c)[0] for name, c in configs.items()}


def test_compare_mode_renders_both_panes_and_the_difference_at_every_step(pair_of_runs):
    a, b = pair_of_runs["blend"], pair_of_runs["no blend"]
    s = StepScrubber(a, compare=b, labels=("blend", "no blend"))
    assert s.sync_used == "step" and s.slider.max == 5
    names = [v for _, v in s.field.options]
    assert names[:6] == ["x_t", "pred_x0", "grad", "fg", "bg", "x_prev"] and "mask" in names and "input" in names
    for field in names:
        for pos in range(6):
            s.show(pos, field=field, sample=1)
            step_a, step_b = s.pair
            assert step_a is a.steps[pos] and step_b is b.steps[pos]
            panes = s.current_images()
            assert list(panes) == ["blend", "no blend", "|a − b|"]
            assert all(im.size == (256, 256) for im in panes.values())
            assert s.image_b.value and s.diff_image.value
            small = np.asarray(panes["no blend"])[::8, ::8]
            if field in ("x_t", "pred_x0", "x_prev"):
                assert np.array_equal(small, bl.images.to_uint8(step_b.fields[field][1]))
                diff = (step_a.fields[field][1].float() - step_b.fields[field][1].float()).abs().mean(0)
                assert s.difference == pytest.approx((float(diff.max()), float(diff.mean())))
            assert f"blend: {step_a.label} · " in s.info and f"no blend: {step_b.label} · " in s.info
            assert step_a.label.startswith(f"step {pos}/6 · t=")
    # x̂0 of the first step is the same in both runs; x_{t-1} already differs (outside the mask)
    s.show(0, field="pred_x0")
    assert s.difference == (0.0, 0.0) and "(identical)" in s.diff_scale.value
    s.show(0, field="x_prev")
    assert s.difference[0] > 0


def test_compare_with_itself_is_zero_at_every_step(pair_of_runs, tmp_path):
    rec = pair_of_runs["blend"]
    loaded = bl.load_trajectory(rec.save(tmp_path / "run.npz"))
    s = StepScrubber(rec, compare=loaded)
    for pos in range(len(rec.steps)):
        for field in ("x_t", "grad", "x_prev", "mask", "input"):
            s.show(pos, field=field)
            assert s.difference == (0.0, 0.0)
            assert np.array_equal(np.asarray(s.current_images()["a"]), np.asarray(s.current_images()["b"]))


def test_compare_runs_of_different_lengths_by_timestep(pair_of_runs):
    a, b = pair_of_runs["blend"], pair_of_runs["coarse"]
    s = StepScrubber(a, compare=b)
    assert s.sync_used == "timestep" and s.slider.max == 5  # the slider runs over the first recording
    for pos in range(6):
        s.show(pos)
        step_a, step_b = s.pair
        assert abs(step_a.timestep - step_b.timestep) == min(abs(step_a.timestep - x.timestep) for x in b.steps)
        assert f"b: {step_b.label} · " in s.info and "(nearest t)" in s.info
    s.slider.value = 2  # the slider itself re-renders both panes
    assert s.pair[0] is a.steps[2]


def test_compare_mode_errors(pair_of_runs):
    a, b = pair_of_runs["blend"], pair_of_runs["no blend"]
    with pytest.raises(bl.InputError, match="compare="):
        StepScrubber(a, b)
    with pytest.raises(bl.InputError, match="compared recording has no steps"):
        StepScrubber(a, compare=bl.Recorder())
    with pytest.raises(bl.InputError, match="two names"):
        StepScrubber(a, compare=b, labels=("x",))
    with pytest.raises(bl.InputError, match="compare mode"):
        StepScrubber(a).pair


# -- EditorApp ----------------------------------------------------------------------------------
def quick(app, **kw):
    app.settings.set(**{**dict(timestep_respacing="4", skip_timesteps=2, batch_size=2, iterations_num=1,
                               aug_num=1, seed=5), **kw})


def test_editor_run_ranks_a_gallery(tiny):
    app = EditorApp(tiny, prompt="rock")
    app.painter.set_mask(bl.box_mask(32, (0.25, 0.25, 0.75, 0.75)))
    quick(app, iterations_num=2)
    app.record.value = True
    result = app.run(block=True)
    assert result is app.result and result is not None, app.message
    assert result.images.shape == (4, 3, 32, 32)
    assert len(app.gallery.children) == 4
    labels = [card.children[1].value for card in app.gallery.children]
    dists = sorted(float(d) for d in result.distances)
    assert [f"{d:.4f}" in label for d, label in zip(dists, labels)] == [True] * 4
    assert app.progress.value == app.progress.max == 4 and app.steps_done == 4
    assert app.preview.value[:4] == b"\x89PNG"
    assert "done: 4 images" in app.message
    assert app.scrubber is not None and len(app.recorder) == 4
    assert not app.running and not app.run_button.disabled and app.stop_button.disabled


@pytest.mark.filterwarnings("error")  # the full-mask warning is shown in the app, not raised again
def test_editor_stop_from_a_hook(tiny):
    app = EditorApp(tiny, prompt="rock")
    app.painter.fill()
    quick(app, timestep_respacing="6", skip_timesteps=1)  # 5 steps

    def stop_after_two(state):
        if state.index == 1:
            app.stop()

    seen = []
    app.status.observe(lambda change: seen.append(change["new"]), names="value")
    assert app.run(block=True, hooks=[stop_after_two]) is None
    assert any("mask covers the whole image" in text for text in seen)
    assert app.steps_done == 2 and app.result is None
    assert app.message == "stopped after 2 steps"
    assert len(app.gallery.children) == 0 and not app.running


def test_editor_stop_button_in_background_thread(tiny):
    app = EditorApp(tiny, prompt="rock")
    app.painter.set_mask(bl.box_mask(32, (0.0, 0.0, 0.5, 1.0)))
    quick(app, timestep_respacing="6", skip_timesteps=1)
    started, go = threading.Event(), threading.Event()

    def pause(state):
        started.set()
        go.wait(30)

    thread = app.run(hooks=[pause])
    assert isinstance(thread, threading.Thread)
    assert started.wait(60)
    assert app.running and app.run_button.disabled
    app.run()  # a second Run while running is refused
    assert "already running" in app.message
    app.stop_button.click()
    go.set()
    app.wait(60)
    assert not thread.is_alive()
    assert app.message == "stopped after 1 steps" and app.result is None


def test_editor_reports_input_errors_without_raising(tiny):
    app = EditorApp(tiny, prompt="rock")
    quick(app)
    app.painter.clear()
    with pytest.raises(bl.InputError) as lib:
        check_mask(app.painter.mask)
    assert app.run(block=True) is None  # the mask is empty: the library's one wording, painting named
    assert app.message == str(lib.value) and app.message.startswith("the mask is empty")
    assert "paint it, or press fill" in app.message
    assert "color:#b00020" in app.status.value and not app.running
    app.painter.fill()
    app.settings.set(invert_mask=True)  # all painted and inverted: nothing to edit
    assert app.run(block=True) is None and app.message.startswith("the mask is empty once inverted")
    assert "turn invert_mask off" in app.message
    app.settings.set(invert_mask=False)
    app.painter.fill()
    app.prompt.value = "   "
    assert app.run(block=True) is None and "prompt is empty" in app.message
    app.prompt.value = "rock"
    app.settings.set(seed="abc")
    assert app.run(block=True) is None and "seed 'abc'" in app.message
    app.settings.set(seed=5, skip_timesteps=10)
    assert app.run(block=True) is None and "skip_timesteps=10" in app.message
    assert app.steps_done == 0


def test_editor_shows_a_non_finite_run_as_an_error_with_nothing_in_the_gallery(tiny):
    app = EditorApp(tiny, prompt="a red ball")
    app.painter.set_mask(bl.box_mask(32, (0.25, 0.25, 0.75, 0.75)))
    quick(app, skip_timesteps=0, timestep_respacing="100", batch_size=1, aug_num=1)  # "skip 0"
    app.record.value = True
    assert app.run(block=True) is None and app.result is None
    msg = app.message
    assert msg.startswith("step ") and " · t=" in msg and "became infinite" in msg, msg
    assert "Try: more skipped steps" in msg and "done" not in msg and "nan" not in msg
    assert "color:#b00020" in app.status.value and len(app.gallery.children) == 0
    step = int(msg.split()[1].split("/")[0])
    assert app.steps_done == step and 0 < step < 100  # the progress stopped at the failing step
    assert len(app.recorder) == step and app.scrubber is not None  # the finite steps before it can be scrubbed
    assert not app.running and not app.run_button.disabled and app.stop_button.disabled


def test_a_failed_run_clears_the_previous_results(tiny):
    """A Run that fails leaves no earlier gallery, preview or result under its error (issue 24)."""
    from blendlab.widgets.app import PREVIEW_PLACEHOLDER

    app = EditorApp(tiny, prompt="rock")
    app.painter.set_mask(bl.box_mask(32, (0.25, 0.25, 0.75, 0.75)))
    quick(app)
    assert app.run(block=True) is not None and len(app.gallery.children) == 2
    assert app.preview.value != PREVIEW_PLACEHOLDER
    app.prompt.value = ""  # refused before it runs
    assert app.run(block=True) is None and "prompt is empty" in app.message
    assert app.result is None and app.gallery.children == () and app.preview.value == PREVIEW_PLACEHOLDER
    assert "color:#b00020" in app.status.value
    app.prompt.value = "rock"
    assert app.run(block=True) is not None and len(app.gallery.children) == 2

    def breaks(state):  # fails while it runs, after a preview of its own
        if state.index == 1:
            raise ValueError("a hook broke")

    assert app.run(block=True, hooks=[breaks]) is None and app.message == "a hook broke"
    assert app.result is None and app.gallery.children == () and app.preview.value == PREVIEW_PLACEHOLDER
    assert not app.running and not app.run_button.disabled


def test_the_editor_sets_torchs_threads_by_the_policy(tiny, monkeypatch):
    from blendlab.threads import threads_for

    monkeypatch.delenv("BLENDLAB_THREADS", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    torch.set_num_threads(3)
    app = EditorApp(tiny)
    assert torch.get_num_threads() == app.threads == threads_for("tiny")[0] <= 2
    EditorApp(tiny, threads=3)
    assert torch.get_num_threads() == 3  # an explicit count wins


def test_settings_defaults_come_from_editconfig(tiny):
    real = dataclasses.replace(tiny, preset="256-uncond")  # a real preset's name; nothing is loaded
    app = EditorApp(real)
    base = bl.EditConfig()
    assert app.settings.values() == {name: getattr(base, name) for name in SETTINGS}
    assert app.config() == bl.EditConfig(prompt="")
    tiny_app = EditorApp(tiny)
    values = tiny_app.settings.values()
    for name, value in TINY_SETTINGS.items():
        assert values[name] == value
    assert values["clip_guidance_lambda"] == base.clip_guidance_lambda
    tiny_app.settings.set(seed=None)
    assert tiny_app.config().seed is None


def test_editor_image_sources(tiny):
    app = EditorApp(tiny, image=bl.sample_image("shapes"))
    assert app.source.value == "given"
    assert torch.allclose(app.painter.image, bl.sample_image("shapes", size=32))
    app.source.value = "grace_hopper"
    assert torch.allclose(app.painter.image, bl.sample_image("grace_hopper", size=32))
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (0, 0, 255)).save(buf, format="PNG")
    assert app.load_bytes(buf.getvalue(), name="blue.png")
    assert app.source.value == "upload:blue.png"
    blue = app.painter.image
    assert blue.shape == (1, 3, 32, 32) and torch.allclose(blue[0, 2], torch.ones(32, 32))
    assert not app.load_bytes(b"not an image", name="x.png")
    assert app.message.startswith("could not read 'x.png' as an image: it is not a picture file")
    assert torch.equal(app.painter.image, blue)


def test_editor_in_the_toy_world_offers_toy_scenes_and_edits_them(toy):
    from blendlab.examples import example
    from blendlab.notebook import TOY_SETTINGS
    from blendlab.toyworld.judge import judge

    app = EditorApp(toy, prompt="a red circle")
    assert app.source.value == "lesson" and "toy world" in app.widget.children[0].value
    assert app.source.options[0] == ("lesson 01's toy scene", "lesson")
    lesson = example("insert", toy)
    assert torch.equal(app.painter.image, lesson.image) and torch.equal(app.painter.mask, lesson.mask)
    values = app.settings.values()
    assert all(values[k] == v for k, v in TOY_SETTINGS.items())
    assert values["clip_guidance_lambda"] == bl.EditConfig().clip_guidance_lambda  # the paper's guidance
    app.source.value = "toy:2"
    assert not torch.equal(app.painter.image, lesson.image)
    app.source.value = "lesson"
    app.settings.set(seed=1)
    result = app.run(block=True)
    assert result is not None, app.message
    colours = [v.colour for v in judge(result.images, result.sample_masks)]
    assert colours.count("red") >= 3, colours


# -- EditorApp at a laptop's width, and what it says (issue #15, item 8) ------------------------
def _px(value) -> int:
    assert isinstance(value, str) and value.endswith("px"), f"not a fixed width: {value!r}"
    return int(value[:-2])


def test_editor_layout_is_fixed_and_fits_a_laptop_output_area(tiny):
    from blendlab.widgets.settings import FORM_WIDTH

    app = EditorApp(tiny)
    painter = app.painter
    header, sources, main, *_ = app.widget.children
    column, controls = main.children
    assert main.layout.flex_flow == "row wrap"  # too narrow: the controls go under, nothing shrinks
    assert column is painter.widget and painter.display_size == (384, 384)
    # the painter's column holds its widest row; ipywidgets adds a 2 px margin on each side
    col = _px(column.layout.width)
    tools = 4 * (_px(painter.tool.style.button_width) + 4)
    buttons = sum(_px(b.layout.width) + 4 for b in (painter.undo_button, painter.redo_button,
                                                   painter.clear_button, painter.invert_button,
                                                   painter.fill_button))
    assert max(tools, buttons, _px(painter.size_slider.layout.width) + 4, 384) <= col
    # "rectangle" is 61 px in DejaVu Sans at 13 px; a tool button leaves 20 px of padding
    assert _px(painter.tool.style.button_width) - 20 >= 65
    # every control row has a fixed width inside the controls' column, the status line too
    assert _px(controls.layout.width) == FORM_WIDTH
    rows = [app.prompt, app.record, app.progress, app.status, *app.settings.controls.values()]
    assert all(_px(w.layout.width) + 4 <= FORM_WIDTH for w in rows)
    assert isinstance(app.prompt, ipywidgets.Textarea) and app.prompt.rows == 2  # a long prompt wraps
    # JupyterLab at 1280 px with its file browser open gives an output area 848 px wide
    assert col + _px(controls.layout.margin.split()[-1]) + FORM_WIDTH <= 848


def test_editor_preview_shows_a_picture_before_the_first_run(tiny):
    from blendlab.widgets.app import PREVIEW_PLACEHOLDER

    app = EditorApp(tiny, prompt="rock")
    assert app.preview.value == PREVIEW_PLACEHOLDER and PREVIEW_PLACEHOLDER[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(io.BytesIO(app.preview.value)) as im:
        im.load()
        assert im.size == (256, 128) and len(np.unique(np.asarray(im))) > 1  # grey, a line of text
    quick(app)
    assert app.run(block=True) is not None, app.message
    assert app.preview.value != PREVIEW_PLACEHOLDER  # x̂0 of the run
    app.painter.clear()
    app.run(block=True)  # refused before it starts: the last run's pictures go (issue 24)
    assert app.preview.value == PREVIEW_PLACEHOLDER and len(app.gallery.children) == 0
    assert app.result is None and "mask is empty" in app.message
    app.painter.fill()
    app.run(block=True, hooks=[lambda state: app.stop()])  # a new run starts from the placeholder
    assert app.result is None and len(app.gallery.children) == 0


def test_editor_seed_box_says_what_a_run_uses_and_a_random_seed_can_be_repeated(tiny):
    app = EditorApp(tiny, prompt="rock")
    quick(app, seed=None)
    box = app.settings.controls["seed"]
    assert box.description == "seed" and "empty" not in box.description
    assert box.value == "" and "random" in box.placeholder
    assert "each Run draws a seed" in app.settings.seed_note.value
    first = app.run(block=True)
    drawn = app.settings.last_random_seed
    assert isinstance(drawn, int) and first.cfg.seed == drawn  # the run used the seed it names
    assert f"drew seed {drawn}: type it in to repeat" in app.settings.seed_note.value
    app.settings.set(seed=drawn)  # typing it in repeats the run exactly
    assert app.settings.seed_note.value == "" and app.config().seed == drawn
    again = app.run(block=True)
    assert again.cfg.seed == drawn and torch.equal(again.images, first.images)
    app.settings.set(seed=None)
    other = app.run(block=True)
    assert other.cfg.seed == app.settings.last_random_seed  # a new draw each Run
    assert EditorApp(tiny).settings.controls["seed"].value == "404"  # the quick settings' seed
    assert EditorApp(tiny).config().seed == 404


def test_editor_bad_uploads_are_named_without_reprs(tiny):
    app = EditorApp(tiny)
    before = app.painter.image
    buf = io.BytesIO()
    Image.new("RGB", (40, 40), (0, 200, 0)).save(buf, format="PNG")
    cases = {"notes.txt": (b"hello, not a picture", "it is not a picture file (PNG, JPEG, WebP, ...)"),
             "empty.png": (b"", "the file is empty"),
             "cut.png": (buf.getvalue()[:60], "the picture in it is damaged or cut short")}
    for name, (data, why) in cases.items():
        assert not app.load_bytes(data, name=name)
        assert app.message == f"could not read {name!r} as an image: {why}. Upload a PNG or JPEG image."
        assert "BytesIO" not in app.message and "0x" not in app.message
        assert "color:#b00020" in app.status.value
        assert torch.equal(app.painter.image, before) and app.source.value == "lesson"


def test_editor_run_without_recording_clears_the_scrubber(tiny):
    app = EditorApp(tiny, prompt="rock")
    quick(app)
    assert app.scrubber_box.children == ()  # nothing to say before the first Run
    app.record.value = True
    app.run(block=True)
    assert app.scrubber is not None and app.scrubber.widget in app.scrubber_box.children
    app.record.value = False
    assert app.run(block=True) is not None
    assert app.scrubber is None and app.recorder is None
    (note,) = app.scrubber_box.children
    assert "not recorded" in note.value and "turn on 'record steps'" in note.value


def test_editor_starts_with_lesson_01s_image_and_mask(tiny, toy):
    from pathlib import Path

    from blendlab.notebook import NotebookEnv

    lesson01 = (Path(__file__).resolve().parents[1] / "notebooks" / "01_quickstart.py").read_text()
    # the lesson's painter ends up holding env.example("insert")'s mask when nothing is painted
    assert 'ex = env.example("insert")' in lesson01 and "painter.set_mask(ex.mask)" in lesson01
    for models in (tiny, toy):
        env = NotebookEnv(in_colab=False, device="cpu", preset=models.preset, _models=models)
        ex = env.example("insert")
        app = EditorApp(env)
        assert app.source.value == "lesson"
        assert torch.equal(app.painter.image, ex.image) and torch.equal(app.painter.mask, ex.mask)
        assert 0 < ex.mask.sum() < ex.mask.numel()
        assert not app.painter.can_undo  # the starting mask is where undo stops
    given = EditorApp(tiny, image=bl.sample_image("shapes"))
    assert given.source.value == "given" and given.painter.mask.sum() == 0  # your image: paint it


def test_painter_starts_from_a_given_mask(image):
    start = bl.box_mask(32, (0.25, 0.25, 0.75, 0.75))
    p = MaskPainter(image, mask=start)
    assert torch.equal(p.mask, start) and not p.can_undo
    assert (p.overlay_rgba()[..., 3] > 0).sum() == int(start.sum()) * 12 * 12  # drawn at once
    p.clear()
    p.undo()
    assert torch.equal(p.mask, start)
    assert MaskPainter(image, size=16, mask=start).mask.shape == (1, 1, 16, 16)  # resized NEAREST


# -- SweepSlider -----------------------------------------------------------------------------------
def test_sweep_slider_scrubs_precomputed_edits_with_verdicts_and_background_change():
    from blendlab.images import to_uint8
    from blendlab.viz import background_drift, outside_change
    from blendlab.widgets import SweepSlider

    init = torch.zeros(1, 3, 8, 8)
    mask = torch.zeros(1, 1, 8, 8)
    mask[..., 2:6, 2:6] = 1
    results = {lam: init.repeat(2, 1, 1, 1) + 0.1 * k for k, lam in enumerate((0, 300, 3000))}
    verdicts = {lam: ["red circle", None] for lam in results}
    s = SweepSlider(results, init, mask, verdicts, display_size=32)
    assert s.value == 0 and s.info.startswith("λ_CLIP = 0 · #0: red circle, background change 0")
    first = s.image.value
    s.slider.value = 3000                      # what a drag does
    assert s.image.value != first and s.info.startswith("λ_CLIP = 3000 · ")
    drift = float(background_drift(results[3000], init, mask)[0])
    assert f"#1: None, background change {drift:.2g}" in s.info
    arr = s.render_array(3000)
    assert arr.shape == (16, 16, 3)           # the batch side by side, edits over their change maps
    assert np.array_equal(arr[:8, 8:], to_uint8(results[3000][1]))  # sample 1's edit, top right
    assert s.current_image().size == (32, 32)  # enlarged (x2, NEAREST) until the height is 32
    # the change maps share one scale: the largest change of the whole sweep is the top colour
    assert outside_change(results[3000], init).max() == pytest.approx(0.1)
    s.show(300)
    assert s.slider.value == 300
    with pytest.raises(bl.InputError, match="was not swept"):
        s.show(7)
    with pytest.raises(bl.InputError, match="same values"):
        SweepSlider(results, init, mask, {0: ["x", "y"]})
