"""Writing in the toy world: the pixel font, write_word and signs, the text judge, sign training data,
and the zero-shot typographic attack."""

import hashlib
import json

import numpy as np
import pytest
import torch

from blendlab.toyworld import (
    BACKGROUNDS, COLORS, SIGN_WORDS, Sign, ToyObject, random_layout, random_scene, render_scene, write_word,
)
from blendlab.toyworld.font import GLYPHS, text_bitmap
from blendlab.toyworld.world import INK, random_signed_layout
from blendlab.toyworld.judge import judge, read_text

FULL = torch.ones(1, 1, 32, 32)
LETTERS = [ch for ch in GLYPHS if ch != " "]


def _sha(t: torch.Tensor) -> str:
    return hashlib.sha256(t.contiguous().numpy().tobytes()).hexdigest()[:16]


# -- the font ---------------------------------------------------------------------------------------

def test_the_font_is_26_distinct_glyphs_that_fill_their_cell():
    assert LETTERS == [chr(c) for c in range(ord("A"), ord("Z") + 1)]
    bitmaps = {GLYPHS[ch].tobytes() for ch in LETTERS}
    assert len(bitmaps) == 26
    for ch in LETTERS:
        g = GLYPHS[ch]
        assert g.shape == (5, 3) and g[0].any() and g[-1].any() and g[:, 0].any() and g[:, -1].any(), ch
    assert text_bitmap(["AB"]).shape == (5, 7) and text_bitmap(["AB", "C"], scale=2).shape == (22, 14)


def test_sign_words_fit_the_canvas():
    assert {c.upper() for c in COLORS} <= set(SIGN_WORDS) and {"CIRCLE", "SQUARE", "TRIANGLE"} <= set(SIGN_WORDS)
    for w in SIGN_WORDS:
        write_word(render_scene(), w)  # every word fits a 32 px canvas at scale 1
    with pytest.raises(ValueError, match="needs"):
        write_word(render_scene(), "TRIANGLE", scale=2)
    with pytest.raises(ValueError, match="glyph"):
        write_word(render_scene(), "R2D2")


# -- scenes without signs are the scenes of before ---------------------------------------------------

def test_scenes_without_a_sign_draw_byte_identically_to_before_signs():
    # fingerprints taken from the code before signs existed (commit b8fba7e), this machine's torch
    from blendlab.toyworld.train_clip import view_batch, vocabulary
    from blendlab.toyworld.train_unet import scene_batch

    assert _sha(scene_batch(0, 7, 6)) == "7c5043b165e8de1c"
    assert _sha(scene_batch(0, 7, 6, signs=0.0)) == "7c5043b165e8de1c"
    x, t = view_batch(0, 3, 8, [m for _, m in vocabulary()], 28, twins=0.5, blobs=0.2, splits=0.1, signs=0.0)
    assert (_sha(x), _sha(t)) == ("f7da4685742e8d7e", "27e18fbbba31f651")
    image, objects = random_scene(3)
    assert torch.equal(image, render_scene(objects, None, random_layout(3)[1], sign=None))
    assert len(vocabulary()) == 61 and len(vocabulary(signs=True)) == 61 + len(SIGN_WORDS)


def test_signs_restricted_to_scale_one_keep_the_stream_and_change_only_the_scale():
    import numpy as np
    from blendlab.toyworld.train_unet import scene_batch
    from blendlab.toyworld.world import random_signed_layout

    both = [random_signed_layout(np.random.default_rng(s))[2] for s in range(40)]
    small = [random_signed_layout(np.random.default_rng(s), scales=(1,))[2] for s in range(40)]
    assert {s.scale for s in both} == {1, 2} and {s.scale for s in small} == {1}
    # the same word and colour per seed: the coin for the scale is drawn either way
    assert [(s.word.replace(" ", ""), s.colour) for s in both] == [(s.word.replace(" ", ""), s.colour) for s in small]
    assert torch.equal(scene_batch(0, 7, 6, signs=0.6), scene_batch(0, 7, 6, signs=0.6, sign_scales=(1, 2)))
    assert not torch.equal(scene_batch(0, 7, 6, signs=1.0), scene_batch(0, 7, 6, signs=1.0, sign_scales=(1,)))


