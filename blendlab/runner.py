"""The batch runner: :func:`edit` runs ``cfg.iterations_num`` batches of Algorithm 1, ranks every
sample by its masked CLIP distance and returns an :class:`EditResult` that names and saves them.

It stands above the sampler (one batch of Algorithm 1) and the hooks (the progress bar it adds);
other rankings (:mod:`blendlab.ranking`) are one call away on the result.

May import: errors, images, embeddings, guidance, inputs, models, plan, sampler, ranking, progress.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Iterable

import torch

from . import ranking
from .embeddings import encode_text, masked_clip_distance
from .errors import InputError
from .guidance import GuidanceLoss
from .progress import ProgressBar
from .images import save_image, to_pil
from .inputs import EditInputs, prepare
from .models import create_diffusion
from .plan import plan_steps
from .sampler import BlendedSampler, EditConfig, Hook

__all__ = ["EditResult", "edit"]


def _masks_for(mask: torch.Tensor, ids) -> torch.Tensor:
    """One mask per ``(iteration, batch index)`` in ``ids``; a single (1, 1, H, W) mask serves all."""
    if mask.shape[0] == 1:
        return mask
    return torch.cat([mask[b:b + 1] for _, b in ids])


@dataclasses.dataclass
class EditResult:
    """What :func:`edit` returns.

    Attributes:
        images: (N, 3, H, W) in [-1, 1], N = iterations_num × batch_size, in sampling order.
        distances: (N,) masked CLIP distance of each image to the prompt (lower = better); the
            reference's unnormalised one when ``cfg.reference_ranking``.
        ranked: ``[(PIL.Image, distance), ...]`` best first.
        order: indices into ``images``, best first.
        init_image, mask: the tensors the edit used; cfg: the config.
        sample_ids: ``(iteration, batch index)`` of each image (with pruning, only the survivors).
    """

    images: torch.Tensor
    distances: torch.Tensor
    init_image: torch.Tensor
    mask: torch.Tensor
    cfg: EditConfig
    models: object = dataclasses.field(repr=False, default=None)
    sample_ids: list = dataclasses.field(default_factory=list)

    @property
    def order(self) -> list[int]:
        return torch.argsort(self.distances, stable=True).tolist()

    @property
    def sample_masks(self) -> torch.Tensor:
        """The mask of each image: ``mask`` itself when one mask served the batch, else (N, 1, H, W)
        with per-sample masks following their samples (through pruning too)."""
        ids = self.sample_ids or [divmod(i, self.mask.shape[0]) for i in range(self.images.shape[0])]
        return _masks_for(self.mask, ids)

    @property
    def best(self) -> torch.Tensor:
        """The best-ranked image, (1, 3, H, W) in [-1, 1]."""
        return self.images[self.order[0]].unsqueeze(0)

    @property
    def ranked(self) -> list:
        return [(to_pil(self.images[i]), float(self.distances[i])) for i in self.order]

    def sample_name(self, i: int) -> str:
        """Reference file naming: ``<stem>_i_<iteration>_b_<batch index>.png``."""
        it, b = self.sample_ids[i] if self.sample_ids else divmod(i, self.cfg.batch_size)
        return self.cfg.sample_file(it, b)

    def rank_by(self, metric: str = "masked_clip") -> list:
        """``[(PIL.Image, score), ...]`` best first under another ranking metric
        (see :mod:`blendlab.ranking`: masked_clip, whole_clip, psnr, lpips, textness)."""
        return ranking.rank_by(self, metric)

    def save_ranked(self, folder) -> list:
        """Write every image to ``folder`` named by its CLIP distance (``0.7731`` -> ``07731_...``),
        as the reference's ``ranked/`` folder; atomic writes. Returns the paths, best first."""
        paths = []
        for i in self.order:
            dist = f"{float(self.distances[i]):.4f}".replace(".", "")
            paths.append(save_image(self.images[i], Path(folder) / f"{dist}_{self.sample_name(i)}"))
        return paths


def edit(models, image, mask=None, cfg: EditConfig | None = None, hooks: Iterable[Hook] = (), *,
         progress: bool = True, generator: torch.Generator | None = None) -> EditResult:
    """Run ``cfg.iterations_num`` batches of Blended Diffusion and rank the samples by CLIP.

    ``image``, ``mask`` and ``cfg`` go through the front door, :func:`blendlab.inputs.prepare`
    (checked once; its warnings given once, as Python warnings); or pass what it returned,
    ``edit(models, inputs)``, to trust it as it is (its warnings are then the caller's to give).
    The diffusion, the step plan, the prompt's CLIP embedding and the guidance loss are built once
    per edit and handed to every batch.

    One generator (seeded from ``cfg.seed``) drives all iterations, so the whole set is reproducible.
    ``hooks`` are called after every step of every iteration (``state.iteration`` tells which).
    A step that produces NaN or infinity raises :class:`blendlab.NonFiniteError` (naming the step,
    t, the term and what to try); no result is returned then.

    An empty prompt with CLIP guidance on warns :class:`blendlab.UnguidedWarning` once: the edit
    runs unguided (as the reference does); ``clip_guidance_lambda=0`` says it is meant.
    """
    if isinstance(image, EditInputs):
        if mask is not None or cfg is not None:
            raise InputError("edit(models, inputs) takes prepared inputs alone (they hold the mask and the "
                             "config); or pass edit(models, image, mask, cfg)")
        inputs = image.check_for(models)
    else:
        if cfg is None:
            raise InputError("edit needs an EditConfig: edit(models, image, mask, EditConfig(prompt=...))")
        inputs = prepare(models, image, mask, cfg)
        inputs.warn(stacklevel=2)
    cfg = inputs.cfg
    hooks = list(hooks)
    bar = ProgressBar() if progress else None
    if bar is not None:
        hooks.append(bar)
    if generator is None:
        generator = torch.Generator(device=models.device)
        generator.manual_seed(cfg.seed if cfg.seed is not None else torch.seed())
    # what depends only on the edit is built once here and handed to every batch
    diffusion = create_diffusion(models, cfg.timestep_respacing)
    plan = plan_steps(diffusion, cfg)
    inputs = inputs.to(models.device)
    init_image, used_mask = inputs.image, inputs.edit_mask
    text_embed = encode_text(models.clip, cfg.prompt)
    loss = GuidanceLoss(models, cfg, init_image, used_mask, text_embed) if cfg.guided else None
    once = dict(diffusion=diffusion, plan=plan, text_embed=text_embed, loss=loss)
    images, ids = [], []
    try:
        for iteration in range(cfg.iterations_num):
            sampler = BlendedSampler.from_inputs(models, inputs, generator, **once)
            sampler.iteration = iteration
            images.append(sampler.run(hooks))
            ids += [(iteration, int(b)) for b in sampler.last_state.sample_ids]
    finally:  # an error (NonFiniteError, a hook's) leaves no bar behind
        if bar is not None:
            bar.close()
    images = torch.cat(images).detach()
    distances = masked_clip_distance(models.clip, images, text_embed, _masks_for(used_mask, ids),
                                     normalize=not cfg.reference_ranking)
    return EditResult(images=images.cpu(), distances=distances.cpu(), init_image=init_image.cpu(),
                      mask=used_mask.cpu(), cfg=cfg, models=models, sample_ids=ids)
