"""The toy world: scenes, captions, the independent judge, the training scripts, the shipped preset."""

import json
import shutil

import numpy as np
import pytest
import torch

import blendlab as bl
from blendlab import models as models_mod
from blendlab.download import sha256_file
from blendlab.toyworld import (
    BACKGROUNDS, COLORS, SHAPES, ToyObject, caption, empty_box, object_mask, random_layout, random_scene,
    render_scene, scene_caption,
)
from blendlab.toyworld.judge import judge, success_rate


def test_world_vocabulary():
    assert {"red", "green", "blue", "yellow"} <= set(COLORS)
    assert {"circle", "square", "triangle"} <= set(SHAPES)
    assert caption("red", "circle") == "a red circle"
    objs = [ToyObject("red", "circle"), ToyObject("blue", "square", 0.2, 0.2, 0.3)]
    assert scene_caption(objs, "sand") == "a red circle and a blue square on a sand background"


def test_render_scene_shape_range_and_default_size():
    img = render_scene([ToyObject("yellow", "triangle", 0.5, 0.5, 0.4)])
    assert img.shape == (1, 3, 32, 32) and img.dtype == torch.float32
    assert img.min() >= -1 and img.max() <= 1
    big = render_scene([ToyObject("yellow", "triangle", 0.5, 0.5, 0.4)], size=64, background="black")
    assert big.shape == (1, 3, 64, 64)
    # the object's colour is at its centre, the background's at a corner
    centre = big[0, :, 36, 32].add(1).div(2).mul(255)
    assert torch.allclose(centre, torch.tensor(COLORS["yellow"], dtype=torch.float32), atol=2)
    assert big[0, :, 0, 0].add(1).div(2).max() < 0.3  # black background


def test_render_scene_rejects_bad_input():
    with pytest.raises(ValueError, match="unknown colour"):
        ToyObject("purple", "circle")
    with pytest.raises(ValueError, match="unknown shape"):
        ToyObject("red", "star")
    with pytest.raises(ValueError, match="unknown background"):
        render_scene([], background="plaid")


def test_random_scene_is_seeded_and_objects_do_not_overlap():
    a, objs_a = random_scene(3)
    b, objs_b = random_scene(3)
    c, _ = random_scene(4)
    assert torch.equal(a, b) and objs_a == objs_b and not torch.equal(a, c)
    for seed in range(40):
        objs, bg = random_layout(seed, keep_free=(0.5, 0.5, 1.0, 1.0))
        assert bg in BACKGROUNDS
        for i, o in enumerate(objs):
            x0, y0, x1, y1 = o.box
            assert 0 <= x0 and x1 <= 1 and 0 <= y0 and y1 <= 1
            assert x1 <= 0.5 or y1 <= 0.5, "keep_free region stays empty"
            for p in objs[i + 1:]:
                assert x1 <= p.box[0] or p.box[2] <= x0 or y1 <= p.box[1] or p.box[3] <= y0


def test_judge_reads_clean_scenes_exactly():
    n = 0
    for seed in range(60):
        objs, bg = random_layout(seed)
        img = render_scene(objs, None, bg)
        for o in objs:
            v = judge(img, object_mask(o))[0]
            assert (v.colour, v.shape) == (o.colour, o.shape), (seed, o, v)
            assert v.holds(o.colour, o.shape) and v.shape_iou > 0.7
            n += 1
    assert n > 50


def test_judge_sees_nothing_in_an_empty_region_and_is_batched():
    objs = [ToyObject("red", "circle", 0.25, 0.25, 0.35)]
    img = render_scene(objs, background="white")
    mask, box = empty_box(objs, side=0.4)
    assert box[0] >= 0.4 or box[1] >= 0.4
    two = torch.cat([img, render_scene([ToyObject("blue", "square", 0.7, 0.7, 0.3)], background="white")])
    v = judge(two, mask)
    assert v[0].colour is None and v[0].shape is None and v[0].coverage < 0.08
    assert (v[1].colour, v[1].shape) == ("blue", "square")
    assert success_rate(v, "blue", "square") == 0.5