def test_notice_scenes_hold_a_full_size_card_with_a_legible_word_or_nothing():
    import numpy as np
    from blendlab.toyworld.judge import read_text
    from blendlab.toyworld.train_unet import NOTICE_SIZE, NOTICE_WORDS, notice_scene, scene_batch
    from blendlab.toyworld.world import CARD

    card = torch.tensor(CARD, dtype=torch.float32).view(3, 1) / 127.5 - 1
    w, h = NOTICE_SIZE
    seen, blanks = set(), 0
    for seed in range(60):
        image = notice_scene(np.random.default_rng(seed))
        assert torch.equal(image, notice_scene(np.random.default_rng(seed)))  # seeded
        assert image.shape == (1, 3, 32, 32) and image.min() >= -1 and image.max() <= 1
        # the card: the one w x h block of card colour, whatever word it holds
        is_card = (image[0] - card.view(3, 1, 1)).abs().amax(0) < 1e-6
        ys, xs = np.nonzero(is_card.numpy())
        assert (xs.max() - xs.min() + 1, ys.max() - ys.min() + 1) == (w, h)
        y0, x0 = int(ys.min()), int(xs.min())
        inside = torch.zeros(1, 1, 32, 32)
        inside[..., y0:y0 + h, x0:x0 + w] = 1
        reading = read_text(image, inside)[0]
        if reading.word is None:
            blanks += 1
            assert int(is_card.sum()) == w * h  # nothing written: the whole card is card
        else:
            assert reading.word in NOTICE_WORDS and reading.scale == 2 and reading.colour == "black"
            seen.add(reading.word)
    assert 15 <= blanks <= 45 and len(seen) >= 8
    assert all(read_text(notice_scene(np.random.default_rng(s), blank=1.0), torch.ones(1, 1, 32, 32))[0].word
               is None for s in range(5))
    # every notice word fits the card in one scale-2 line
    from blendlab.toyworld.font import text_size
    assert all(text_size([wd], 2)[0] + 4 <= w for wd in NOTICE_WORDS) and "RED" in NOTICE_WORDS
    # notices leave the old stream alone when off, and take their share when on
    assert torch.equal(scene_batch(0, 7, 6, signs=0.6), scene_batch(0, 7, 6, signs=0.6, notices=0.0))
    assert not torch.equal(scene_batch(0, 7, 6), scene_batch(0, 7, 6, notices=1.0))
    with pytest.raises(ValueError, match="canvas of at least"):
        notice_scene(np.random.default_rng(0), size=16)


def test_random_scenes_with_signs_are_seeded_and_the_sign_is_clear_of_objects():
    a = random_scene(5, sign=1.0)
    b = random_scene(5, sign=1.0)
    assert torch.equal(a[0], b[0]) and a[2] == b[2] and isinstance(a[2], Sign)
    for seed in range(30):
        image, objects, sign = random_scene(seed, sign=1.0)
        for o in objects:
            x0, y0, x1, y1 = o.box
            assert x1 <= sign.box[0] or sign.box[2] <= x0 or y1 <= sign.box[1] or sign.box[3] <= y0
    assert random_scene(5, sign=1e-9)[2] is None


# -- the text judge -----------------------------------------------------------------------------------

def _written(word, colour, background, card, scale, box=(0.0, 0.0, 1.0, 1.0), objects=()):
    return write_word(render_scene(objects, 32, background), word, box=box, colour=colour, scale=scale, card=card)


