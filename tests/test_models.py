"""Presets, the real loading path with checkpoint files the tests make, and bad checkpoints."""

import pytest
import torch

import blendlab as bl
from blendlab import models as M


def test_real_256_config_builds_with_published_parameter_count():
    unet = M.build_unet(M.unet_config("256-uncond"), device="meta")
    assert M.count_parameters(unet) == pytest.approx(552.8e6, rel=1e-3)
    assert unet.num_classes is None and unet.out_channels == 6  # learn_sigma


def test_real_512_config_is_class_conditional():
    unet = M.build_unet(M.unet_config("512-cond"), device="meta")
    assert unet.num_classes == 1000 and unet.image_size == 512


def test_tiny_uses_the_same_classes_and_diffusion(tiny):
    from clip.model import CLIP
    from guided_diffusion.unet import UNetModel

    assert isinstance(tiny.unet, UNetModel) and isinstance(tiny.clip, CLIP)
    assert tiny.image_size == 32 and tiny.preset == "tiny" and tiny.clip_size == 32
    assert tiny.diffusion_config == M.diffusion_config()
    assert tiny.diffusion_config["learn_sigma"] and tiny.diffusion_config["noise_schedule"] == "linear"
    assert not any(p.requires_grad for p in tiny.unet.parameters())


def test_tiny_is_seeded_and_leaves_global_rng_alone():
    torch.manual_seed(5)
    state = torch.random.get_rng_state()
    a = bl.load_models("tiny", device="cpu")
    assert torch.equal(state, torch.random.get_rng_state())
    b = bl.load_models("tiny", device="cpu")
    for (k, v), (_, w) in zip(a.unet.state_dict().items(), b.unet.state_dict().items()):
        assert torch.equal(v, w), k
    # no all-zero weight tensors: the stand-in is a real non-linear function of its input
    assert all(torch.any(p) for p in a.unet.parameters() if p.dim() > 1)


def test_unknown_preset_and_env_default(monkeypatch):
    with pytest.raises(bl.InputError, match="unknown model preset 'big'"):
        bl.load_models("big")
    monkeypatch.setenv("BLENDLAB_MODELS", "tiny")
    assert bl.load_models(device="cpu").preset == "tiny"


def test_checkpoint_round_trip_through_the_real_loading_path(tiny, tmp_path):
    path = tmp_path / "unet.pt"
    torch.save(tiny.unet.state_dict(), path)
    loaded = bl.load_models("tiny", device="cpu", unet_path=path)
    for (k, v), (_, w) in zip(tiny.unet.state_dict().items(), loaded.unet.state_dict().items()):
        assert torch.equal(v, w), k