def test_judge_rejects_mismatched_inputs():
    with pytest.raises(ValueError, match="mask must be"):
        judge(torch.zeros(1, 3, 32, 32), torch.ones(1, 1, 16, 16))


def test_judge_is_independent_of_the_guiding_clip():
    import ast
    import inspect

    import blendlab.toyworld.judge as j

    tree = ast.parse(inspect.getsource(j))
    names = {a.name for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom)) for a in n.names}
    mods = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert "clip" not in names and not any("clip" in m or "models" in m or "guidance" in m for m in mods)


# -- training scripts (a few steps; CI never trains) ---------------------------------------------

@pytest.mark.parametrize("kind", ["unet", "clip"])
def test_training_script_runs_resumes_and_writes_a_card(kind, tmp_path):
    import importlib

    mod = importlib.import_module(f"blendlab.toyworld.train_{kind}")
    args = ["--steps", "2", "--batch", "4", "--out", str(tmp_path), "--seed", "1"]
    mod.main(args)
    card = json.loads((tmp_path / f"toy_{kind}.json").read_text())
    assert card["steps"] == 2 and card["data_seed"] == 1 and card["torch_version"] == torch.__version__
    assert {"wall_minutes", "cpu_minutes", "final_losses", "machine", "sha256"} <= set(card)
    assert card["final_losses"]["loss"] > 0
    assert card["sha256"] == sha256_file(tmp_path / f"toy_{kind}.pt")
    # running again with more steps resumes from the state file
    mod.main(["--steps", "3", "--batch", "4", "--out", str(tmp_path), "--seed", "1"])
    card = json.loads((tmp_path / f"toy_{kind}.json").read_text())
    assert card["steps"] == 3 and card["runs"] == 2


def test_training_data_is_a_pure_function_of_seed_and_step():
    from blendlab.toyworld.train_clip import view_batch, vocabulary
    from blendlab.toyworld.train_unet import scene_batch

    assert torch.equal(scene_batch(0, 5, 3), scene_batch(0, 5, 3))
    assert not torch.equal(scene_batch(0, 5, 3), scene_batch(0, 6, 3))
    meanings = [m for _, m in vocabulary()]
    x1, t1 = view_batch(0, 2, 4, meanings, 28)
    x2, t2 = view_batch(0, 2, 4, meanings, 28)
    assert torch.equal(x1, x2) and torch.equal(t1, t2) and x1.shape == (4, 3, 28, 28)
    assert (t1.sum(1) > 0).all(), "every view has at least one true caption"


def test_caption_truth_rules():
    from blendlab.toyworld.train_clip import is_true, vocabulary

    truth = {text: is_true(m, [("red", "circle")], "sand") for text, m in vocabulary()}
    assert truth["a red circle"] and truth["a red shape"] and truth["a circle"]
    assert truth["a red circle on a sand background"] and truth["a sand background"]
    assert not truth["a blue circle"] and not truth["a red square"] and not truth["an empty sand background"]
    assert not truth["a red circle on a black background"]
    empty = {text: is_true(m, [], "black") for text, m in vocabulary()}
    assert empty["an empty black background"] and not empty["a red shape"]


