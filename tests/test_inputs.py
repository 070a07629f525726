"""Images and masks at the edges: conversions, validation and clear errors."""

import numpy as np
import pytest
import torch
from PIL import Image

import blendlab as bl
from blendlab.images import check_image
from blendlab.masks import check_mask, dilate_mask, erode_mask, extend_canvas, full_mask

from _fast import fast_cfg


def _rgb(h=40, w=60):
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_load_image_range_shape_and_resize(tmp_path):
    arr = _rgb()
    Image.fromarray(arr).save(tmp_path / "a.png")
    x = bl.load_image(tmp_path / "a.png")
    assert x.shape == (1, 3, 40, 60) and x.dtype == torch.float32
    torch.testing.assert_close(x, torch.from_numpy(arr).permute(2, 0, 1)[None].float() / 127.5 - 1)
    y = bl.load_image(tmp_path / "a.png", size=32)
    assert y.shape == (1, 3, 32, 32) and y.min() >= -1 and y.max() <= 1


def test_grayscale_rgba_and_16bit_are_converted(tmp_path):
    gray = np.arange(256, dtype=np.uint8).reshape(16, 16)
    g = bl.load_image(Image.fromarray(gray, "L"))
    assert g.shape == (1, 3, 16, 16) and torch.equal(g[:, 0], g[:, 2])
    rgba = np.dstack([_rgb(16, 16), np.zeros((16, 16), np.uint8)])
    a = bl.load_image(Image.fromarray(rgba, "RGBA"))
    torch.testing.assert_close(a, bl.load_image(rgba[..., :3]))  # alpha dropped, as convert("RGB")
    deep = (np.arange(256, dtype=np.uint16).reshape(16, 16) * 257)
    Image.fromarray(deep).save(tmp_path / "deep.png")  # 16-bit grayscale PNG
    d = bl.load_image(tmp_path / "deep.png")
    assert d.max().item() == pytest.approx(1.0) and d.min().item() == pytest.approx(-1.0)
    torch.testing.assert_close(d, g, atol=1e-5, rtol=0)  # scaled from 65535, not clipped at 255


def test_exif_orientation_is_applied(tmp_path):
    arr = _rgb(20, 40)
    im = Image.fromarray(arr)
    exif = im.getexif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    im.save(tmp_path / "phone.jpg", exif=exif.tobytes())
    assert bl.load_image(tmp_path / "phone.jpg").shape == (1, 3, 40, 20)
    with Image.open(tmp_path / "phone.jpg") as pil:
        assert bl.load_image(pil).shape == (1, 3, 40, 20)