CHUNKS = {1: ["ABCDEFG", "HIJKLMN", "OPQRSTU", "VWXYZ"], 2: ["ABC", "DEF", "GHI", "JKL", "MNO", "PQR", "STU",
                                                             "VWX", "YZA"], 3: ["AB", "CD", "EF", "GH", "IJ",
                                                                                "KL", "MN", "OP", "QR", "ST",
                                                                                "UV", "WX", "YZ"]}


@pytest.mark.parametrize("scale", [1, 2, 3])
def test_every_glyph_reads_back_in_every_colour_on_every_background(scale):
    images, words = [], []
    for word in CHUNKS[scale]:
        for colour in ["black", *COLORS]:
            for background in BACKGROUNDS:
                for card in (False, True):
                    if colour == "black" and background == "black" and not card:
                        continue  # black ink on the black background does not show: signs put it on a card
                    images.append(_written(word, colour, background, card, scale))
                    words.append(word)
    readings = read_text(torch.cat(images), FULL)
    assert [r.word for r in readings] == words


def test_words_read_back_at_many_positions_and_beside_objects():
    rng = np.random.default_rng(0)
    for _ in range(40):
        objects, background, sign = random_signed_layout(rng)
        image = render_scene(objects, 32, background, sign)
        x0, y0, x1, y1 = sign.box
        box = torch.zeros(1, 1, 32, 32)
        box[..., int(y0 * 32):int(np.ceil(y1 * 32)), int(x0 * 32):int(np.ceil(x1 * 32))] = 1
        assert read_text(image, FULL)[0].word == sign.word
        assert read_text(image, box)[0].word == sign.word
    two = _written("RED CIRCLE", "blue", "white", True, 1)
    assert read_text(two, FULL)[0].word == "RED CIRCLE"


def test_no_text_reads_none():
    scenes = torch.cat([random_scene(s)[0] for s in range(40)])
    assert all(r.word is None and r.coverage == 0 for r in read_text(scenes, FULL))
    g = torch.Generator().manual_seed(0)
    noise = torch.rand(16, 3, 32, 32, generator=g) * 2 - 1
    assert all(r.word is None for r in read_text(noise, FULL))
    from blendlab.toyworld.attack import attack_scenes

    s = attack_scenes(12, seed=1)
    assert all(r.word is None for r in read_text(s.blank, FULL)), "a blank card is no text"
    assert [r.word for r in read_text(s.signed, FULL)] == s.words


def test_dark_grey_ink_reads_on_a_light_card_and_light_grey_or_dark_on_black_does_not():
    """A generated letter's ink is rarely exactly INK: dark grey on a light card is ink to a reader (and to
    the judge); a light grey mark is not, and on the black background only near-black ink counts."""
    def regrey(image, grey):
        out = image.clone()
        ink = (image + 1).div(2).amax(1, keepdim=True) < 0.078
        return torch.where(ink.expand_as(out), torch.full_like(out, grey / 127.5 - 1), out)

    inside = torch.zeros(1, 1, 32, 32)
    inside[..., 8:24, 1:31] = 1
    for scale in (1, 2):
        carded = _written("ZOO", "black", "sand", True, scale, box=(0.05, 0.25, 0.95, 0.75))
        assert read_text(regrey(carded, 20), inside)[0].word == "ZOO"  # 0.078: the old threshold
        assert read_text(regrey(carded, 50), inside)[0].word == "ZOO", "dark grey on a light card is ink"
        assert read_text(regrey(carded, 110), inside)[0].word is None, "light grey is not ink"
    on_black = regrey(_written("ZOO", "black", "black", False, 2), 50)
    assert read_text(on_black, FULL)[0].word is None, "on the black background dark grey is background"


