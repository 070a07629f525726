"""Algorithm 1 against guided_diffusion's own math, the blend, hooks and reproducibility."""

import pytest
import torch

import blendlab as bl
from blendlab.guidance import encode_text, masked_clip_distance

from _fast import fast_cfg


class NoiseTape:
    """Records every tensor a sampler draws, in order."""

    def __init__(self, sampler):
        self.draws = []
        self.seeds = []
        original = sampler._randn

        def randn(*shape):
            x = original(*shape)
            self.draws.append(x.clone())
            return x

        sampler._randn = randn
        loss_call = sampler.loss.__call__ if sampler.loss is not None else None
        if loss_call is not None:
            tape = self

            class Recording(type(sampler.loss)):
                def __call__(self, x_t, pred_x0, fac, seed=None, **kw):
                    tape.seeds.append(seed)
                    return super().__call__(x_t, pred_x0, fac, seed=seed, **kw)

            sampler.loss.__class__ = Recording


def reference_cond_fn(sampler, seeds):
    """The reference implementation's cond_fn: re-runs the UNet with grad (two forwards per step)."""
    diffusion = sampler.diffusion
    calls = iter(seeds)

    def cond_fn(x, t_scaled, **kwargs):
        # SpacedDiffusion hands cond_fn the *original* timestep rescaled to [0, 1000); the reference
        # maps it back to the spaced index with this floor (its unscale_timestep).
        t = (t_scaled * (diffusion.num_timesteps / 1000)).long()
        with torch.enable_grad():
            x = x.detach().requires_grad_()
            out = diffusion.p_mean_variance(sampler.models.unet, x, t, clip_denoised=False,
                                            model_kwargs=kwargs)
            fac = float(diffusion.sqrt_one_minus_alphas_cumprod[int(t[0])])
            loss, _ = sampler.loss(x, out["pred_xstart"], fac, seed=next(calls))
            return -torch.autograd.grad(loss, x)[0]

    return cond_fn


