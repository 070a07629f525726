"""The reverse-step updates as small pure functions on guided_diffusion's public schedule arrays.

The sampler's step is "the UNet's prediction, then one update, then the blend"; the update is here,
written from the equations so it reads without guided_diffusion's private helpers:

- :func:`schedule_at`: a schedule array (``diffusion.alphas_cumprod``, ...) at timesteps ``t``,
  as float32 on ``t``'s device, broadcast to the image batch — indexed the way guided_diffusion
  indexes its own arrays, so the numbers are its numbers bit for bit.
- :func:`eps_from_x0`: the noise ε̂ that a predicted x̂0 implies at ``x_t``:
  ε̂ = (√(1/ᾱ_t)·x_t − x̂0) / √(1/ᾱ_t − 1).
- :func:`ddpm_step`: x_{t-1} = μ + σ_t·z, no noise at the last step (Ho et al., Algorithm 2).
- :func:`ddim_step`: x_{t-1} = √ᾱ_{t-1}·x̂0 + √(1 − ᾱ_{t-1} − σ²)·ε̂ + σ·z with
  σ = η·√((1 − ᾱ_{t-1})/(1 − ᾱ_t))·√(1 − ᾱ_t/ᾱ_{t-1}) (Song et al., eq. 12).

tests/test_updates.py holds each against guided_diffusion's own ``p_sample`` and ``ddim_sample``.

May import: nothing.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["schedule_at", "eps_from_x0", "ddpm_step", "ddim_step"]


def schedule_at(values: np.ndarray, t: torch.Tensor, shape) -> torch.Tensor:
    """``values[t]`` (a 1-D schedule array, one entry per timestep) as float32 on ``t``'s device,
    shaped (B, 1, …) and broadcast to ``shape``."""
    picked = torch.from_numpy(values).to(device=t.device)[t].float()
    while picked.dim() < len(shape):
        picked = picked[..., None]
    return picked.expand(shape)


def eps_from_x0(diffusion, x_t: torch.Tensor, t: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
    """ε̂ implied by ``x0`` at ``x_t``, timestep(s) ``t`` of ``diffusion``'s schedule."""
    return ((schedule_at(diffusion.sqrt_recip_alphas_cumprod, t, x_t.shape) * x_t - x0)
            / schedule_at(diffusion.sqrt_recipm1_alphas_cumprod, t, x_t.shape))


def ddpm_step(mean: torch.Tensor, log_variance: torch.Tensor, noise: torch.Tensor, last: bool) -> torch.Tensor:
    """Ancestral sampling: ``mean + exp(log_variance / 2) · noise``, the noise dropped at the last step."""
    return mean + (0.0 if last else 1.0) * torch.exp(0.5 * log_variance) * noise


def ddim_step(x0: torch.Tensor, eps: torch.Tensor, alpha_bar: torch.Tensor, alpha_bar_prev: torch.Tensor,
              eta: float = 0.0, noise: torch.Tensor | None = None) -> torch.Tensor:
    """One DDIM update from x̂0 and ε̂ (ᾱ's broadcast to the batch, e.g. by :func:`schedule_at`).
    ``noise`` is added scaled by σ when given (pass None at the last step, or when η is 0)."""
    sigma = eta * torch.sqrt((1 - alpha_bar_prev) / (1 - alpha_bar)) * torch.sqrt(1 - alpha_bar / alpha_bar_prev)
    sample = x0 * torch.sqrt(alpha_bar_prev) + torch.sqrt(1 - alpha_bar_prev - sigma**2) * eps
    if noise is not None:
        sample = sample + sigma * noise
    return sample
