"""The oracle: Blended Diffusion run the way the authors' implementation runs it.

An independent re-statement of the paper's loop on guided_diffusion's own functions, kept apart from
:mod:`blendlab.sampler`'s code: the tests hold the sampler's fast modes and the speed benchmarks
against it, and a user who writes a step of their own can too
(``from blendlab.reference import ReferenceSampler``).

The reference implementation (omriav/blended-diffusion) samples with guided_diffusion's
``p_sample_loop_progressive`` and a ``cond_fn``. Its cost comes from three choices this module keeps:

1. ``p_sample`` runs the UNet once under ``no_grad`` to get μ, Σ and x̂0;
2. ``condition_mean`` then calls ``cond_fn``, which runs the UNet a *second* time on the same
   ``x_t`` with gradients enabled (``diffusion.p_mean_variance`` inside ``cond_fn``), computes the
   CLIP + range loss on ``x̂0·fac + x_t·(1−fac)`` and returns ``−∇_{x_t} loss``;
3. before sampling, the UNet's attention parameters (names containing ``qkv``, ``norm`` or
   ``proj``) get ``requires_grad_()``, so autograd keeps the weight-gradient paths of those layers in
   the graph (more saved activations, more bookkeeping).

After every yielded step a post-process blends the sample with the input noised to the step's
level: ``sample·mask + q_sample(init, t)·(1−mask)``. The installed guided_diffusion's loop has no
``postprocess_fn`` argument, so the loop is written here from ``p_sample`` (which itself calls
``p_mean_variance`` and ``condition_mean``) plus the blend.

Shared with blendlab so the comparison is fair: the same :class:`blendlab.models.Models`, the same
``SpacedDiffusion`` (``blendlab.sampler.create_diffusion``), the same augmentations
(:class:`blendlab.guidance.ExtendingAugmentations`), the same losses (spherical CLIP distance
averaged over views and summed over the batch, range loss), the same number of steps and batch.

Randomness comes from torch's global generator, as in the reference (``th.randn_like`` in
``p_sample``, kornia's draws); call ``torch.manual_seed`` first for a repeatable run.

May import: guidance, sampler.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch

from .guidance import ExtendingAugmentations, clip_normalize, encode_text, range_loss, spherical_distance
from .sampler import EditConfig, create_diffusion

__all__ = ["REFERENCE_TRAINABLE_KEYS", "reference_trainable", "ReferenceSampler", "reference_run"]

#: Substrings of the UNet parameter names the reference marks ``requires_grad_()``.
REFERENCE_TRAINABLE_KEYS = ("qkv", "norm", "proj")


@contextlib.contextmanager
def reference_trainable(unet: torch.nn.Module):
    """Within the block, parameters whose name contains ``qkv``/``norm``/``proj`` require grad, as
    in the reference; afterwards every flag is restored (the bundle is shared with blendlab)."""
    before = {name: p.requires_grad for name, p in unet.named_parameters()}
    try:
        for name, p in unet.named_parameters():
            if any(key in name for key in REFERENCE_TRAINABLE_KEYS):
                p.requires_grad_(True)
        yield [n for n, p in unet.named_parameters() if p.requires_grad]
    finally:
        for name, p in unet.named_parameters():
            p.requires_grad_(before[name])


class ReferenceSampler:
    """The reference's sampling loop for one batch.

    Args:
        models: a :class:`blendlab.models.Models` bundle (the same one blendlab uses).
        image: (1, 3, H, W) in [-1, 1] at ``models.image_size``.  mask: (1, 1, H, W) in {0, 1}.
        cfg: an :class:`blendlab.sampler.EditConfig`; uses prompt, timestep_respacing,
            skip_timesteps, batch_size, aug_num, clip_guidance_lambda, range_lambda,
            local_clip_guided_diffusion and enforce_background (DDPM only, as the paper's default).
    """

    def __init__(self, models, image: torch.Tensor, mask: torch.Tensor, cfg: EditConfig):
        if cfg.ddim:
            raise ValueError("the reference loop benchmark covers DDPM sampling only; set ddim=False")
        if cfg.background_preservation_loss:
            raise ValueError("the reference loop benchmark covers the paper's method only; "
                             "set background_preservation_loss=False")
        self.models = models
        self.cfg = cfg
        device = models.device
        self.init_image = image.to(device=device, dtype=torch.float32)
        self.mask = (1.0 - mask if cfg.invert_mask else mask).to(device=device, dtype=torch.float32)
        self.diffusion = create_diffusion(models, cfg.timestep_respacing)
        self.text_embed = encode_text(models.clip, cfg.prompt) if cfg.prompt else None
        self.augment = ExtendingAugmentations(models.clip_size, cfg.aug_num)
        # cond_fn receives the *original* (rescaled) timestep from SpacedDiffusion's wrapper; map it
        # back to the spaced index exactly (the reference's ``t * num_timesteps / 1000`` is exact
        # only for evenly spaced schedules).
        self._index_of = {int(orig): k for k, orig in enumerate(self.diffusion.timestep_map)}
        self.metrics: dict[str, list[float]] = {"clip_loss": [], "range_loss": []}

    # -- the reference's pieces ---------------------------------------------------------------
    def clip_loss(self, x_in: torch.Tensor) -> torch.Tensor:
        """Σ over the batch of the view-averaged spherical distance of the masked views."""
        masked = x_in * self.mask
        views = self.augment(masked)  # view-major: row v·B + b is view v of sample b
        embeds = self.models.clip.encode_image(clip_normalize(views.add(1).div(2))).float()
        dists = spherical_distance(embeds, self.text_embed)
        b = x_in.shape[0]
        loss = x_in.new_zeros(())
        for i in range(b):
            loss = loss + dists[i::b].mean()
        return loss

    def cond_fn(self, x: torch.Tensor, t: torch.Tensor, y=None) -> torch.Tensor:
        """−∇_x of the guidance loss, re-running the UNet on ``x`` with gradients enabled."""
        cfg = self.cfg
        if not cfg.prompt:
            return torch.zeros_like(x)
        with torch.enable_grad():
            x = x.detach().requires_grad_()
            index = self._index_of[int(round(float(t[0])))]
            t_idx = torch.full_like(t, index, dtype=torch.long)
            kwargs = {"y": y} if y is not None else {}
            out = self.diffusion.p_mean_variance(self.models.denoiser, x, t_idx, clip_denoised=False,
                                                 model_kwargs=kwargs)
            fac = float(self.diffusion.sqrt_one_minus_alphas_cumprod[index])
            x_in = out["pred_xstart"] * fac + x * (1 - fac)
            loss = x.new_zeros(())
            if cfg.clip_guidance_lambda != 0:
                clip_loss = self.clip_loss(x_in) * cfg.clip_guidance_lambda
                loss = loss + clip_loss
                self.metrics["clip_loss"].append(clip_loss.item())  # the reference logs every step
            if cfg.range_lambda != 0:
                r_loss = range_loss(out["pred_xstart"]).sum() * cfg.range_lambda
                loss = loss + r_loss
                self.metrics["range_loss"].append(r_loss.item())
            return -torch.autograd.grad(loss, x)[0]

    @torch.no_grad()
    def postprocess(self, out: dict, t: torch.Tensor) -> dict:
        """The blend: keep the sample inside the mask, the input noised to level t outside."""
        background = self.diffusion.q_sample(self.init_image, t[0])
        background = background.repeat(out["sample"].shape[0], 1, 1, 1)
        out["sample"] = out["sample"] * self.mask + background * (1 - self.mask)
        return out

    # -- the loop -----------------------------------------------------------------------------
    def steps(self) -> Iterator[dict]:
        """Yield ``{"sample", "pred_xstart", "t"}`` after each reverse step (blend applied)."""
        cfg, models, diffusion = self.cfg, self.models, self.diffusion
        b = cfg.batch_size
        shape = (b, 3, *self.init_image.shape[-2:])
        indices = list(range(diffusion.num_timesteps - cfg.skip_timesteps))[::-1]
        img = torch.randn(*shape, device=models.device)
        t_start = torch.full((b,), indices[0], device=models.device, dtype=torch.long)
        img = diffusion.q_sample(self.init_image.expand(b, -1, -1, -1), t_start, img)
        num_classes = models.num_classes
        model_kwargs = {}
        cond_fn = self.cond_fn
        with reference_trainable(models.unet):
            for i in indices:
                t = torch.full((b,), i, device=models.device, dtype=torch.long)
                if num_classes is not None:  # randomize_class=True in the reference
                    model_kwargs = {"y": torch.randint(0, num_classes, (b,), device=models.device)}
                with torch.no_grad():
                    out = diffusion.p_sample(models.denoiser, img, t, clip_denoised=False,
                                             cond_fn=cond_fn if cfg.prompt else None,
                                             model_kwargs=model_kwargs)
                    if not cfg.local_clip_guided_diffusion:
                        out = self.postprocess(out, t)
                out["t"] = i
                yield out
                img = out["sample"]

    def run(self) -> torch.Tensor:
        """All steps; the last x̂0 with the input pasted outside the mask (enforce_background)."""
        out = None
        for out in self.steps():
            pass
        pred = out["pred_xstart"]
        if self.cfg.enforce_background and not self.cfg.local_clip_guided_diffusion:
            pred = self.init_image * (1 - self.mask) + pred * self.mask
        return pred


def reference_run(models, image, mask, cfg: EditConfig, seed: int | None = None) -> torch.Tensor:
    """Run one batch of the reference loop; (B, 3, H, W) in [-1, 1]."""
    if seed is not None:
        torch.manual_seed(seed)
    return ReferenceSampler(models, image, mask, cfg).run()
