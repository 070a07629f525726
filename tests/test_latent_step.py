"""Blended Latent Diffusion's step on the tiny latent preset: the blend against a step written out by
hand, the background levels, mask shrinking, pixel blending, reconstruction, errors, hooks and the
Recorder round trip."""

import copy
import dataclasses

import pytest
import torch

from blendlab.errors import InputError, NonFiniteError, UnknownSettingError
from blendlab.hooks import Recorder
from blendlab.latent import BlendedLatentSampler, LatentConfig, latent_mask, tiny_latent_models
from blendlab.masks import box_mask


@pytest.fixture(scope="module")
def models():
    return tiny_latent_models(seed=0, device="cpu")


@pytest.fixture(scope="module")
def image():
    g = torch.Generator().manual_seed(1)
    return torch.rand(1, 3, 32, 32, generator=g) * 2 - 1


MASK = box_mask(32, (0.25, 0.25, 0.75, 0.75))  # pixels 8..23: latent cells 2..5


def _cfg(**changes):
    return LatentConfig(**{"prompt": "a red circle", "num_steps": 8, "batch_size": 2, "guidance_scale": 3.0,
                           **changes})


def test_the_blend_equals_a_step_written_out_by_hand(models, image):
    sampler = BlendedLatentSampler(models, image, MASK, _cfg())
    z = sampler.start()
    draws = sampler.generator.get_state()
    state = sampler.step(0, z)

    t = sampler.timesteps[0]
    t_prev = t - 1000 // 8
    assert t_prev == sampler.timesteps[1]
    emb_neg, emb_text = models.text.encode([""]), models.text.encode(["a red circle"])
    with torch.no_grad():  # two separate UNet passes, not the sampler's batched one
        eps_neg = models.unet(z, t, encoder_hidden_states=emb_neg.expand(2, -1, -1)).sample
        eps_text = models.unet(z, t, encoder_hidden_states=emb_text.expand(2, -1, -1)).sample
    eps = eps_neg + 3.0 * (eps_text - eps_neg)
    abar = sampler.scheduler.alphas_cumprod
    pred = (z - (1 - abar[t]).sqrt() * eps) / abar[t].sqrt()
    fg = abar[t_prev].sqrt() * pred + (1 - abar[t_prev]).sqrt() * eps
    noise = torch.randn(z.shape, generator=torch.Generator().set_state(draws))
    z0 = models.vae.encode(image).latent_dist.mean * models.vae.config.scaling_factor
    # the default timing, the reference's: the source noised to the step's input level t, into z_{t'}
    bg = sampler.scheduler.add_noise(z0.expand(2, -1, -1, -1), noise, torch.tensor([t]))

    m = torch.zeros(1, 1, 8, 8)
    m[..., 2:6, 2:6] = 1
    assert torch.equal(state.latent_mask, m)
    inside, outside = m.bool().expand_as(z), ~m.bool().expand_as(z)
    torch.testing.assert_close(state.latent_pred_x0, pred, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(state.latent_fg, fg, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(state.latent_bg, bg, atol=1e-6, rtol=1e-6)
    # exactly: the noised source outside, the scheduler's step inside
    assert torch.equal(state.latent_prev[outside], state.latent_bg[outside])
    assert torch.equal(state.latent_prev[inside], state.latent_fg[inside])
    assert not torch.allclose(state.latent_fg[outside], state.latent_bg[outside])


def test_the_background_level_output_vs_input(models, image):
    """"output": bg at t' (the level of the latent it replaces), every step up to the last (the
    scheduler's final ᾱ); "input": bg at the step's own t, one step noisier."""
    for level in ("output", "input"):
        sampler = BlendedLatentSampler(models, image, MASK, _cfg(background_level=level))
        z = sampler.start()
        for k in range(len(sampler.timesteps)):
            draws = sampler.generator.get_state()
            state = sampler.step(k, z)
            noise = torch.randn(z.shape, generator=torch.Generator().set_state(draws))
            t = sampler.timesteps[k]
            abar = (sampler.scheduler.final_alpha_cumprod if k == len(sampler.timesteps) - 1 and level == "output"
                    else sampler.scheduler.alphas_cumprod[t - 125 if level == "output" else t])
            expected = abar.sqrt() * sampler.source_latents + (1 - abar).sqrt() * noise
            torch.testing.assert_close(state.latent_bg, expected, atol=1e-6, rtol=1e-6)
            z = state.latent_prev


def test_progressive_mask_shrinking(models, image):
    cfg = _cfg(num_steps=12, blending_start=0.0, mask_dilation_iterations=2, guidance_scale=1.0)
    masks = latent_mask(MASK, (8, 8), 2)
    assert [int(m.sum()) for m in masks] == [8 * 8, 6 * 6, 4 * 4]  # cells 2..5 grown by 2, 1, 0
    assert [int(m.sum()) for m in latent_mask(box_mask(32, (0.375, 0.375, 0.625, 0.625)), (8, 8), 2)] == [36, 16, 4]
    states = list(BlendedLatentSampler(models, image, MASK, cfg).steps())
    used = [cfg.mask_index(s.index) for s in states]
    assert used == [0] * 5 + [1] * 5 + [2] * 2  # 12 steps, 3 masks: i // (12 // 3 + 1)
    assert torch.equal(states[-1].latent_mask, masks[-1]) and torch.equal(states[0].latent_mask, masks[0])
    thin = torch.zeros(1, 1, 32, 32)
    thin[..., 16, 4:28] = 1  # one pixel wide: less than half of every 4×4 cell
    with pytest.raises(InputError, match="at least 4 pixels wide"):
        BlendedLatentSampler(models, image, thin, cfg)


def test_pixel_blending_in_the_last_steps(models, image):
    cfg = _cfg(pixel_blending=0.5)
    states = list(BlendedLatentSampler(models, image, MASK, cfg).steps())
    assert cfg.steps_run == 6 and cfg.pixel_from == 3
    assert [s.pixel_step for s in states] == [False] * 3 + [True] * 3
    assert torch.equal(states[-1].mask, MASK) and states[0].mask.shape == MASK.shape
    for s in states[3:]:  # the whole latent is the re-encoded pixel blend, not fg ⊙ m + bg ⊙ (1 − m)
        latent_blend = s.latent_fg * s.latent_mask + s.latent_bg * (1 - s.latent_mask)
        assert not torch.allclose(s.latent_prev, latent_blend)


def test_pixel_reconstruction_keeps_the_input_outside_exactly(models, image):
    outside = (MASK == 0).expand(2, 3, -1, -1)
    raw = BlendedLatentSampler(models, image, MASK, _cfg()).run()
    pasted = BlendedLatentSampler(models, image, MASK, _cfg(reconstruction="pixel")).run()
    poisson = BlendedLatentSampler(models, image, MASK, _cfg(reconstruction="poisson")).run()
    source = image.expand(2, -1, -1, -1)
    assert torch.equal(pasted[outside], source[outside])
    assert torch.equal(poisson[outside], source[outside])
    assert float((raw - source)[outside].abs().max()) > 1e-2  # the VAE alone does not give it back
    assert torch.equal(pasted[~outside], raw[~outside])  # the same run (same seed) inside


def test_same_seed_same_result_and_inputs_untouched(models, image):
    before_image, before_mask = image.clone(), MASK.clone()
    a = BlendedLatentSampler(models, image, MASK, _cfg(seed=5)).run()
    b = BlendedLatentSampler(models, image, MASK, _cfg(seed=5)).run()
    c = BlendedLatentSampler(models, image, MASK, _cfg(seed=6)).run()
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(image, before_image) and torch.equal(MASK, before_mask)


def test_settings_are_validated():
    with pytest.raises(UnknownSettingError, match="guidance_scale"):
        LatentConfig(prompt="x", guidance_scal=3)
    with pytest.raises(InputError, match="prompt is empty"):
        LatentConfig(prompt="", guidance_scale=7.5)
    LatentConfig(prompt="", guidance_scale=1.0)  # an unguided fill needs no prompt
    LatentConfig(prompt="", negative_prompt="blurry", guidance_scale=7.5)  # steering away from one
    for bad in (dict(blending_start=1.0), dict(num_steps=0), dict(reconstruction="optimal"),
                dict(background_level="half"), dict(pixel_blending=1.5), dict(mask_dilation_iterations=-1),
                dict(guidance_scale=float("nan")), dict(num_steps=2.5), dict(seed=1.5)):
        with pytest.raises(InputError):
            LatentConfig(prompt="x", **bad)


def test_bad_inputs_get_blendlabs_errors(models, image):
    cfg = _cfg()
    with pytest.raises(InputError, match=r"mask is \(16, 16\) but the image is \(32, 32\)"):
        BlendedLatentSampler(models, image, box_mask(16, (0.2, 0.2, 0.8, 0.8)), cfg)
    with pytest.raises(InputError, match="aspect|shape"):
        BlendedLatentSampler(models, image, box_mask((32, 16), (0.2, 0.2, 0.8, 0.8)), cfg)
    with pytest.raises(InputError, match="multiples of 4"):
        BlendedLatentSampler(models, torch.zeros(1, 3, 30, 30), box_mask(30, (0.2, 0.2, 0.8, 0.8)), cfg)
    with pytest.raises(InputError, match="NaN"):
        BlendedLatentSampler(models, torch.full((1, 3, 32, 32), float("nan")), MASK, cfg)
    sampler = BlendedLatentSampler(models, image, MASK, cfg)
    bad = sampler.start()
    bad[0, 0, 0, 0] = float("inf")
    with pytest.raises(InputError, match="x_start holds NaN or infinity"):
        next(sampler.steps(x_start=bad))
    with pytest.raises(InputError, match="x_start must be latents of shape"):
        next(sampler.steps(x_start=torch.zeros(2, 4, 4, 4)))


def test_a_step_gone_non_finite_stops_the_run(models, image):
    unet = copy.deepcopy(models.unet)
    with torch.no_grad():
        unet.conv_out.bias.fill_(float("nan"))
    broken = dataclasses.replace(models, unet=unet)
    with pytest.raises(NonFiniteError) as info:
        list(BlendedLatentSampler(broken, image, MASK, _cfg()).steps())
    assert info.value.step == 0 and info.value.term == "pred_x0" and info.value.t == 626
    assert "step 0/6 · t=626" in str(info.value)


def test_hooks_see_decoded_fields_and_may_replace_the_latent(models, image):
    sampler = BlendedLatentSampler(models, image, MASK, _cfg())
    seen = []

    def hook(state):
        seen.append((state.index, state.timestep, tuple(state.pred_x0.shape), float(state.grad.abs().sum())))
        if state.index == 0:
            state.latent_prev = sampler.start()  # a hook may change where the run goes on from

    states = []
    for state in sampler.steps([hook]):
        states.append(state)
    assert seen[0] == (0, 626, (2, 3, 32, 32), 0.0) and len(seen) == 6
    assert states[1].latent_t is states[0].latent_prev
    torch.testing.assert_close(states[2].x_t, models.decode_latents(states[2].latent_t))
    assert states[2].pred_x0_guided is states[2].pred_x0  # decoded once, cached
    assert float(states[2].x_t.min()) >= -1 and float(states[2].x_t.max()) <= 1
    with pytest.raises(InputError, match="latent_prev"):
        for state in BlendedLatentSampler(models, image, MASK, _cfg()).steps():
            state.x_prev = torch.zeros(2, 3, 32, 32)


def test_the_recorder_records_a_latent_run_and_reads_it_back(models, image, tmp_path):
    recorder = Recorder(fields=("x_t", "pred_x0", "bg", "x_prev"), dtype=torch.float32)
    sampler = BlendedLatentSampler(models, image, MASK, _cfg())
    final = sampler.run([recorder])
    assert len(recorder) == 6 and [s.timestep for s in recorder.steps] == sampler.timesteps
    last = sampler.last_state
    torch.testing.assert_close(recorder.field("x_prev")[-1], models.decode_latents(last.latent_prev))
    torch.testing.assert_close(recorder.field("x_prev")[-1], final)  # reconstruction "none"
    assert torch.equal(recorder.mask, MASK) and torch.equal(recorder.init_image, image)
    path = recorder.save(tmp_path / "bld.npz")
    loaded = Recorder.load(path, lazy=False)
    assert [(s.index, s.timestep, s.num_steps) for s in loaded.steps] == [(k, t, 6) for k, t in
                                                                          enumerate(sampler.timesteps)]
    assert loaded.preset == "tiny-latent" and loaded.cfg == sampler.cfg  # the LatentConfig, read back
    assert recorder.cfg is sampler.cfg and loaded.prompt == sampler.cfg.prompt
    assert loaded.meta["config_class"] == "LatentConfig"
    for name in ("x_t", "pred_x0", "bg", "x_prev"):
        assert torch.equal(loaded.field(name), recorder.field(name))
    frames = loaded.frames("pred_x0", sample=1)
    assert len(frames) == 6


def test_a_latent_trajectory_read_without_its_settings_class_says_what_to_import(models, image, tmp_path,
                                                                                 monkeypatch):
    from blendlab import trajectory

    recorder = Recorder(fields=("x_prev",), dtype=torch.float32)
    BlendedLatentSampler(models, image, MASK, _cfg()).run([recorder])
    path = recorder.save(tmp_path / "bld.npz")
    monkeypatch.delitem(trajectory.SETTINGS_CLASSES, "LatentConfig")
    with pytest.warns(UserWarning, match="import blendlab.latent"):
        loaded = Recorder.load(path)
    assert loaded.cfg is None and loaded.meta["config"]["prompt"] == _cfg().prompt
    assert len(loaded) == len(recorder)


def test_the_optimization_reconstruction_fine_tunes_a_decoder_copy_towards_the_input_outside(models, image):
    from blendlab.latent.reconstruct import optimize_decoder, reconstruct

    sampler = BlendedLatentSampler(models, image, MASK, _cfg())
    sampler.run()
    decoded = models.decode_latents(sampler.last_state.latent_prev)
    before = {k: v.clone() for k, v in models.vae.state_dict().items()}
    keep = 1 - MASK
    few = optimize_decoder(models, decoded, image, MASK, steps=5, lr=1e-3)
    more = optimize_decoder(models, decoded, image, MASK, steps=40, lr=1e-3)
    outside = lambda x: float(((x - image) * keep).pow(2).mean())  # noqa: E731
    redecoded = models.decode_latents(models.encode_image(decoded))
    assert outside(more) < outside(few) < outside(redecoded), "the fine-tuned decoder moves the outside to the input"
    assert all(torch.equal(v, before[k]) for k, v in models.vae.state_dict().items()), "the shared VAE is untouched"
    assert more.shape == decoded.shape and float(more.abs().max()) <= 1
    with pytest.raises(InputError, match="models="):
        reconstruct(decoded, image, MASK, "optimization")
    final = BlendedLatentSampler(models, image, MASK, _cfg(reconstruction="optimization")).run()
    assert final.shape == decoded.shape