@pytest.mark.parametrize("ddim", [False, True])
def test_full_mask_unblended_trajectory_equals_guided_diffusion_loop(tiny, image, monkeypatch, ddim):
    cfg = fast_cfg(local_clip_guided_diffusion=True, ddim=ddim)
    full = bl.masks.full_mask(tiny.image_size)
    with pytest.warns(UserWarning, match="whole image"):
        sampler = bl.BlendedSampler(tiny, image, full, cfg)
    tape = NoiseTape(sampler)
    ours = list(sampler.steps())
    assert len(ours) == cfg.num_steps == 8
    # Draw order: initial noise, then per step [step noise (DDPM only)], bg noise.
    initial = tape.draws[0]
    per_step = 1 if ddim else 2
    step_noise = [tape.draws[1 + k * per_step] for k in range(len(ours))] if not ddim else []

    noise_iter = iter(step_noise)
    real_randn_like = torch.randn_like

    def fake_randn_like(x, *a, **k):
        if ddim:  # DDIM with eta = 0 multiplies its noise by zero
            return real_randn_like(x, *a, **k)
        return next(noise_iter)

    loop = sampler.diffusion.ddim_sample_loop_progressive if ddim else sampler.diffusion.p_sample_loop_progressive
    monkeypatch.setattr(torch, "randn_like", fake_randn_like)
    theirs = list(loop(
        tiny.unet, (cfg.batch_size, 3, 32, 32), noise=initial, clip_denoised=False,
        cond_fn=reference_cond_fn(sampler, tape.seeds), model_kwargs={},
        skip_timesteps=cfg.skip_timesteps, init_image=sampler.init_image.expand(cfg.batch_size, -1, -1, -1),
    ))
    monkeypatch.undo()
    assert len(theirs) == len(ours)
    for s, o in zip(ours, theirs):
        torch.testing.assert_close(s.pred_x0, o["pred_xstart"], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(s.x_prev, o["sample"], rtol=1e-5, atol=1e-5)
        assert torch.equal(s.x_prev, s.fg)  # baseline mode: no blend
    assert not torch.allclose(ours[0].grad, torch.zeros_like(ours[0].grad))


#: respacing -> steps at which the reference's unscale_timestep misses the respaced index (README).
REFERENCE_T_MISSES = {"25": 0, "30": 0, "50": 0, "60": 0, "75": 0, "100": 0, "200": 0, "250": 0, "500": 0,
                      "1000": 0, "ddim25": 0, "ddim50": 0, "ddim100": 0,
                      "55": 1, "120": 1, "150": 1, "300": 7, "750": 125}


def test_reference_timestep_recovery_misses_as_the_readme_says():
    """guided_diffusion hands cond_fn the kept 1000-step timestep as float32; the reference floors it
    back to a respaced index. Count where that is not the true index, through guided_diffusion's code."""
    from pathlib import Path

    from guided_diffusion.script_util import create_gaussian_diffusion

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    x = torch.zeros(1, 1, 1, 1)
    for respacing, expected in REFERENCE_T_MISSES.items():
        diffusion = create_gaussian_diffusion(steps=1000, learn_sigma=True, rescale_timesteps=True,
                                              timestep_respacing=respacing)
        seen = []
        cond_fn = lambda x, t, **kw: seen.append(t) or torch.zeros_like(x)  # noqa: E731
        for i in range(diffusion.num_timesteps):
            diffusion.condition_mean(cond_fn, {"mean": x, "variance": x}, x, torch.tensor([i]), model_kwargs={})
        assert all(t.dtype == torch.float32 for t in seen)
        recovered = torch.cat([(t * (diffusion.num_timesteps / 1000)).long() for t in seen])
        misses = recovered != torch.arange(diffusion.num_timesteps)
        assert int(misses.sum()) == expected, respacing
        assert torch.equal(recovered[misses], torch.arange(diffusion.num_timesteps)[misses] - 1)  # always i - 1
        n = diffusion.num_timesteps
        claim = f'`"{respacing}"`' if not expected else f'{expected} of {n} for `"{respacing}"`'
        if not respacing.startswith("ddim"):
            assert claim in readme.replace("\n  ", " "), claim


def test_grad_equals_two_forward_computation(tiny, image, mask):
    cfg = fast_cfg(range_lambda=50)
    sampler = bl.BlendedSampler(tiny, image, mask, cfg)
    tape = NoiseTape(sampler)
    states = list(sampler.steps())
    cond_fn = reference_cond_fn(sampler, tape.seeds)
    timestep_map = torch.tensor(sampler.diffusion.timestep_map)
    for s in states[:3]:
        original_t = timestep_map[torch.full((cfg.batch_size,), s.respaced_index)].float()
        expected = cond_fn(s.x_t, original_t * (1000.0 / 1000))
        torch.testing.assert_close(s.grad, expected, rtol=1e-5, atol=1e-6)
        assert set(s.losses) == {"clip", "range"}


def test_blend_is_exact_and_background_has_forward_statistics(tiny, image, mask):
    cfg = fast_cfg(timestep_respacing="30", skip_timesteps=0)
    sampler = bl.BlendedSampler(tiny, image, mask, cfg)
    standardized = []
    for s in sampler.steps():
        assert torch.equal(s.x_prev, s.fg * sampler.mask + s.bg * (1 - sampler.mask))
        a = torch.tensor(s.alpha_bar)
        assert s.alpha_bar == pytest.approx(float(sampler.diffusion.alphas_cumprod[s.respaced_index]))
        eps = (s.bg - a.sqrt() * sampler.init_image) / (1 - a).sqrt()
        assert torch.equal(s.bg[0], s.bg[1])  # one noise draw shared by the batch, as the reference
        standardized.append(eps[0])
    eps = torch.stack(standardized)
    assert abs(eps.mean().item()) < 0.03
    assert eps.std().item() == pytest.approx(1.0, abs=0.03)


def test_enforce_background_pastes_input_bit_for_bit(tiny, image, mask, cfg):
    result = bl.edit(tiny, image, mask, cfg, progress=False)
    outside = (mask == 0).expand_as(result.images)
    assert torch.equal(result.images[outside], image.expand_as(result.images)[outside])
    assert not torch.equal(result.images[~outside], image.expand_as(result.images)[~outside])
    loose = bl.edit(tiny, image, mask, cfg.replace(enforce_background=False), progress=False)
    assert not torch.equal(loose.images[outside], image.expand_as(loose.images)[outside])


def test_one_unet_forward_per_step(tiny, image, mask, cfg):
    calls = []
    handle = tiny.unet.register_forward_hook(lambda *a: calls.append(1))
    try:
        n = sum(1 for _ in bl.BlendedSampler(tiny, image, mask, cfg).steps())
        assert len(calls) == n == cfg.num_steps
        calls.clear()
        n = sum(1 for _ in bl.BlendedSampler(tiny, image, mask, cfg.replace(ddim=True)).steps())
        assert len(calls) == n
    finally:
        handle.remove()
    assert all(not p.requires_grad for p in tiny.unet.parameters())


def test_guidance_lowers_clip_distance(tiny, image, mask):
    cfg = fast_cfg(batch_size=4, clip_guidance_lambda=3000)
    guided = bl.edit(tiny, image, mask, cfg, progress=False)
    unguided = bl.edit(tiny, image, mask, cfg.replace(clip_guidance_lambda=0, range_lambda=0), progress=False)
    text = encode_text(tiny.clip, "rock")
    d_guided = masked_clip_distance(tiny.clip, guided.images, text, mask)
    d_unguided = masked_clip_distance(tiny.clip, unguided.images, text, mask)
    assert d_guided.mean() < d_unguided.mean() - 0.02


def test_empty_prompt_is_unguided(tiny, image, mask):
    sampler = bl.BlendedSampler(tiny, image, mask, fast_cfg(prompt=""))
    states = list(sampler.steps())
    assert all(torch.count_nonzero(s.grad) == 0 and s.losses == {} for s in states)


def test_same_seed_same_result_and_hooks_change_trajectory(tiny, image, mask, cfg):
    a = bl.edit(tiny, image, mask, cfg, progress=False)
    b = bl.edit(tiny, image, mask, cfg, progress=False)
    assert torch.equal(a.images, b.images)
    c = bl.edit(tiny, image, mask, cfg.replace(seed=8), progress=False)
    assert not torch.equal(a.images, c.images)

    def brighten(state):
        if state.index == 1:
            state.x_prev = state.x_prev + 0.5 * state.mask
        return state

    d = bl.edit(tiny, image, mask, cfg, hooks=[brighten], progress=False)
    assert not torch.equal(a.images, d.images)


def test_loop_may_replace_x_prev(tiny, image, mask, cfg):
    sampler = bl.BlendedSampler(tiny, image, mask, cfg)
    seen = []
    for state in sampler.steps():
        seen.append(state.x_t)
        if state.index == 0:
            state.x_prev = torch.zeros_like(state.x_prev)
    assert torch.equal(seen[1], torch.zeros_like(seen[1]))


def test_global_rng_untouched_and_generator_drives_everything(tiny, image, mask, cfg):
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    bl.edit(tiny, image, mask, cfg, progress=False)
    assert torch.equal(before, torch.random.get_rng_state())


def test_class_conditional_draws_random_class_each_step(tiny_cond, image, mask, cfg):
    states = list(bl.BlendedSampler(tiny_cond, image, mask, cfg).steps())
    ys = torch.stack([s.y for s in states])
    assert ys.shape == (cfg.num_steps, cfg.batch_size)
    assert ys.min() >= 0 and ys.max() < tiny_cond.num_classes
    assert len(torch.unique(ys)) > 1


def test_edit_result_ranking(tiny, image, mask, tmp_path):
    cfg = fast_cfg(iterations_num=2)
    result = bl.edit(tiny, image, mask, cfg, progress=False)
    assert result.images.shape == (4, 3, 32, 32)
    dists = [d for _, d in result.ranked]
    assert dists == sorted(dists) and len(dists) == 4
    assert torch.equal(result.best[0], result.images[int(torch.argmin(result.distances))])
    expected = masked_clip_distance(tiny.clip, result.images, encode_text(tiny.clip, "rock"), result.mask)
    torch.testing.assert_close(result.distances, expected)
    paths = result.save_ranked(tmp_path / "ranked")
    assert [p.name.split("_")[0] for p in paths] == [f"{d:.4f}".replace(".", "") for d in dists]
    assert {p.name.split("_", 1)[1] for p in paths} == {
        "output_i_0_b_0.png", "output_i_0_b_1.png", "output_i_1_b_0.png", "output_i_1_b_1.png"}


def test_invert_mask_and_baseline_losses(tiny, image, mask):
    sampler = bl.BlendedSampler(tiny, image, mask, fast_cfg(invert_mask=True))
    assert torch.equal(sampler.mask, 1 - mask)
    assert torch.equal(mask, bl.box_mask(32, (0.25, 0.25, 0.75, 0.75)))  # input untouched
    cfg = fast_cfg(background_preservation_loss=True, local_clip_guided_diffusion=True)
    state = next(bl.BlendedSampler(tiny, image, mask, cfg).steps())
    assert set(state.losses) == {"clip", "range", "l2", "lpips"}


def test_pruning_keeps_the_best_ranked_and_off_reproduces_unpruned(tiny, image, mask):
    cfg = fast_cfg(batch_size=4)
    plain = bl.BlendedSampler(tiny, image, mask, cfg)
    plain_states = list(plain.steps())
    full = bl.edit(tiny, image, mask, cfg, progress=False)
    assert torch.equal(full.images, bl.edit(tiny, image, mask, cfg.replace(prune_at=None, keep=None),
                                             progress=False).images)

    pruned_cfg = cfg.replace(prune_at=0.5, keep=2)
    sampler = bl.BlendedSampler(tiny, image, mask, pruned_cfg)
    states = list(sampler.steps())
    k = pruned_cfg.prune_index
    assert k == 3
    prune_state = states[k]
    # up to the prune step, the trajectory is the unpruned one
    for a, b in zip(states[: k + 1], plain_states[: k + 1]):
        assert torch.equal(a.x_prev, b.x_prev)
    scores = prune_state.prune_scores
    expected = masked_clip_distance(tiny.clip, prune_state.pred_x0, sampler.text_embed, sampler.mask)
    torch.testing.assert_close(scores, expected)
    best = torch.argsort(expected)[:2]
    assert prune_state.kept.tolist() == best.tolist()
    after = states[k + 1]
    assert after.x_t.shape[0] == 2 and torch.equal(after.x_t, prune_state.x_prev[best])
    assert after.sample_ids.tolist() == best.tolist()
    result = bl.edit(tiny, image, mask, pruned_cfg.replace(iterations_num=2), progress=False)
    assert result.images.shape[0] == 4 and len(result.sample_ids) == 4
    assert {b for _, b in result.sample_ids} <= {0, 1, 2, 3}


def test_reference_ranking_prunes_by_the_unnormalised_distance(tiny, image, mask):
    cfg = fast_cfg(batch_size=4, prune_at=0.5, keep=2, reference_ranking=True)
    sampler = bl.BlendedSampler(tiny, image, mask, cfg)
    state = list(sampler.steps())[cfg.prune_index]
    reference = masked_clip_distance(tiny.clip, state.pred_x0, sampler.text_embed, sampler.mask, normalize=False)
    torch.testing.assert_close(state.prune_scores, reference)
    normalised = masked_clip_distance(tiny.clip, state.pred_x0, sampler.text_embed, sampler.mask)
    assert not torch.allclose(reference, normalised, atol=1e-3)


def test_pruning_config_validation():
    with pytest.raises(bl.InputError, match="both prune_at"):
        fast_cfg(prune_at=0.3)
    with pytest.raises(bl.InputError, match="keep must be between 1 and batch_size=2"):
        fast_cfg(prune_at=0.3, keep=5)
    with pytest.raises(bl.InputError, match="prune_at must be a fraction"):
        fast_cfg(prune_at=1.5, keep=1)


def test_ddim_eta_adds_noise_and_zero_eta_is_deterministic(tiny, image, mask):
    cfg = fast_cfg(ddim=True)
    a = bl.edit(tiny, image, mask, cfg, progress=False).images
    b = bl.edit(tiny, image, mask, cfg.replace(seed=8), progress=False).images
    # eta = 0: only the start noise and the blend differ between seeds
    assert not torch.equal(a, b)
    c = bl.edit(tiny, image, mask, cfg.replace(ddim_eta=1.0), progress=False).images
    assert not torch.allclose(a, c)
    with pytest.raises(bl.InputError, match="ddim_eta"):
        fast_cfg(ddim=True, ddim_eta=2.0)


def test_guidance_can_be_switched_off_mid_loop(tiny, image, mask, cfg):
    sampler = bl.BlendedSampler(tiny, image, mask, cfg)
    grads = []
    for state in sampler.steps():
        grads.append(torch.count_nonzero(state.grad).item())
        if state.index == 2:
            sampler.loss = None
    assert all(g > 0 for g in grads[:3]) and all(g == 0 for g in grads[3:])


# -- non-finite values (issue 15, item 7) -------------------------------------------------------
def test_the_issues_skip_0_run_stops_with_a_clear_error_at_its_first_non_finite_step(tiny, image, mask):
    cfg = bl.EditConfig(prompt="a red ball", skip_timesteps=0, timestep_respacing="100")  # the issue's repro
    seen = []
    with pytest.raises(bl.NonFiniteError) as err:
        bl.edit(tiny, image, mask, cfg, hooks=[seen.append], progress=False)
    e = err.value
    assert isinstance(e, bl.BlendlabError) and isinstance(e, FloatingPointError)
    assert 0 < e.step < 100 and e.num_steps == 100 and e.iteration == 0
    diffusion = bl.BlendedSampler(tiny, image, mask, cfg).diffusion
    assert e.t == int(diffusion.timestep_map[99 - e.step]) and e.t > 900  # the 1000-step schedule's t
    # the term that went first: the range loss overflowed while x̂0 itself was still finite
    assert e.term == "range" and torch.isinf(e.state.loss_tensors["range"])
    assert torch.isfinite(e.state.pred_x0).all() and e.state.index == e.step
    msg = str(e)
    assert msg.startswith(f"step {e.step}/100 · t={e.t} (sample batch 1 of 8): the range loss became infinite")
    assert "skip_timesteps is 0 of 100" in msg and "range_lambda (now 50)" in msg
    assert "clip_guidance_lambda (now 1000)" in msg
    # hooks saw exactly the steps before it, every one finite; the failing one never reached them
    assert [s.index for s in seen] == list(range(e.step))
    assert all(torch.isfinite(s.x_prev).all() and torch.isfinite(s.pred_x0).all() for s in seen)


@pytest.mark.parametrize("prompt", ["rock", ""])
def test_nan_put_into_x_prev_is_caught_at_the_next_step_as_x0(tiny, image, mask, prompt):
    cfg = fast_cfg(prompt=prompt)  # "" is unguided: the advice turns to the model
    sampler = bl.BlendedSampler(tiny, image, mask, cfg)
    with pytest.raises(bl.NonFiniteError) as err:
        for state in sampler.steps():
            if state.index == 1:
                state.x_prev[0, 0, 5, 5] = float("nan")
    e = err.value
    assert (e.step, e.term, e.num_steps) == (2, "pred_x0", 8)
    assert str(e).startswith(f"step 2/8 · t={e.t}: x̂0 became NaN in ")
    if prompt:
        assert "clip_guidance_lambda (now 1000)" in str(e) and "weights" not in str(e)
    else:
        assert "without guidance" in str(e) and "weights" in str(e) and "lambda" not in str(e)
    # pickled (a sweep's worker), the error keeps what it names and leaves the tensors behind
    import pickle

    back = pickle.loads(pickle.dumps(e))
    assert type(back) is bl.NonFiniteError and str(back) == str(e) and back.state is None
    assert (back.step, back.num_steps, back.t, back.term, back.iteration) == (2, 8, e.t, "pred_x0", 0)


def test_the_finiteness_check_changes_nothing_in_a_finite_run(tiny, image, mask, cfg, monkeypatch):
    checked = bl.edit(tiny, image, mask, cfg, progress=False)
    calls = []
    monkeypatch.setattr(bl.BlendedSampler, "check_finite", lambda self, state: calls.append(state.index))
    unchecked = bl.edit(tiny, image, mask, cfg, progress=False)
    assert calls == list(range(cfg.num_steps))
    assert torch.equal(checked.images, unchecked.images) and torch.equal(checked.distances, unchecked.distances)


def test_a_degenerate_kornia_perspective_view_is_replaced_and_no_nan_reaches_the_gradient():
    import kornia

    from blendlab.guidance import ExtendingAugmentations

    aug = ExtendingAugmentations(28, 64)
    torch.manual_seed(0)
    x = (torch.rand(16, 3, 28, 28) * 2 - 1).requires_grad_(True)
    raw = aug.augmentations  # seed 129 draws one near-degenerate perspective among these 1008 views
    with torch.random.fork_rng():
        torch.manual_seed(129)
        unguarded = raw(x.detach().repeat(63, 1, 1, 1))
    bad = (~torch.isfinite(unguarded)).flatten(1).any(1)
    assert bad.sum() == 1, f"kornia {kornia.__version__} no longer draws the NaN view this test needs"
    views = aug(x, seed=129)
    assert torch.isfinite(views).all()
    row = 16 + int(bad.nonzero())
    assert torch.equal(views[row], views[row % 16])  # the bad view is its sample's unaugmented view
    assert torch.equal(views[16:][~bad], unguarded[~bad])  # every other view untouched, bit for bit
    (views ** 2).sum().backward()
    assert torch.isfinite(x.grad).all()