def test_bad_images_get_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="image file not found"):
        bl.load_image(tmp_path / "missing.png")
    (tmp_path / "bad.png").write_bytes(b"not an image at all")
    with pytest.raises(bl.InputError, match="could not read image .*bad.png"):
        bl.load_image(tmp_path / "bad.png")
    Image.fromarray(_rgb()).save(tmp_path / "cut.png")
    data = (tmp_path / "cut.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(bl.InputError, match="corrupt"):
        bl.load_image(tmp_path / "cut.png")
    with pytest.raises(bl.InputError, match=r"\[0, 1\]"):
        bl.load_image(np.full((4, 4, 3), 2.0))
    with pytest.raises(bl.InputError, match="not understood"):
        bl.load_image(torch.zeros(2, 3, 4, 4))
    with pytest.raises(bl.InputError, match="cannot load an image from int"):
        bl.load_image(3)


def test_inputs_are_never_modified():
    arr = _rgb()
    copy = arr.copy()
    t = bl.load_image(arr)
    t2 = bl.load_image(t)
    t2 += 1
    assert np.array_equal(arr, copy) and not torch.equal(t, t2)


def test_save_image_is_atomic_and_round_trips(tmp_path):
    x = bl.load_image(_rgb())
    p = bl.save_image(x, tmp_path / "out" / "x.png")
    torch.testing.assert_close(bl.load_image(p), x)
    assert [f.name for f in (tmp_path / "out").iterdir()] == ["x.png"]
    with pytest.raises(bl.InputError, match="format"):
        bl.save_image(x, tmp_path / "x.unknown")


def test_mask_binarised_as_reference_and_resized_nearest(tmp_path):
    m = np.zeros((64, 64, 3), np.uint8)
    m[10:30, 20:40] = 255
    m[40, 40] = (1, 0, 0)  # faint but non-zero first channel: edit, as the reference's > 0.5 on 0..255
    m[50, 50] = (0, 255, 0)  # only green: the reference reads the first channel, so keep
    Image.fromarray(m).save(tmp_path / "m.png")
    mask = bl.load_mask(tmp_path / "m.png")
    assert mask.shape == (1, 1, 64, 64) and set(mask.unique().tolist()) == {0.0, 1.0}
    assert mask[0, 0, 40, 40] == 1 and mask[0, 0, 50, 50] == 0 and mask.sum() == 20 * 20 + 1
    small = bl.load_mask(tmp_path / "m.png", size=32)
    assert small.shape == (1, 1, 32, 32) and set(small.unique().tolist()) == {0.0, 1.0}
    assert small.sum() == 10 * 10  # PIL NEAREST samples odd pixels: the faint one at (40, 40) drops
    soft = bl.load_mask(np.linspace(0, 1, 16).reshape(4, 4))
    assert soft.sum() == 8  # floats: > 0.5
    inv = bl.load_mask(tmp_path / "m.png", invert=True)
    assert torch.equal(inv, 1 - mask)


def test_check_mask_errors_and_warnings(image):
    empty = torch.zeros(1, 1, 32, 32)
    with pytest.raises(bl.InputError, match="mask is empty"):
        check_mask(empty, image)
    with pytest.warns(UserWarning, match="whole image"):
        check_mask(full_mask(32), image)
    with pytest.raises(bl.InputError, match="same size"):
        check_mask(torch.ones(1, 1, 16, 16), image)
    with pytest.raises(bl.InputError, match="0 or 1"):
        check_mask(torch.full((1, 1, 32, 32), 0.5), image)


def test_sampler_rejects_bad_inputs(tiny, image, mask):
    cfg = fast_cfg()
    with pytest.raises(bl.InputError, match="mask is empty"):
        bl.BlendedSampler(tiny, image, torch.zeros_like(mask), cfg)
    with pytest.raises(bl.InputError, match="your mask covered the whole image"):
        bl.BlendedSampler(tiny, image, torch.ones_like(mask), cfg.replace(invert_mask=True))
    with pytest.raises(bl.InputError, match="works at 32x32"):
        bl.BlendedSampler(tiny, bl.sample_image(size=64), mask, cfg)
    with pytest.raises(bl.InputError, match="mask batch 3 does not match batch_size 2"):
        bl.BlendedSampler(tiny, image, mask.repeat(3, 1, 1, 1), cfg)
    per_sample = mask.repeat(2, 1, 1, 1)
    per_sample[1] = bl.box_mask(32, (0.1, 0.1, 0.4, 0.4))
    state = next(bl.BlendedSampler(tiny, image, per_sample, cfg).steps())
    assert torch.equal(state.x_prev, state.fg * per_sample + state.bg * (1 - per_sample))


def _hand_made(image):
    """Tensors a new user passes by hand instead of through load_image."""
    nan, inf = image.clone(), image.clone()
    nan[0, 1, 3, 4] = float("nan")
    inf[0, 0, 0, 0] = float("inf")
    pixels = ((image + 1) * 127.5).round()  # a [0, 255] image as floats
    return {"NaN": nan, "infinity": inf, "[0, 255] floats": pixels, "uint8": pixels.to(torch.uint8)}


@pytest.mark.parametrize("kind", ["NaN", "infinity", "[0, 255] floats", "uint8"])
def test_edit_refuses_broken_tensors_and_names_the_fix(tiny, image, mask, kind):
    bad = _hand_made(image)[kind]
    before = bad.clone()
    for run in (lambda: bl.edit(tiny, bad, mask, fast_cfg(), progress=False),
                lambda: bl.BlendedSampler(tiny, bad, mask, fast_cfg())):
        with pytest.raises(bl.InputError) as err:
            run()
        message = str(err.value)
        assert "load_image" in message, message
        if kind in ("NaN", "infinity"):
            assert "NaN or infinity" in message and "1 of 3072 values" in message
        else:
            assert "x / 127.5 - 1" in message or "x.float() / 127.5 - 1" in message
        if kind == "[0, 255] floats":
            assert "from 0 to 255" in message and "x * 2 - 1" in message
    torch.testing.assert_close(bad, before, rtol=0, atol=0, equal_nan=True)  # the caller's tensor is untouched


def test_bright_images_and_unclamped_results_are_not_false_alarms(tiny, image, mask):
    bright = torch.full((1, 3, 32, 32), 0.9)
    bright[..., :8, :] = 0.0  # a light scene: nothing below mid-grey, so every value is >= 0
    result_like = (image * 1.4).clamp(-1.6, 1.6)  # an edit's x̂0 is not clamped to [-1, 1]
    for ok in (bright, result_like):
        check_image(ok, size=32)
        bl.BlendedSampler(tiny, ok, mask, fast_cfg())
    with pytest.raises(bl.InputError, match=r"\(1, 3, H, W\) tensor in \[-1, 1\], got \(3, 32, 32\)"):
        check_image(image[0])
    with pytest.raises(bl.InputError, match="got ndarray; load files, PIL images and arrays with blendlab.load_image"):
        check_image(image.numpy())


def test_load_image_reads_integer_tensors_and_refuses_broken_float_ones():
    arr = _rgb(16, 16)
    expected = bl.load_image(arr)
    for pixels in (torch.from_numpy(arr), torch.from_numpy(arr).permute(2, 0, 1),
                   torch.from_numpy(arr).permute(2, 0, 1)[None]):
        torch.testing.assert_close(bl.load_image(pixels), expected)
    torch.testing.assert_close(bl.load_image(torch.from_numpy(arr), size=8), bl.load_image(arr, size=8))
    hand_made = _hand_made(expected)
    with pytest.raises(bl.InputError, match="NaN or infinity"):
        bl.load_image(hand_made["NaN"])
    with pytest.raises(bl.InputError, match=r"x / 127\.5 - 1"):
        bl.load_image(hand_made["[0, 255] floats"])
    torch.testing.assert_close(bl.load_image(hand_made["uint8"]), expected)


def test_edit_config_validation():
    with pytest.raises(bl.InputError, match="leaves no step"):
        bl.EditConfig(prompt="x", timestep_respacing="10", skip_timesteps=10)
    with pytest.raises(bl.InputError, match="timestep_respacing='abc'"):
        bl.EditConfig(prompt="x", timestep_respacing="abc")
    with pytest.raises(bl.InputError, match="batch_size must be at least 1"):
        bl.EditConfig(prompt="x", batch_size=0)
    cfg = bl.EditConfig(prompt="rock")
    assert (cfg.skip_timesteps, cfg.timestep_respacing, cfg.aug_num, cfg.clip_guidance_lambda,
            cfg.range_lambda, cfg.lpips_sim_lambda, cfg.l2_sim_lambda, cfg.seed, cfg.iterations_num,
            cfg.batch_size, cfg.enforce_background, cfg.model_output_size) == (
        25, "100", 8, 1000, 50, 1000, 10000, 404, 8, 4, True, 256)
    assert cfg.num_steps == 75


def test_mask_morphology_and_canvas_extension():
    m = bl.box_mask(32, (0.5, 0.5, 0.5625, 0.5625))  # 2x2
    assert dilate_mask(m, 1).sum() == 16 and erode_mask(dilate_mask(m, 1), 1).sum() == 4
    img = bl.sample_image("shapes", size=32)
    out, band = extend_canvas(img, "right", 0.25)
    assert band[..., 24:].all() and not band[..., :24].any()
    assert torch.equal(out[..., :24], img[..., 8:])
    with pytest.raises(bl.InputError, match="side must be"):
        extend_canvas(img, "up", 0.25)
