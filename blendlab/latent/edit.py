"""A ranked Blended Latent Diffusion edit, as :func:`blendlab.edit` is for Blended Diffusion.

    result = latent_edit(models, image, mask, LatentConfig(prompt="a red circle"), iterations=2)
    result.best, result.ranked, result.save_ranked("out/ranked"), bl.ranking.compare(result)

:func:`latent_edit` runs ``iterations`` batches of :class:`~blendlab.latent.sampler.BlendedLatentSampler`
(one sampler: the image, the mask and the prompt are checked and encoded once per edit, one generator
drives every batch) and ranks every sample by the masked CLIP distance to the prompt — the paper's
ranking, the same function :func:`blendlab.edit` ranks with. The CLIP that ranks is a blendlab
:class:`~blendlab.models.Models` bundle (:func:`ranking_models`): the toy world's CLIP for the toy
latent world, the tiny CLIP for the tiny preset, OpenAI's ViT-B/16 (the paper's) for Stable Diffusion.
It never guides: BLD is steered by the diffusion model's own text conditioning.

May import: errors, images, masks, embeddings, checkpoints, download, models, runner, progress,
latent.config, latent.models, latent.sampler, latent.tiny, latent.toy.
"""

from __future__ import annotations

import dataclasses
from typing import Iterable

import torch

from ..embeddings import encode_text, masked_clip_distance
from ..errors import InputError
from ..images import load_image
from ..masks import load_mask
from ..models import Models, load_models
from ..progress import ProgressBar
from ..runner import EditResult
from .config import LatentConfig
from .models import LatentModels
from .sampler import BlendedLatentSampler

__all__ = ["LatentEditResult", "latent_edit", "ranking_models", "load_clip_models", "latent_models_for",
           "STABLE_DIFFUSION"]

#: The pixel-world preset whose CLIP ranks each latent world's samples.
_RANKERS = {"toy-latent": "toy", "tiny-latent": "tiny"}


@dataclasses.dataclass
class LatentEditResult(EditResult):
    """What :func:`latent_edit` returns: an :class:`~blendlab.runner.EditResult` (``images``,
    ``distances``, ``order``, ``best``, ``ranked``, ``rank_by``, ``save_ranked``; the ranking
    functions of :mod:`blendlab.ranking` take it) whose ``cfg`` is the :class:`LatentConfig` and
    whose ``models`` is the ranking bundle. ``latent_models`` is the latent bundle that made it."""

    latent_models: LatentModels | None = dataclasses.field(default=None, repr=False)

    def sample_name(self, i: int) -> str:
        """``bld_i_<iteration>_b_<batch index>.png``."""
        it, b = self.sample_ids[i] if self.sample_ids else divmod(i, self.cfg.batch_size)
        return f"bld_i_{it}_b_{b}.png"


def load_clip_models(clip_model: str = "ViT-B/16", device=None, *, cache_dir=None, progress: bool = True) -> Models:
    """A CLIP-only :class:`~blendlab.models.Models` (``unet`` None) of OpenAI's ``clip_model``, downloaded
    once to blendlab's cache (``blendlab download`` fetches it), for ranking samples of a model that
    has no CLIP image tower (Stable Diffusion)."""
    from ..checkpoints import clip_remote_file, load_clip
    from ..download import ensure_file

    device = torch.device(device) if device is not None else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    path = ensure_file(clip_remote_file(clip_model), cache_dir=cache_dir, progress=progress)
    clip_net = load_clip(path, device).to(device).eval().requires_grad_(False)
    return Models(unet=None, clip=clip_net, image_size=int(clip_net.visual.input_resolution), preset="clip-only",
                  device=device, unet_config={}, diffusion_config={}, clip_name=clip_model)


def ranking_models(models: LatentModels, clip_model: str = "ViT-B/16", **kwargs) -> Models:
    """The bundle whose CLIP ranks ``models``' samples: ``load_models("toy")`` for the toy latent
    world (its CLIP learnt the same scenes and captions), ``load_models("tiny")`` for the tiny preset,
    else :func:`load_clip_models` (``clip_model``, the paper's ViT-B/16)."""
    preset = _RANKERS.get(models.name)
    if preset is not None:
        return load_models(preset, device=models.device, progress=False)
    return load_clip_models(clip_model, device=models.device, **kwargs)