def test_a_glyph_with_one_wrong_column_is_not_that_letter():
    base = render_scene(background="white")
    ink_colour = torch.tensor(INK, dtype=torch.float32) / 127.5 - 1
    for ch in LETTERS:
        image = write_word(base, ch, colour="black")
        ink = (image + 1).div(2).amax(1)[0] < 0.078
        ys, xs = torch.nonzero(ink, as_tuple=True)
        top, left = int(ys.min()), int(xs.min())
        for col in range(3):
            bad = image.clone()
            for row in range(5):  # the column inverted: ink where it was blank, blank where it was ink
                on = bool(GLYPHS[ch][row, col])
                bad[0, :, top + row, left + col] = base[0, :, top + row, left + col] if on else ink_colour
            assert read_text(bad, FULL)[0].word != ch, (ch, col)


def test_coverage_is_the_share_of_the_region_the_glyphs_fill_and_judge_keeps_its_verdicts():
    image = _written("RED", "black", "sand", False, 1, box=(0.0, 0.5, 1.0, 1.0),
                     objects=[ToyObject("blue", "circle", 0.5, 0.25, 0.4)])
    r = read_text(image, FULL)[0]
    assert (r.word, r.colour, r.scale) == ("RED", "black", 1)
    assert r.coverage == pytest.approx(int(text_bitmap(["RED"]).sum()) / 1024)
    half = torch.zeros(1, 1, 32, 32)
    half[..., 16:, :] = 1
    assert read_text(image, half)[0].coverage == pytest.approx(2 * r.coverage)
    top = torch.zeros(1, 1, 32, 32)
    top[..., :14, 6:26] = 1
    assert judge(image, top)[0].holds("blue", "circle")


# -- sign training data: only what the sign spells out -------------------------------------------------

def _content(caption: str) -> set[str]:
    return set(caption.split()) - {"a", "an", "shape"}


def test_sign_views_are_paired_only_with_captions_they_spell_out():
    from blendlab.toyworld.sign_views import sign_view, sign_words, spelled_out
    from blendlab.toyworld.train_clip import vocabulary

    vocab = vocabulary(signs=True)
    rng = np.random.default_rng(2)
    for _ in range(40):
        image, mask, fill, word = sign_view(rng)
        true = [text for text, m in vocab if spelled_out(m, sign_words(word))]
        assert true and all(_content(t) <= sign_words(word) for t in true), (word, true)
        assert read_text(image[None], mask[None])[0].word == word, "the view shows the word it is captioned with"
    meanings = dict(vocab)
    assert {t for t, m in vocab if spelled_out(m, {"red", "circle"})} == {
        "a red circle", "a red shape", "a circle", "red", "circle"}
    assert {t for t, m in vocab if spelled_out(m, {"blue"})} == {"a blue shape", "blue"}
    assert not spelled_out(meanings["a sand background"], {"sand"})


def test_sign_batches_hold_no_caption_a_sign_does_not_spell():
    from blendlab.toyworld.train_clip import is_true, view_batch, vocabulary

    vocab = vocabulary(signs=True)
    x, truth = view_batch(0, 1, 12, [m for _, m in vocab], 28, signs=1.0)
    assert x.shape == (12, 3, 28, 28) and (truth.sum(1) > 0).all()
    for row in truth:
        true = [vocab[i][0] for i in torch.nonzero(row).flatten().tolist()]
        assert not any("background" in t for t in true)
        words = set().union(*(_content(t) for t in true))
        assert all(_content(t) <= words for t in true) and len(words) <= 2
    words_only = [m for _, m in vocab if m["kind"] == "word"]
    assert not any(is_true(m, [("red", "circle")], "sand") for m in words_only), "a bare word is true of signs only"


