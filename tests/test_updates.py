"""The reverse-step updates (blendlab.updates) against guided_diffusion's own p_sample and ddim_sample."""

import pytest
import torch
from guided_diffusion.gaussian_diffusion import _extract_into_tensor

import blendlab as bl
from blendlab.models import create_diffusion
from blendlab.updates import ddim_step, ddpm_step, eps_from_x0, schedule_at


@pytest.fixture(scope="module")
def setup():
    models = bl.load_models("tiny", device="cpu")
    diffusion = create_diffusion(models, "10")
    x = torch.randn(2, 3, models.image_size, models.image_size, generator=torch.Generator().manual_seed(1))
    return models, diffusion, x


def test_schedule_at_indexes_as_guided_diffusion_does():
    import numpy as np

    values = np.linspace(0.1, 0.9, 7)
    t = torch.tensor([0, 3, 6])
    assert torch.equal(schedule_at(values, t, (3, 2, 4, 4)), _extract_into_tensor(values, t, (3, 2, 4, 4)))
    assert schedule_at(values, t, (3, 2, 4, 4)).dtype == torch.float32


@pytest.mark.parametrize("step", [0, 4, 9])
def test_ddpm_step_is_p_sample(setup, step):
    models, diffusion, x = setup
    t = torch.full((x.shape[0],), step, dtype=torch.long)
    with torch.no_grad():
        torch.manual_seed(7)
        ref = diffusion.p_sample(models.denoiser, x, t, clip_denoised=False)["sample"]
        out = diffusion.p_mean_variance(models.denoiser, x, t, clip_denoised=False)
        torch.manual_seed(7)
        ours = ddpm_step(out["mean"], out["log_variance"], torch.randn_like(x), last=step == 0)
    assert torch.equal(ours, ref)
    if step:  # the noise matters except at the last step
        assert not torch.equal(ours, ddpm_step(out["mean"], out["log_variance"], torch.randn_like(x), False))


@pytest.mark.parametrize("eta", [0.0, 0.7])
@pytest.mark.parametrize("step", [0, 5])
def test_ddim_step_is_ddim_sample(setup, eta, step):
    models, diffusion, x = setup
    t = torch.full((x.shape[0],), step, dtype=torch.long)
    with torch.no_grad():
        torch.manual_seed(3)
        ref = diffusion.ddim_sample(models.denoiser, x, t, clip_denoised=False, eta=eta)["sample"]
        out = diffusion.p_mean_variance(models.denoiser, x, t, clip_denoised=False)
        torch.manual_seed(3)
        noise = torch.randn_like(x) if step != 0 else None
        ours = ddim_step(out["pred_xstart"], eps_from_x0(diffusion, x, t, out["pred_xstart"]),
                         schedule_at(diffusion.alphas_cumprod, t, x.shape),
                         schedule_at(diffusion.alphas_cumprod_prev, t, x.shape), eta, noise)
    assert torch.allclose(ours, ref, atol=1e-6, rtol=0)  # the same formula; ddim_sample adds 0·σ·z at t=0
    if eta == 0.0 or step == 0:
        assert torch.equal(ours, ref)


def test_eps_from_x0_inverts_q_sample(setup):
    _, diffusion, x = setup
    t = torch.tensor([2, 8])
    noise = torch.randn_like(x)
    x_t = diffusion.q_sample(x, t, noise=noise)
    assert torch.allclose(eps_from_x0(diffusion, x_t, t, x), noise, atol=1e-4)
    assert torch.equal(eps_from_x0(diffusion, x_t, t, x), diffusion._predict_eps_from_xstart(x_t, t, x))
