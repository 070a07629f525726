"""blendlab.step_check: a hand-written blended step is checked against the library's, and a wrong
line is found where it first matters."""

import pytest
import torch

import blendlab as bl
from blendlab.errors import InputError
from blendlab.examples import example
from blendlab.guidance import GuidanceLoss
from blendlab.step_check import compare_steps, library_draws
from _fast import fast_cfg


@pytest.fixture(scope="module")
def setting():
    models = bl.load_models("tiny")
    ex = example("insert", models)
    cfg = fast_cfg(timestep_respacing="6", skip_timesteps=2, batch_size=2, aug_num=2)
    return models, ex.image, ex.mask, cfg


def _student(models, image, mask, cfg, *, noised_background=True, guided_mean=True, loss_fn=None):
    """The ~15 lines a lesson has the student write, with two switches for classic mistakes."""
    sampler = bl.BlendedSampler(models, image, mask, cfg)  # only for its diffusion and loss objects
    diffusion, loss = sampler.diffusion, loss_fn or sampler.loss

    def my_step(x_t, i, draws):
        t = torch.full((x_t.shape[0],), i, dtype=torch.long)
        x_t = x_t.requires_grad_()
        out = diffusion.p_mean_variance(models.denoiser, x_t, t, clip_denoised=False)
        fac = float(diffusion.sqrt_one_minus_alphas_cumprod[i])
        total, _ = loss(x_t, out["pred_xstart"], fac, seed=draws.seed, mask=mask)
        grad = -torch.autograd.grad(total, x_t)[0]
        mean = out["mean"] + (out["variance"] * grad if guided_mean else 0)
        fg = mean + (i > 0) * torch.exp(0.5 * out["log_variance"]) * draws.noise
        bg = diffusion.q_sample(image, torch.tensor([i]), noise=draws.bg_noise) if noised_background else image
        x_prev = fg * mask + bg * (1 - mask)
        return {"pred_x0": out["pred_xstart"], "fg": fg, "bg": bg.expand_as(fg), "x_prev": x_prev}

    return my_step


def test_the_hand_written_step_matches_the_library_at_every_step(setting):
    models, image, mask, cfg = setting
    result = compare_steps(_student(models, image, mask, cfg), models, image, mask, cfg)
    assert result.ok, result.text
    assert len(result.rows) == 4 and "matches blendlab's at all 4 steps" in result.text


def test_blending_with_the_un_noised_input_is_found_outside_the_mask_at_the_first_step(setting):
    models, image, mask, cfg = setting
    result = compare_steps(_student(models, image, mask, cfg, noised_background=False), models, image, mask, cfg)
    assert not result.ok
    assert result.first["step"] == 0 and result.first["quantity"] == "bg"
    assert result.first["where"] == "outside the mask" and result.first["inside"] == 0
    assert "first differs at step 0/4 · t=" in result.text and "the noised background" in result.text


def test_forgetting_the_guidance_is_found_in_the_proposal_not_in_x0(setting):
    models, image, mask, cfg = setting
    result = compare_steps(_student(models, image, mask, cfg, guided_mean=False), models, image, mask, cfg)
    assert result.first["quantity"] == "fg"  # x̂0 matched; the proposal did not


def test_a_loss_of_your_own_guides_both_steps(setting):
    models, image, mask, cfg = setting

    def redness(x_t, pred_x0, fac, seed=None, mask=None, aug_num=None):
        target = torch.tensor([1.0, -1.0, -1.0]).view(1, 3, 1, 1)
        total = (((pred_x0 - target) * mask) ** 2).sum() * 10
        return total, {"colour": total.detach()}

    mine = _student(models, image, mask, cfg, loss_fn=redness)
    assert compare_steps(mine, models, image, mask, cfg, guidance=redness).ok
    # and it is a different guidance than CLIP's: against the CLIP-guided library step it fails
    assert not compare_steps(mine, models, image, mask, cfg).ok


def test_the_draws_are_the_samplers(setting):
    models, image, mask, cfg = setting
    start, draws = library_draws(models, image, cfg)
    sampler = bl.BlendedSampler(models, image, mask, cfg)
    assert torch.equal(start, sampler.initial_noise())
    assert len(draws) == len(sampler.timesteps)


def test_settings_it_does_not_cover_are_refused(setting):
    models, image, mask, cfg = setting
    with pytest.raises(InputError, match="ddim=True"):
        library_draws(models, image, cfg.replace(ddim=True))
    with pytest.raises(InputError, match="fixed seed"):
        library_draws(models, image, cfg.replace(seed=None))
    with pytest.raises(InputError, match="should return"):
        compare_steps(lambda x, i, d: "oops", models, image, mask, cfg)