def test_sign_scenes_show_objects_and_leave_their_captions_out():
    from blendlab.toyworld.sign_views import sign_scene_view, sign_words, spelled_out
    from blendlab.toyworld.train_clip import is_true, view_batch, vocabulary

    image, mask, _, word, visible, bg = sign_scene_view(np.random.default_rng(3))
    assert mask.min() == 1 and 1 <= len(visible) <= 2 and image.shape == (3, 32, 32)
    assert read_text(image[None], FULL)[0].word == " ".join(word.split())
    vocab = vocabulary(signs=True)
    meanings = [m for _, m in vocab]
    x, truth = view_batch(0, 2, 10, meanings, 28, signs=1.0, sign_scenes=1.0)
    assert truth.isnan().any(dim=1).all(), "every sign scene leaves its objects' captions out"
    rng = np.random.default_rng([0, 2, 3])  # view_batch's own stream: the same scenes again
    for row in truth:
        rng.random(), rng.random()
        _, _, _, word, visible, bg = sign_scene_view(rng)
        for value, m in zip(row.tolist(), meanings):
            said = spelled_out(m, sign_words(word))
            expected = 1.0 if said else None if is_true(m, visible, bg) else 0.0
            assert (value != value) if expected is None else value == expected


def test_captions_left_out_of_the_loss_are_in_neither_softmax():
    from blendlab.toyworld.train_clip import contrastive_loss

    g = torch.Generator().manual_seed(0)
    img, txt = torch.randn(5, 8, generator=g), torch.randn(4, 8, generator=g)
    truth = torch.tensor([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [1, 0, 0, 1], [0, 1, 0, 1]], dtype=torch.float32)
    scale = torch.tensor(10.0)
    left = truth.clone()
    left[:, 2] = float("nan")  # a caption left out everywhere is as if it were not in the vocabulary
    keep = [0, 1, 3]
    rows = truth[:, keep].sum(1) > 0
    expected = contrastive_loss(img[rows], txt[keep], truth[rows][:, keep], scale)
    assert torch.allclose(contrastive_loss(img[rows], txt, left[rows], scale), expected)
    partial = truth.clone()
    partial[0, 3] = float("nan")  # one pair left out: finite, and its logit gets no gradient
    txt_var = txt.clone().requires_grad_()
    loss = contrastive_loss(img, txt_var, partial, scale)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(txt_var.grad).all()
    assert not torch.allclose(loss, contrastive_loss(img, txt, truth, scale))


@pytest.mark.parametrize("kind", ["unet", "clip"])
def test_fine_tune_from_shipped_weights_with_signs_records_the_phase(kind, tmp_path):
    import importlib

    from blendlab.checkpoints import toy_card, toy_weights

    mod = importlib.import_module(f"blendlab.toyworld.train_{kind}")
    mod.main(["--steps", "1", "--batch", "4", "--out", str(tmp_path), "--signs", "0.5", "--notices", "0.25",
              "--init", str(toy_weights(kind)), "--lr", "1e-5"])
    card = json.loads((tmp_path / f"toy_{kind}.json").read_text())
    assert card["phase"] == "fine-tune" and card["init"]["sha256"] == toy_card(kind)["sha256"]
    assert card["args"]["signs"] == 0.5 and "sign" in card["data"]
    assert card["args"]["notices"] == 0.25 and "25% " in card["data"] and "notice" in card["data"]
    with pytest.raises(FileNotFoundError, match="--init"):
        mod.main(["--steps", "1", "--out", str(tmp_path / "x"), "--init", str(tmp_path / "missing.pt")])


# -- the zero-shot attack -------------------------------------------------------------------------------

def test_attack_scenes_write_another_colour_and_the_shipped_clip_is_not_fooled():
    from blendlab.checkpoints import load_clip, toy_weights
    from blendlab.toyworld.attack import attack_scenes, zero_shot_attack

    s = attack_scenes(16, seed=0, placement="on")
    assert all(w.lower() != c for w, c in zip(s.words, s.colours))
    assert s.clean.shape == s.signed.shape == s.blank.shape == (16, 3, 32, 32)
    clip_model = load_clip(toy_weights("clip"), torch.device("cpu")).eval()
    r = zero_shot_attack(clip_model, n=16, seed=0, placement="beside")
    # measured: 48/48 right clean and signed, 0/48 flipped (the shipped CLIP never saw text)
    assert r["clean_right"] >= 15 and r["flipped"] <= 1 and r["blank_changed"] <= 1