def test_hard_negatives_twins_and_blobs():
    from blendlab.toyworld.train_clip import is_true, make_view, twin_view, view_batch, vocabulary

    rng = np.random.default_rng(3)
    twins = 0
    for _ in range(30):
        view = make_view(rng)
        twin = twin_view(rng, view)
        if twin is None:
            continue
        twins += 1
        focus = view[7]
        a, b = view[5][focus], twin[5][focus]
        assert (a.colour, a.x, a.y, a.size) == (b.colour, b.x, b.y, b.size) and a.shape != b.shape
        assert torch.equal(view[1], twin[1]), "same mask"
    assert twins > 5
    meanings = dict(vocabulary())
    for _ in range(20):
        image, mask, fill, visible, bg, *_ = make_view(rng, blobs=1.0)
        (colour, shape), *_ = visible
        assert shape == "blob"
        assert is_true(meanings[f"a {colour} shape"], visible, bg)
        assert not any(is_true(meanings[f"a {colour} {s}"], [visible[0]], bg) for s in SHAPES)
    x, truth = view_batch(0, 1, 16, [m for _, m in vocabulary()], 28, twins=0.5, blobs=0.3)
    assert x.shape == (16, 3, 28, 28) and (truth.sum(1) > 0).all()


def test_split_views_are_two_colours_and_no_named_shape():
    from blendlab.toyworld.judge import judge
    from blendlab.toyworld.train_clip import is_true, make_view, vocabulary

    rng = np.random.default_rng(5)
    meanings = dict(vocabulary())
    for _ in range(12):
        image, mask, fill, visible, bg, *_ = make_view(rng, splits=1.0)
        (c1, s1), (c2, s2) = visible[:2]
        assert s1 == s2 == "blob" and c1 != c2 and bg is None
        assert is_true(meanings[f"a {c1} shape"], visible, bg) and is_true(meanings[f"a {c2} shape"], visible, bg)
        parts = visible[:2]
        assert not any(is_true(meanings[f"a {c} {s}"], parts, bg) for c in (c1, c2) for s in SHAPES)
        shares = judge(image[None], mask[None])[0].colour_shares
        assert shares[c1] > 0.1 and shares[c2] > 0.1, "both colours are drawn inside the mask"


def test_training_run_log_records_each_phase(tmp_path):
    from blendlab.toyworld import train_clip

    train_clip.main(["--steps", "1", "--batch", "4", "--out", str(tmp_path)])
    train_clip.main(["--steps", "2", "--batch", "4", "--twins", "0.5", "--blobs", "0.2", "--out", str(tmp_path)])
    card = json.loads((tmp_path / "toy_clip.json").read_text())
    log = card["run_log"]
    assert [(r["start_step"], r["end_step"]) for r in log] == [(0, 1), (1, 2)]
    assert log[0]["args"]["twins"] == 0.0 and log[1]["args"]["twins"] == 0.5 and log[1]["args"]["blobs"] == 0.2


def test_stop_at_ends_a_run_early_and_the_next_run_resumes(tmp_path):
    from blendlab.toyworld import train_unet

    train_unet.main(["--steps", "3", "--stop-at", "1", "--batch", "2", "--out", str(tmp_path)])
    assert json.loads((tmp_path / "toy_unet.json").read_text())["steps"] == 1
    train_unet.main(["--steps", "3", "--batch", "2", "--out", str(tmp_path)])
    card = json.loads((tmp_path / "toy_unet.json").read_text())
    assert card["steps"] == 3 and [r["end_step"] for r in card["run_log"]] == [1, 3]


def test_half_weights_are_float16_load_into_the_toy_unet_and_say_so_on_the_card(tmp_path):
    from blendlab.toyworld import train_unet

    train_unet.main(["--steps", "1", "--batch", "2", "--notices", "0.5", "--out", str(tmp_path)])
    full = torch.load(tmp_path / "toy_unet.pt", weights_only=True)
    train_unet.main(["--steps", "2", "--batch", "2", "--notices", "0.5", "--half", "--out", str(tmp_path)])
    half = torch.load(tmp_path / "toy_unet.pt", weights_only=True)
    card = json.loads((tmp_path / "toy_unet.json").read_text())
    assert card["weights_dtype"] == "float16" and "notice card" in card["data"]
    assert all(v.dtype == torch.float16 for v in half.values() if v.is_floating_point())
    assert all(v.dtype == torch.float32 for v in full.values() if v.is_floating_point())
    assert (tmp_path / "toy_unet.pt").stat().st_size < 0.6 * 5.6e6
    import blendlab as bl

    models = bl.load_models("toy", device="cpu", unet_path=tmp_path / "toy_unet.pt", progress=False)
    p = next(models.unet.parameters())
    assert p.dtype == torch.float32
    k, v = next((k, v) for k, v in half.items() if v.is_floating_point())
    assert torch.equal(models.unet.state_dict()[k], v.float())


