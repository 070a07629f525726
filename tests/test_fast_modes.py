"""The fast modes of EditConfig (issue 11): validation, and the behaviour each one promises.

The default stays the paper's algorithm bit for bit (the oracle tests in test_sampler.py); here each
option is checked for what could go wrong: which steps compute, reuse or drop the gradient, that no
gradient flows through the UNet in the Jacobian-free mode (and that its step equals a computation made
from guided_diffusion's own functions), and how many CLIP views each step sees.
"""

import contextlib

import pytest
import torch

import blendlab as bl

from _fast import fast_cfg


@contextlib.contextmanager
def unet_calls(models):
    """Counts UNet forwards, forwards whose output carries a graph, and backward passes."""
    counts = {"forward": 0, "forward_with_graph": 0, "backward": 0}

    def forward(module, args, output):
        counts["forward"] += 1
        counts["forward_with_graph"] += int(output.requires_grad)

    def backward(module, grad_input, grad_output):
        counts["backward"] += 1

    handles = [models.unet.register_forward_hook(forward), models.unet.register_full_backward_hook(backward)]
    try:
        yield counts
    finally:
        for h in handles:
            h.remove()


def run_states(models, image, mask, cfg):
    sampler = bl.BlendedSampler(models, image, mask, cfg)
    with unet_calls(models) as counts:
        states = list(sampler.steps())
    return sampler, states, counts


# -- validation -------------------------------------------------------------------------------------
@pytest.mark.parametrize("field, value, message", [
    ("guidance_every", 0, "guidance_every must be a whole number of steps >= 1"),
    ("guidance_every", 1.5, "guidance_every must be a whole number"),
    ("guidance_every", True, "guidance_every must be a whole number"),
    ("guidance_between", "last", "guidance_between must be 'reuse'"),
    ("guidance_until", 0.0, "guidance_until must be the guided fraction"),
    ("guidance_until", 1.5, "guidance_until must be the guided fraction"),
    ("guidance_gradient", "x0", "guidance_gradient must be 'unet'"),
    ("late_aug_num", 0, "late_aug_num must be a number of views between 1 and aug_num=3"),
    ("late_aug_num", 4, "late_aug_num must be a number of views between 1 and aug_num=3"),
    ("late_aug_num", 2.0, "late_aug_num must be a number of views"),
    ("late_at", 0.0, "late_at must be a fraction of the steps in \\(0, 1\\)"),
    ("late_at", 1.0, "late_at must be a fraction of the steps"),
])
def test_each_fast_mode_field_is_validated(field, value, message):
    with pytest.raises(bl.InputError, match=message):
        fast_cfg(**{field: value})


def test_the_defaults_are_the_paper_and_the_schedules_say_so():
    cfg = bl.EditConfig(prompt="x")
    assert (cfg.guidance_every, cfg.guidance_between, cfg.guidance_until, cfg.guidance_gradient,
            cfg.late_aug_num) == (1, "reuse", 1.0, "unet", None)
    assert {cfg.guidance_at(k) for k in range(cfg.num_steps)} == {"compute"}
    assert {cfg.views_at(k) for k in range(cfg.num_steps)} == {8}
    fast = fast_cfg(guidance_every=3, guidance_until=0.75)  # 8 steps: 0..5 guided in principle
    assert [fast.guidance_at(k) for k in range(8)] == ["compute", "reuse", "reuse", "compute", "reuse", "reuse",
                                                        "none", "none"]
    assert [fast.replace(guidance_between="none").guidance_at(k) for k in range(4)] == \
        ["compute", "none", "none", "compute"]
    assert [fast_cfg(late_aug_num=1, late_at=0.25).views_at(k) for k in range(8)] == [3, 3] + [1] * 6


def test_explicit_defaults_reproduce_the_paper_trajectory_bit_for_bit(tiny, image, mask, cfg):
    _, plain, _ = run_states(tiny, image, mask, cfg)
    same = cfg.replace(guidance_every=1, guidance_between="none", guidance_until=1.0, late_aug_num=cfg.aug_num)
    _, explicit, _ = run_states(tiny, image, mask, same)
    for a, b in zip(plain, explicit):
        assert torch.equal(a.grad, b.grad) and torch.equal(a.x_prev, b.x_prev)


# -- guidance on every k-th step --------------------------------------------------------------------
@pytest.mark.parametrize("between", ["reuse", "none"])
def test_guidance_every_k_computes_on_every_kth_step_only(tiny, image, mask, cfg, between):
    _, full, full_counts = run_states(tiny, image, mask, cfg)
    sampler, states, counts = run_states(tiny, image, mask, cfg.replace(guidance_every=3, guidance_between=between))
    computed = [0, 3, 6]
    assert full_counts["backward"] == cfg.num_steps == 8
    assert counts["backward"] == counts["forward_with_graph"] == len(computed)  # the UNet backward count drops
    assert counts["forward"] == cfg.num_steps  # still one UNet forward per step
    for s in states:
        if s.index in computed:
            assert torch.count_nonzero(s.grad) > 0 and "clip" in s.losses
        else:
            last = states[s.index - s.index % 3]
            if between == "reuse":
                assert torch.equal(s.grad, last.grad)  # exactly the cached gradient
            else:
                assert torch.count_nonzero(s.grad) == 0
            assert s.losses == {} and s.clip_per_sample is None
    # the first step is the paper's step; the trajectories part from the first skipped step on
    assert torch.equal(states[0].x_prev, full[0].x_prev) and torch.equal(states[0].grad, full[0].grad)
    assert not torch.equal(states[1].x_prev, full[1].x_prev)


