"""Blended Latent Diffusion (Avrahami, Fried, Lischinski, ACM TOG 2023) beside Blended Diffusion: the
same blend, done on the latents of a text-conditioned latent diffusion model, on diffusers' components.

Its rooms: :mod:`.models` (the frozen bundle of VAE, UNet, DDIM scheduler and text encoder, and its
loader for Hub ids and local folders), :mod:`.tiny` (the tiny preset of the tests), :mod:`.config`
(:class:`LatentConfig`, the validated settings), :mod:`.sampler` (the blended latent step and the step
generator, yielding :class:`LatentStepState`, a :class:`blendlab.sampler.StepState`) and
:mod:`.reconstruct` (the background after decoding: pixel paste and Poisson blending), :mod:`.edit` (the
ranked edit, :func:`latent_edit`, as :func:`blendlab.edit`), :mod:`.toy` (the
toy latent world trained here, :func:`toy_latent_models`; its training scripts :mod:`.train_vae` and
:mod:`.train_latent_unet`).

May import: latent.config, latent.models, latent.tiny, latent.sampler, latent.reconstruct, latent.edit, latent.toy.
"""

from .config import LatentConfig
from .edit import STABLE_DIFFUSION, LatentEditResult, latent_edit, latent_models_for, load_clip_models, ranking_models
from .models import CLIPPromptEncoder, LatentModels, PromptEncoder, load_latent_models
from .reconstruct import poisson_blend, reconstruct
from .sampler import BlendedLatentSampler, LatentStepState, latent_mask
from .tiny import tiny_latent_models
from .toy import toy_latent_models

__all__ = ["LatentConfig", "CLIPPromptEncoder", "LatentModels", "PromptEncoder", "load_latent_models",
           "poisson_blend", "reconstruct", "BlendedLatentSampler", "LatentStepState", "latent_mask",
           "tiny_latent_models", "toy_latent_models", "LatentEditResult", "latent_edit", "load_clip_models",
           "ranking_models", "latent_models_for", "STABLE_DIFFUSION"]