@pytest.mark.parametrize("fmt", ["state_dict", "torchscript"])
def test_clip_file_in_both_official_formats(tiny, tmp_path, fmt):
    path = tmp_path / "clip.pt"
    clip_model = M.build_tiny_clip().eval()
    if fmt == "state_dict":
        torch.save(clip_model.state_dict(), path)
    else:
        image = torch.randn(1, 3, 32, 32)
        import clip

        tokens = clip.tokenize(["a rock"])
        torch.jit.trace(clip_model, (image, tokens)).save(str(path))
    models = bl.load_models("tiny", device="cpu", clip_path=path)
    # clip.load rebuilds the model in fp16 (the official weights are fp16) and casts it back to fp32
    # on CPU, so compare with the same rounding applied to our copy.
    import copy

    from clip.model import convert_weights

    rounded = copy.deepcopy(clip_model)
    convert_weights(rounded)
    rounded.float()
    x = torch.rand(2, 3, 32, 32)
    torch.testing.assert_close(models.clip.encode_image(x), rounded.encode_image(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("fmt", ["state_dict", "torchscript"])
def test_loading_a_clip_file_gives_no_future_warning(tmp_path, fmt):
    """clip.load tries torch.jit.load first, which warns FutureWarning (deprecated); blendlab hides
    exactly that one: nothing a user can act on (issue 24)."""
    import warnings

    import clip

    path = tmp_path / "clip.pt"
    clip_model = M.build_tiny_clip().eval()
    if fmt == "state_dict":
        torch.save(clip_model.state_dict(), path)
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.jit.trace(clip_model, (torch.randn(1, 3, 32, 32), clip.tokenize(["a rock"]))).save(str(path))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # stronger than pyproject's filter of this very warning
        bl.load_models("tiny", device="cpu", clip_path=path)
    future = [str(w.message) for w in caught if issubclass(w.category, FutureWarning)]
    assert future == []
    with warnings.catch_warnings(record=True) as caught:  # torch's own warning still reaches others
        warnings.simplefilter("always")
        try:
            torch.jit.load(str(path))
        except RuntimeError:
            pass
    assert any("torch.jit.load" in str(w.message) for w in caught)


def test_truncated_checkpoint(tiny, tmp_path):
    path = tmp_path / "unet.pt"
    torch.save(tiny.unet.state_dict(), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(bl.CheckpointError, match="truncated or corrupt"):
        bl.load_models("tiny", device="cpu", unet_path=path)


def test_wrong_architecture_checkpoint(tiny_cond, tmp_path):
    path = tmp_path / "cond.pt"
    torch.save(tiny_cond.unet.state_dict(), path)
    with pytest.raises(bl.CheckpointError, match="does not fit the 'tiny' UNet.*unexpected keys"):
        bl.load_models("tiny", device="cpu", unet_path=path)
    other = tmp_path / "linear.pt"
    torch.save({"weight": torch.zeros(3, 3)}, other)
    with pytest.raises(bl.CheckpointError, match="missing keys"):
        bl.load_models("tiny", device="cpu", unet_path=other)


def test_missing_checkpoint_file(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="UNet checkpoint not found"):
        bl.load_models("tiny", device="cpu", unet_path=tmp_path / "nope.pt")
    # a CLIP file given by hand is looked for before the UNet is downloaded (offline: would fail first)
    monkeypatch.setenv("BLENDLAB_OFFLINE", "1")
    with pytest.raises(FileNotFoundError, match=f"CLIP checkpoint not found: {tmp_path}/clip.pt"):
        bl.load_models("256-uncond", device="cpu", cache_dir=tmp_path, clip_path=tmp_path / "clip.pt")


def test_real_preset_offline_names_the_file_and_where_to_put_it(monkeypatch, tmp_path):
    monkeypatch.setenv("BLENDLAB_OFFLINE", "1")
    with pytest.raises(bl.WeightsNotFoundError) as err:
        bl.load_models("256-uncond", device="cpu", cache_dir=tmp_path)
    msg = str(err.value)
    assert "256x256_diffusion_uncond.pt" in msg and str(tmp_path) in msg
    assert "huggingface.co/omriav/blended-diffusion" in msg  # the mirror is offered too


def test_real_preset_loads_from_cache_through_download_layer(tiny, monkeypatch, tmp_path):
    """The real code path (ensure_file -> torch.load -> load_state_dict) with a file the test made:
    a tiny 'preset' whose RemoteFile points at the cache. No network is touched (offline)."""
    from blendlab.download import RemoteFile

    monkeypatch.setenv("BLENDLAB_OFFLINE", "1")
    torch.save(tiny.unet.state_dict(), tmp_path / "tiny_unet.pt")
    clip_model = M.build_tiny_clip()
    torch.save(clip_model.state_dict(), tmp_path / "tiny_clip.pt")
    fake = dict(M.PRESETS["tiny"], checkpoint=RemoteFile("tiny_unet.pt", ("http://127.0.0.1:9/x",)))
    monkeypatch.setitem(M.PRESETS, "tiny-ckpt", fake)
    monkeypatch.setattr(M, "clip_remote_file", lambda name: RemoteFile("tiny_clip.pt", ("http://127.0.0.1:9/y",)))
    models = bl.load_models("tiny-ckpt", device="cpu", cache_dir=tmp_path)
    assert models.clip_name == "ViT-B/16"  # the name asked for; the file is what the cache held
    for (k, v), (_, w) in zip(tiny.unet.state_dict().items(), models.unet.state_dict().items()):
        assert torch.equal(v, w), k


def test_clip_remote_file_carries_official_hash():
    rf = M.clip_remote_file("ViT-B/16")
    assert rf.filename == "ViT-B-16.pt" and len(rf.sha256) == 64 and rf.sha256 in rf.urls[0]
    with pytest.raises(bl.InputError, match="unknown CLIP model"):
        M.clip_remote_file("ViT-Z/99")


def test_fp16_needs_cuda_and_precision_is_checked():
    with pytest.raises(bl.InputError, match="CUDA"):
        bl.load_models("tiny", device="cpu", precision="fp16")
    with pytest.raises(bl.InputError, match="precision must be one of"):
        bl.load_models("tiny", device="cpu", precision="int8")
    assert bl.load_models("tiny", device="cpu").precision == "fp32"


@pytest.mark.parametrize("fast", [dict(channels_last=True), dict(compile="eager"), dict(precision="bf16")])
def test_fast_paths_give_the_same_edit(tiny, image, mask, fast):
    from _fast import fast_cfg

    cfg = fast_cfg()
    reference = bl.edit(tiny, image, mask, cfg, progress=False).images
    models = bl.load_models("tiny", device="cpu", **fast)
    calls = []
    handle = models.unet.register_forward_hook(lambda *a: calls.append(1))
    images = bl.edit(models, image, mask, cfg, progress=False).images
    handle.remove()
    assert len(calls) == cfg.num_steps  # still one UNet forward per step
    tol = 0.15 if fast.get("precision") == "bf16" else 1e-4  # bf16 keeps ~3 significant digits
    torch.testing.assert_close(images, reference, atol=tol, rtol=0)
    if "precision" in fast:
        assert not torch.equal(images, reference)


def test_denoiser_is_the_unet_and_runner_is_its_old_name(tiny):
    """``Models.denoiser`` is what the sampler calls; the old ``Models.runner`` (it clashed with
    ``blendlab.runner``) still gives the same callable, with a DeprecationWarning."""
    assert tiny.denoiser is tiny.unet
    with pytest.warns(DeprecationWarning, match="Models.denoiser"):
        assert tiny.runner is tiny.denoiser
    fast = bl.load_models("tiny", device="cpu", channels_last=True)
    assert fast.denoiser is not fast.unet and callable(fast.denoiser)