def test_reused_gradient_follows_the_rows_that_survive_pruning(tiny, image, mask):
    cfg = fast_cfg(batch_size=4, prune_at=0.5, keep=2, guidance_every=3)
    assert cfg.prune_index == 3 and cfg.guidance_at(3) == "compute" and cfg.guidance_at(4) == "reuse"
    _, states, _ = run_states(tiny, image, mask, cfg)
    prune = states[3]
    assert states[4].grad.shape[0] == 2
    assert torch.equal(states[4].grad, prune.grad[prune.kept])


def test_guidance_until_leaves_the_last_steps_unguided(tiny, image, mask, cfg):
    _, states, counts = run_states(tiny, image, mask, cfg.replace(guidance_until=0.5))
    assert counts["backward"] == 4
    assert all(torch.count_nonzero(s.grad) > 0 for s in states[:4])
    assert all(torch.count_nonzero(s.grad) == 0 and s.losses == {} for s in states[4:])


# -- Jacobian-free guidance (MPGD's shortcut) -------------------------------------------------------
class Tape:
    """Records the sampler's noise draws and the augmentation seed of each loss call."""

    def __init__(self, sampler):
        self.draws, self.seeds = [], []
        draw = sampler._randn
        sampler._randn = lambda *shape: self.draws.append(draw(*shape)) or self.draws[-1]
        call = sampler.loss.__call__
        loss = sampler.loss

        class Recording(type(loss)):
            def __call__(inner, *args, seed=None, **kw):
                self.seeds.append(seed)
                return call(*args, seed=seed, **kw)

        loss.__class__ = Recording


@pytest.mark.parametrize("ddim", [False, True])
def test_jacobian_free_step_has_no_unet_backward_and_equals_guided_diffusion_math(tiny, image, mask, ddim):
    cfg = fast_cfg(guidance_gradient="mpgd", ddim=ddim, range_lambda=50)
    sampler = bl.BlendedSampler(tiny, image, mask, cfg)
    tape = Tape(sampler)
    with unet_calls(tiny) as counts:
        states = list(sampler.steps())
    assert counts["backward"] == counts["forward_with_graph"] == 0  # nothing flows through the UNet
    assert counts["forward"] == cfg.num_steps
    assert all(not p.requires_grad for p in tiny.unet.parameters())

    d = sampler.diffusion
    per_step = 1 if ddim else 2  # DDPM draws the step noise, then the background noise
    for s in states[:3]:
        t = torch.full((cfg.batch_size,), s.respaced_index, dtype=torch.long)
        with torch.no_grad():
            out = d.p_mean_variance(tiny.unet, s.x_t, t, clip_denoised=False)
            eps = d._predict_eps_from_xstart(s.x_t, t, out["pred_xstart"])  # ε̂, held constant below
        x = s.x_t.clone().requires_grad_()
        pred_x0 = d._predict_xstart_from_eps(x, t, eps)  # x̂0(x_t) with ε̂ fixed: no UNet in the graph
        fac = float(d.sqrt_one_minus_alphas_cumprod[s.respaced_index])
        loss, _ = sampler.loss(x, pred_x0, fac, seed=tape.seeds[s.index], mask=sampler.mask)
        grad = -torch.autograd.grad(loss, x)[0]
        torch.testing.assert_close(s.grad, grad, rtol=1e-4, atol=1e-6)
        torch.testing.assert_close(s.pred_x0, out["pred_xstart"], rtol=0, atol=0)
        if ddim:
            cond = d.condition_score(lambda *a, **k: grad, out, s.x_t, t, model_kwargs={})
            expected_x0 = cond["pred_xstart"]
            torch.testing.assert_close(s.pred_x0_guided, expected_x0, rtol=1e-4, atol=1e-5)
        else:
            mean = d.condition_mean(lambda *a, **k: grad, out, s.x_t, t, model_kwargs={})
            noise = tape.draws[1 + s.index * per_step]
            expected = mean + torch.exp(0.5 * out["log_variance"]) * noise
            torch.testing.assert_close(s.fg, expected, rtol=1e-4, atol=1e-5)

    # not the paper's gradient: dropping the UNet's Jacobian changes it
    full = next(bl.BlendedSampler(tiny, image, mask, cfg.replace(guidance_gradient="unet")).steps())
    assert torch.equal(full.pred_x0, states[0].pred_x0)
    assert not torch.allclose(full.grad, states[0].grad, rtol=1e-2, atol=1e-4)


# -- fewer CLIP views late --------------------------------------------------------------------------
def test_late_views_follow_the_schedule(tiny, image, mask):
    cfg = fast_cfg(aug_num=4, late_aug_num=2, late_at=0.5)
    sampler = bl.BlendedSampler(tiny, image, mask, cfg)
    views = []
    forward = sampler.loss.augment.forward

    def counting(x, seed=None, aug_num=None):
        out = forward(x, seed=seed, aug_num=aug_num)
        views.append(out.shape[0] // x.shape[0])
        return out

    sampler.loss.augment.forward = counting
    clip_rows = []
    handle = tiny.clip.visual.register_forward_hook(lambda m, args, out: clip_rows.append(args[0].shape[0]))
    try:
        states = list(sampler.steps())
    finally:
        handle.remove()
    assert views == [cfg.views_at(k) for k in range(cfg.num_steps)] == [4] * 4 + [2] * 4
    assert clip_rows == [v * cfg.batch_size for v in views]  # what CLIP actually encoded
    assert all(torch.count_nonzero(s.grad) > 0 for s in states)