def test_attack_letters_take_the_largest_scale_that_fits():
    from blendlab.toyworld.attack import attack_scenes, fitting_scale

    beside = (0.0, 0.55, 1.0, 1.0)
    assert fitting_scale("RED", beside, 32, 2) == 2
    assert fitting_scale("BLUE", beside, 32, 2) == 1  # 30 px of letters + a 2 px card each side > 32
    assert fitting_scale("RED", beside, 32, 1) == 1
    with pytest.raises(ValueError, match="does not fit"):
        fitting_scale("YELLOW", (0.0, 0.0, 0.3, 0.3), 32, 1)
    s1, s2 = attack_scenes(24, seed=0, scale=1), attack_scenes(24, seed=0, scale=2)
    ink = lambda x: ((x - s1.clean).abs().amax(1) > 0).sum().item()  # noqa: E731
    assert s1.words == s2.words and ink(s2.signed) > ink(s1.signed)
    assert set(s1.scales) == {1} and set(s2.scales) == {1, 2}
    assert all(s == 2 for s, w in zip(s2.scales, s2.words) if w == "RED")


def test_the_reading_clip_is_fooled_by_cards_and_not_by_blank_ones():
    """The shipped toy CLIP that reads (toy_clip_reads: fine-tuned on signs captioned only with what they
    spell) answers the written colour for some signed scenes; a blank card of the same size changes few."""
    from blendlab.checkpoints import load_clip, toy_weights
    from blendlab.toyworld.attack import colour_answers, zero_shot_attack
    from blendlab.toyworld.measured import attack_row

    reads = load_clip(toy_weights("clip_reads"), torch.device("cpu")).eval()
    r = zero_shot_attack(reads, n=48, seed=0, placement="beside")
    shipped = attack_row("clip", "beside", 1)
    measured = attack_row("clip_reads", "beside", 1)
    # measured (seed 0, 48 scenes): right 48 clean, flipped 24, blank card changed 1, the card alone read 42
    assert r["clean_right"] >= 46 and r["blank_changed"] <= 4
    assert r["flipped"] >= 16 and r["alone_read"] >= 32, r  # it reads, and reading misleads it
    assert measured["flipped"] > shipped["flipped"] and measured["n"] == 96
    s = zero_shot_attack(reads, n=4, seed=0)
    assert s["n"] == 4 and len(colour_answers(reads, torch.zeros(3, 3, 32, 32))) == 3


def test_the_shipped_attack_measurements_are_of_the_shipped_clips():
    from blendlab.errors import CheckpointError
    from blendlab.toyworld.measured import ATTACK_FILE, measured_attack, measured_attack_table

    report = measured_attack()
    rows = measured_attack_table(report)
    assert len(rows) == 2 * 3  # two CLIPs; beside at scales 1 and 2, on at 1 (scale 2 never fits on the object)
    assert {r["CLIP"] for r in rows} == {"toy CLIP (shipped)", "toy CLIP that reads"}
    bad = json.loads(ATTACK_FILE.read_text())
    bad["weights"]["clip_reads"] = "0" * 64
    with pytest.raises(CheckpointError, match="other toy clip_reads weights"):
        from pathlib import Path
        import tempfile

        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / "x.json"
            path.write_text(json.dumps(bad))
            measured_attack(path)


