"""Recorder and progress bar hooks; the paper's applications as recipes."""

import pytest
import torch

import blendlab as bl
from blendlab import applications

from _fast import fast_cfg


def test_recorder_every_k_downscaled_on_cpu(tiny, image, mask):
    cfg = fast_cfg(timestep_respacing="20", skip_timesteps=5)  # 15 steps
    rec = bl.Recorder(every=4, fields=("pred_x0", "grad"), size=16)
    bl.edit(tiny, image, mask, cfg, hooks=[rec], progress=False)
    assert [s.index for s in rec.steps] == [0, 4, 8, 12, 14]  # every 4th and always the last
    s = rec.steps[1]
    assert set(s.fields) == {"pred_x0", "grad"}
    assert s.fields["pred_x0"].shape == (2, 3, 16, 16) and s.fields["pred_x0"].device.type == "cpu"
    assert s.fields["pred_x0"].dtype == torch.float16
    assert set(s.losses) == {"clip", "range"} and s.alpha_bar > 0
    assert rec.mask.shape == (1, 1, 16, 16)
    assert rec.field("grad").shape == (5, 2, 3, 16, 16)


def test_recorder_matches_state_and_stays_within_budget(tiny, image, mask):
    cfg = fast_cfg(timestep_respacing="40", skip_timesteps=0, batch_size=1)
    seen = []
    rec = bl.Recorder(every=1, fields=("x_t",), dtype=torch.float32, max_mb=0.1)
    with pytest.warns(UserWarning, match="every other recorded step is dropped"):  # never silently
        bl.edit(tiny, image, mask, cfg, hooks=[lambda s: seen.append(s.x_t.clone()), rec], progress=False)
    per_step = 3 * 32 * 32 * 4
    assert rec.nbytes <= 0.1 * 2**20 and len(rec) * per_step == rec.nbytes
    assert rec.every > 1 and rec.steps[-1].index == 39  # thinned evenly, the last step kept
    for s in rec.steps:
        assert torch.equal(s.fields["x_t"], seen[s.index])
    with pytest.raises(ValueError, match="unknown Recorder fields"):
        bl.Recorder(fields=("nope",))


def test_progress_bar_counts_steps(tiny, image, mask, capsys):
    cfg = fast_cfg(iterations_num=2)
    bar = bl.ProgressBar(loss_every=1, file=None)
    updates, postfix = [], []
    bl.edit(tiny, image, mask, cfg, progress=False,
            hooks=[bar, lambda s: updates.append(s.iteration), lambda s: bar.bar and postfix.append((s.timestep, bar.bar.postfix))])
    assert len(postfix) == 2 * (cfg.num_steps - 1)  # the bar closes on each batch's last step
    assert all(p.startswith(f"t={t}, clip=") for t, p in postfix)  # the schedule's t, as every label shows it
    assert updates == [0] * cfg.num_steps + [1] * cfg.num_steps
    assert bar.bar is None  # closed after each batch


def test_replace_background_inverts_mask(tiny, image, mask):
    cfg = fast_cfg()
    r = applications.replace_background(tiny, image, mask, "a beach", cfg, progress=False)
    assert torch.equal(r.mask, 1 - mask)
    inside = (mask == 1).expand_as(r.images)
    assert torch.equal(r.images[inside], image.expand_as(r.images)[inside])  # the object is kept


def test_scribble_edit_pastes_scribble_and_skips_more(tiny, image, mask):
    scribble = torch.zeros_like(image)
    scribble[:, 0] = 1  # red
    smask = bl.box_mask(32, (0.4, 0.4, 0.6, 0.6))
    seen = []
    r = applications.scribble_edit(tiny, image, mask, scribble, smask, "a red ball", fast_cfg(), progress=False,
                           hooks=[seen.append])
    assert seen[0].num_steps == 12 - 6  # half of the 12 respaced steps are skipped
    outside = (mask == 0).expand_as(r.images)
    assert torch.equal(r.images[outside], image.expand_as(r.images)[outside])
    with pytest.raises(bl.InputError, match="inside the edit mask"):
        applications.scribble_edit(tiny, image, smask, scribble, mask, "x", fast_cfg(), progress=False)


def test_extrapolate_grows_canvas_per_side(tiny, image):
    canvas, results = applications.extrapolate(tiny, image, {"left": "hell", "right": "heaven"}, fraction=0.25,
                                       cfg=fast_cfg(), progress=False)
    assert canvas.shape == (1, 3, 32, 48) and set(results) == {"left", "right"}
    assert torch.equal(canvas[..., 8:40], image)  # the original sits between the new bands
    best_left = results["left"].images[results["left"].order[0]]
    assert torch.equal(canvas[0, :, :, :8], best_left[:, :, :8])
    with pytest.raises(bl.InputError, match="at least one side"):
        applications.extrapolate(tiny, image, {}, cfg=fast_cfg())


def test_object_edit_is_edit(tiny, image, mask):
    cfg = fast_cfg()
    a = applications.object_edit(tiny, image, mask, "rock", cfg, progress=False)
    b = bl.edit(tiny, image, mask, cfg, progress=False)
    assert torch.equal(a.images, b.images)


def test_the_old_module_name_apps_still_works_and_warns():
    import importlib
    import sys

    sys.modules.pop("blendlab.apps", None)
    with pytest.warns(DeprecationWarning, match="blendlab.applications"):
        old = importlib.import_module("blendlab.apps")
    assert old.object_edit is applications.object_edit and old.SCRIBBLE_SKIP == applications.SCRIBBLE_SKIP