#: The Stable Diffusion checkpoint the lessons and the CLI load on a GPU (the reference's SD 2.1 base).
STABLE_DIFFUSION = "stabilityai/stable-diffusion-2-1-base"


def latent_models_for(models: Models, device=None, **kwargs) -> LatentModels:
    """The latent world beside a Blended Diffusion bundle: the toy latent world for the toy world,
    the tiny latent preset for the tiny presets, else Stable Diffusion (:data:`STABLE_DIFFUSION`,
    downloaded from the Hub once; ``kwargs`` go to :func:`~blendlab.latent.models.load_latent_models`)."""
    from .tiny import tiny_latent_models
    from .toy import toy_latent_models

    device = device if device is not None else models.device
    if models.is_toy:
        return toy_latent_models(device=device)
    if models.is_tiny:
        return tiny_latent_models(device=device)
    from .models import load_latent_models

    return load_latent_models(STABLE_DIFFUSION, device=device, **kwargs)


def _tensor(value, size: int, load, what: str) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value
    if value is None:
        raise InputError(f"latent_edit needs {what}: a tensor or a file path")
    return load(value, size=size)


def latent_edit(models: LatentModels, image, mask, cfg: LatentConfig, *, iterations: int = 1,
                ranker: Models | None = None, hooks: Iterable = (), progress: bool = True,
                generator: torch.Generator | None = None) -> LatentEditResult:
    """Run ``iterations`` batches of Blended Latent Diffusion and rank the samples by masked CLIP distance.

    Args:
        models: a :class:`LatentModels`. image: (1, 3, H, W) in [-1, 1] or a file (loaded at
            ``models.image_size``). mask: (1 or B, 1, H, W) in {0, 1} or a file (1 = edit).
        cfg: the :class:`LatentConfig` (``cfg.batch_size`` samples per iteration, ``cfg.seed`` seeds
            the one generator of all iterations unless ``generator`` is given).
        ranker: the bundle whose CLIP ranks (default :func:`ranking_models`).
        hooks: called after every step of every iteration (``state.iteration`` tells which).

    Raises :class:`~blendlab.errors.InputError` for bad inputs (before anything runs) and
    :class:`~blendlab.errors.NonFiniteError` when a step leaves the finite numbers.
    """
    if not isinstance(cfg, LatentConfig):
        raise InputError(f"latent_edit needs a LatentConfig, got {type(cfg).__name__}; "
                         "LatentConfig(prompt=...) (EditConfig is Blended Diffusion's: use blendlab.edit)")
    if not isinstance(iterations, int) or isinstance(iterations, bool) or iterations < 1:
        raise InputError(f"iterations must be a whole number >= 1, got {iterations!r}")
    image = _tensor(image, models.image_size, load_image, "an image")
    mask = _tensor(mask, models.image_size, load_mask, "a mask")
    sampler = BlendedLatentSampler(models, image, mask, cfg, generator=generator)  # checks once, encodes once
    ranker = ranker if ranker is not None else ranking_models(models)
    hooks = list(hooks)
    bar = ProgressBar() if progress else None
    if bar is not None:
        hooks.append(bar)
    images, ids = [], []
    try:
        for iteration in range(iterations):
            sampler.iteration = iteration
            images.append(sampler.run(hooks))
            ids += [(iteration, b) for b in range(cfg.batch_size)]
    finally:
        if bar is not None:
            bar.close()
    images = torch.cat(images).detach()
    used_mask = sampler.mask
    text = encode_text(ranker.clip, cfg.prompt)
    ranked_mask = used_mask if used_mask.shape[0] == 1 else torch.cat([used_mask[b:b + 1] for _, b in ids])
    distances = masked_clip_distance(ranker.clip, images.to(ranker.device), text, ranked_mask.to(ranker.device))
    return LatentEditResult(images=images.cpu(), distances=distances.cpu(), init_image=sampler.init_image.cpu(),
                            mask=used_mask.cpu(), cfg=cfg, models=ranker, sample_ids=ids, latent_models=models)