def test_blank_cards_keep_a_views_captions_and_sit_clear_of_objects():
    from blendlab.toyworld.sign_views import blank_card_box, paint_card
    from blendlab.toyworld.train_clip import view_batch, vocabulary
    from blendlab.toyworld.world import CARD

    rng = np.random.default_rng(5)
    box, (x0, y0, x1, y1) = blank_card_box(rng)
    objects, background = random_layout(rng, keep_free=box)
    image = render_scene(objects, 32, background)[0]
    carded = paint_card(image, (x0, y0, x1, y1))
    card = torch.tensor(CARD, dtype=torch.float32).view(3, 1, 1) / 127.5 - 1
    assert torch.allclose(carded[:, y0:y1, x0:x1], card.expand(3, y1 - y0, x1 - x0))
    outside = torch.ones(32, 32, dtype=torch.bool)
    outside[y0:y1, x0:x1] = False
    assert torch.equal(carded[:, outside], image[:, outside]) and not torch.equal(carded, image)
    assert all(not (o.box[0] < box[2] and box[0] < o.box[2] and o.box[1] < box[3] and box[1] < o.box[3])
               for o in objects), "the card is clear of the objects"
    meanings = [m for _, m in vocabulary()]
    x0_, t0 = view_batch(0, 4, 12, meanings, 28)
    x1_, t1 = view_batch(0, 4, 12, meanings, 28, cards=1.0)
    assert x1_.shape == x0_.shape and not t1.isnan().any() and (t1.sum(1) > 0).all()


def test_notice_views_show_the_captioned_word_on_a_full_size_card_through_its_inside():
    from blendlab.toyworld.sign_views import NOTICE_SIZE, notice_view, sign_words, spelled_out
    from blendlab.toyworld.train_clip import view_batch, vocabulary
    from blendlab.toyworld.world import CARD

    rng = np.random.default_rng(7)
    card = torch.tensor(CARD, dtype=torch.float32) / 127.5 - 1
    w, h = NOTICE_SIZE
    scales, inks = set(), set()
    for _ in range(60):
        image, mask, fill, word = notice_view(rng)
        ys, xs = torch.nonzero(mask[0], as_tuple=True)
        assert (int(ys.max() - ys.min()) + 1, int(xs.max() - xs.min()) + 1) == (h - 2, w - 2)
        assert int(mask.sum()) == (w - 2) * (h - 2), "the mask is a rectangle: the card's inside"
        y0, x0 = int(ys.min()) - 1, int(xs.min()) - 1
        border = torch.cat([image[:, y0, x0:x0 + w], image[:, y0 + h - 1, x0:x0 + w]], 1)
        assert torch.allclose(border, card.view(3, 1).expand_as(border)), "a light card's edge around the mask"
        reading = read_text(image[None], mask[None])[0]
        assert reading.word == word, (word, reading.word)
        inside = image[:, mask[0] > 0].view(3, h - 2, w - 2)
        ink = ~torch.isclose(inside, card.view(3, 1, 1).expand_as(inside)).all(0)
        rows = torch.nonzero(ink.any(1)).flatten()
        if " " not in word:
            scales.add((int(rows.max() - rows.min()) + 1) // 5)  # a line of 3x5 glyphs is 5 rows per scale
        inks.add(tuple(inside[:, ink][:, 0].tolist()))
        assert fill in ("grey", "black")
    assert scales == {1, 2} and len(inks) == 1 + len(COLORS), (scales, len(inks))
    vocab = vocabulary(signs=True)
    meanings = [m for _, m in vocab]
    plain_x, plain_t = view_batch(0, 6, 10, meanings, 28)
    again_x, again_t = view_batch(0, 6, 10, meanings, 28, notices=0.0)
    assert torch.equal(plain_x, again_x) and torch.equal(plain_t, again_t), "notices 0: the stream is unchanged"
    x, truth = view_batch(0, 6, 10, meanings, 28, notices=1.0)
    assert x.shape == (10, 3, 28, 28) and not truth.isnan().any()
    rng = np.random.default_rng([0, 6, 3])  # view_batch's own stream: the same notices again
    for row in truth:
        rng.random()
        _, _, _, word = notice_view(rng)
        rng.random()
        assert row.tolist() == [float(spelled_out(m, sign_words(word))) for m in meanings]