def test_a_nan_loss_stops_training_and_leaves_the_last_checkpoint_untouched(tmp_path, monkeypatch):
    from blendlab.toyworld import train_clip

    train_clip.main(["--steps", "1", "--batch", "4", "--out", str(tmp_path)])
    before = {f.name: f.read_bytes() for f in tmp_path.iterdir()}
    real = train_clip.contrastive_loss
    monkeypatch.setattr(train_clip, "contrastive_loss", lambda *a: real(*a) * float("nan"))
    with pytest.raises(FloatingPointError, match=r"step 2: loss became nan; stopped without writing anything"):
        train_clip.main(["--steps", "3", "--batch", "4", "--out", str(tmp_path)])
    assert {f.name: f.read_bytes() for f in tmp_path.iterdir()} == before


def test_a_degenerate_perspective_draw_does_not_put_nan_into_the_clip_data():
    from blendlab.toyworld.train_clip import view_batch, vocabulary

    # step 5912 of seed 0 draws a perspective that folds one view's top edge (NaN pixels before the fix)
    x, truth = view_batch(0, 5912, 128, [m for _, m in vocabulary()], 28, twins=0.5, blobs=0.2, splits=0.2)
    assert torch.isfinite(x).all()


def test_the_shipped_measurements_are_of_the_shipped_weights_and_show_as_tables():
    from blendlab.toyworld.measured import CLAIMS, claims_source, claims_table, measured_claims

    report = measured_claims()  # raises if the JSON measured other weights than the ones shipped
    assert not report["quick"] and report["samples"] >= 16
    assert report["settings"] == dict(clip_guidance_lambda=1000, range_lambda=50, aug_num=8,
                                      timestep_respacing="100", skip_timesteps=25)
    for claim in CLAIMS:
        table = claims_table(claim, report)
        assert len(table) >= 2 and str(table)
    guided = claims_table("guided", report)
    assert guided[0]["colour %"] == round(100 * report["guided"]["colour_rate"])
    assert "the paper's settings" in claims_source(report)


def test_measurements_of_other_weights_are_refused_with_the_command_to_re_run(tmp_path):
    from blendlab.errors import CheckpointError
    from blendlab.toyworld.measured import EVAL_FILE, claims_table, measured_claims

    report = json.loads(EVAL_FILE.read_text())
    report["weights"]["clip"] = "0" * 64
    stale = tmp_path / "stale.json"
    stale.write_text(json.dumps(report))
    with pytest.raises(CheckpointError, match=r"other toy clip weights.*re-run `python benchmarks/toyworld_eval.py"):
        measured_claims(stale)
    assert measured_claims(stale, check_weights=False)["weights"]["clip"] == "0" * 64
    with pytest.raises(FileNotFoundError, match="no toy-world measurements"):
        measured_claims(tmp_path / "missing.json")
    with pytest.raises(ValueError, match="unknown claim 'speed'"):
        claims_table("speed", report)


def test_parse_caption_is_the_inverse_of_caption():
    from blendlab.toyworld import caption, parse_caption

    for colour in COLORS:
        for shape in SHAPES:
            assert parse_caption(caption(colour, shape)) == (colour, shape)
        assert parse_caption(f"a {colour} shape") == (colour, None)
    assert parse_caption("  A  Red   CIRCLE ") == ("red", "circle")
    for other in ("", None, "red", "a circle", "a purple circle", "a red star", "the red circle", "a red circle now"):
        assert parse_caption(other) == (None, None), other
