"""Every guidance loss term: CLIP on augmented views, range, background preservation, anti-typography.

The total loss of one reverse step (Blended Diffusion, Sec. 4 and the reference ``cond_fn``)::

    x_in  = x̂0 · fac + x_t · (1 − fac),          fac = √(1 − ᾱ_t)
    L     = λ_clip · Σ_b mean_v D(CLIP(aug_v(x_in[b] · m)), CLIP(prompt))
          + λ_range · Σ_b mean((x̂0 − clamp(x̂0))²)
          [+ λ_lpips · LPIPS(x_in·(1−m), x0) + λ_l2 · MSE(x_in·(1−m), x0)]   (baseline only)
          [+ λ_typo · Σ_b mean_v ⟨CLIP(aug_v(x_in[b] · m)), d⟩]              (beyond the paper)

where D is the squared great-circle distance between unit embeddings and the views are the
"extending augmentations": view 0 is the masked image pooled to CLIP's size, views 1..V−1 are random
affine + perspective warps of it. ``d`` is :func:`typography_direction`: CLIP's embedding of the
prompt written out minus that of neutral words written out. The sampler adds ``variance · (−∇L)``
to the posterior mean.

The CLIP embeddings and distances come from :mod:`blendlab.embeddings` (re-exported here), the
written-out prompt from :mod:`blendlab.textrender`.

May import: errors, embeddings, textrender.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from .embeddings import (  # noqa: F401  (re-exported: the guidance's CLIP side)
    CLIP_MEAN,
    CLIP_STD,
    augment_views,
    clip_normalize,
    encode_images,
    encode_text,
    extending_augmentations,
    masked_clip_distance,
    spherical_distance,
)
from .errors import InputError
from .textrender import NEUTRAL_WORDS, prompt_words, text_render_embedding

__all__ = [
    "CLIP_MEAN",
    "CLIP_STD",
    "clip_normalize",
    "spherical_distance",
    "range_loss",
    "encode_text",
    "encode_images",
    "typography_direction",
    "ExtendingAugmentations",
    "GuidanceLoss",
    "masked_clip_distance",
    "BATCH_SUMMED",
]

#: The loss terms :class:`GuidanceLoss` sums over the batch (as the reference does): divided by the
#: batch's rows they are per-sample means. "l2" is ``mse_loss``, already a mean.
BATCH_SUMMED = ("clip", "typography", "range", "lpips")


def range_loss(x: torch.Tensor) -> torch.Tensor:
    """Per-sample mean squared excess of ``x`` outside [-1, 1]; (B,)."""
    return (x - x.clamp(-1, 1)).pow(2).mean(dim=(1, 2, 3))


def typography_direction(clip_model, prompt: str, neutral_words: Sequence[str] = NEUTRAL_WORDS) -> torch.Tensor:
    """The direction anti-typography guidance pushes away from: ``R(prompt) − mean_n R(n)``, CLIP's
    embedding of the prompt written out minus that of neutral words written out
    (:func:`blendlab.textrender.text_render_embedding`; the contrast :func:`blendlab.metrics.textness`
    measures). For a unit image embedding ``v``, ``v · d`` is how much more ``v`` looks like the
    prompt's writing than like writing in general. (1, D) float32."""
    lowered = {w.lower() for w in prompt_words(prompt)}
    neutral = [n for n in neutral_words if n.lower() not in lowered]
    if not neutral:
        raise InputError("no neutral word left (all are words of the prompt); pass other neutral_words")
    prompt_embed = text_render_embedding(clip_model, prompt)
    neutral_embed = torch.cat([text_render_embedding(clip_model, n) for n in neutral]).mean(0, keepdim=True)
    return prompt_embed - neutral_embed


class ExtendingAugmentations(torch.nn.Module):
    """The paper's "extending augmentations": a batch of B images becomes B·V views.

    Output order is view-major like the reference: ``[x_1..x_B (pooled, unaugmented),
    aug_1(x_1)..aug_1(x_B), ..., aug_{V-1}(x_B)]``. Every view is first average-pooled to CLIP's
    input size; views after the first go through kornia ``RandomAffine(15°, translate 0.1,
    border padding)`` then ``RandomPerspective(0.7)``, each applied with probability ``p``
    (:func:`~blendlab.embeddings.extending_augmentations`).

    kornia draws from torch's global generator, so :meth:`forward` takes an explicit ``seed`` and
    runs kornia inside a forked RNG (:func:`~blendlab.embeddings.augment_views`): the same seed gives
    the same views, the caller's global RNG state is untouched, and a view a degenerate draw filled
    with NaN stays unaugmented.
    """

    def __init__(self, output_size: int, aug_num: int, p: float = 0.7):
        super().__init__()
        if aug_num < 1:
            raise ValueError(f"aug_num must be at least 1 (one unaugmented view), got {aug_num}")
        self.output_size = int(output_size)
        self.aug_num = int(aug_num)
        self.augmentations = extending_augmentations(p)

    def forward(self, x: torch.Tensor, seed: int | None = None, aug_num: int | None = None) -> torch.Tensor:
        """``aug_num`` overrides the module's number of views for this call."""
        aug_num = self.aug_num if aug_num is None else int(aug_num)
        pooled = F.adaptive_avg_pool2d(x, (self.output_size, self.output_size))
        if aug_num == 1:
            return pooled
        return torch.cat([pooled, augment_views(self.augmentations, pooled.repeat(aug_num - 1, 1, 1, 1), seed)], dim=0)


class GuidanceLoss:
    """The loss whose negative gradient guides one reverse step.

    Args:
        models: a :class:`blendlab.models.Models` (uses ``clip``, ``clip_size``, ``lpips()``).
        cfg: the :class:`blendlab.sampler.EditConfig` (lambdas, aug_num, background flags).
        init_image: (1, 3, H, W) in [-1, 1].
        mask: (1, 1, H, W) in {0, 1}, 1 = edit.
        text_embed: (1, D) CLIP embedding of the prompt.

    Calling it returns ``(total, terms)``: the weighted scalar loss to differentiate and a dict of
    *unweighted* detached scalar tensors ("clip", "range", "l2", "lpips", "typography"; only those
    in use). When ``cfg.anti_typography_lambda`` is non-zero the loss computes
    :func:`typography_direction` of the prompt (or takes ``typography_embed`` (1, D) if given).
    ``per_sample_clip`` of the last call holds each sample's view-averaged distance (B,).
    """

    def __init__(self, models, cfg, init_image, mask, text_embed, typography_embed=None):
        self.models = models
        self.cfg = cfg
        self.init_image = init_image
        self.mask = mask
        self.text_embed = text_embed
        if typography_embed is None and getattr(cfg, "anti_typography_lambda", 0):
            typography_embed = typography_direction(models.clip, cfg.prompt)
        self.typography_embed = typography_embed
        self.augment = ExtendingAugmentations(models.clip_size, cfg.aug_num)
        self.per_sample_clip: torch.Tensor | None = None

    def view_embeddings(self, x_in: torch.Tensor, seed: int | None, mask=None, aug_num=None) -> torch.Tensor:
        """CLIP embeddings of the augmented views of the masked ``x_in``: (V, B, D); V = ``aug_num``
        (default ``cfg.aug_num``)."""
        views = self.augment(x_in * (self.mask if mask is None else mask), seed=seed, aug_num=aug_num)
        embeds = self.models.clip.encode_image(clip_normalize(views.add(1).div(2))).float()
        return embeds.view(-1, x_in.shape[0], embeds.shape[-1])  # views are view-major

    def clip_distances(self, x_in: torch.Tensor, seed: int | None, mask=None) -> torch.Tensor:
        """(B,) view-averaged spherical distance of the masked ``x_in`` to the prompt."""
        embeds = self.view_embeddings(x_in, seed, mask)
        return spherical_distance(embeds.flatten(0, 1), self.text_embed).view(embeds.shape[:2]).mean(0)

    def __call__(self, x_t, pred_x0, fac: float, seed: int | None = None, mask=None, aug_num=None):
        """``mask`` overrides ``self.mask`` for this call (the sampler passes the rows that survived
        pruning); ``aug_num`` the number of CLIP views (the sampler's ``late_aug_num``)."""
        cfg = self.cfg
        mask = self.mask if mask is None else mask
        x_in = pred_x0 * fac + x_t * (1 - fac)
        total = x_t.new_zeros(())
        terms: dict[str, torch.Tensor] = {}
        typo_lambda = getattr(cfg, "anti_typography_lambda", 0)
        if cfg.clip_guidance_lambda != 0 or typo_lambda:
            embeds = self.view_embeddings(x_in, seed, mask, aug_num)  # all views in one CLIP call
            flat = embeds.flatten(0, 1)
            if cfg.clip_guidance_lambda != 0:
                per_sample = spherical_distance(flat, self.text_embed).view(embeds.shape[:2]).mean(0)
                self.per_sample_clip = per_sample.detach()
                clip_loss = per_sample.sum()
                total = total + clip_loss * cfg.clip_guidance_lambda
                terms["clip"] = clip_loss.detach()
            if typo_lambda:
                # Anti-typography (beyond the paper): how much more each view looks like the
                # prompt *written out* than like neutral writing; minimising it steers away from
                # painting the words themselves.
                sim = F.normalize(flat, dim=-1) @ self.typography_embed[0]
                typo = sim.view(embeds.shape[:2]).mean(0).sum()
                total = total + typo * typo_lambda
                terms["typography"] = typo.detach()
        if cfg.range_lambda != 0:
            r = range_loss(pred_x0).sum()
            total = total + r * cfg.range_lambda
            terms["range"] = r.detach()
        if cfg.background_preservation_loss:
            # As the reference: the masked-out x_in is compared with the *whole* input image.
            background = x_in * (1 - mask)
            if cfg.lpips_sim_lambda:
                lp = self.models.lpips()(background, self.init_image).sum()
                total = total + lp * cfg.lpips_sim_lambda
                terms["lpips"] = lp.detach()
            if cfg.l2_sim_lambda:
                l2 = F.mse_loss(background, self.init_image.expand_as(background))
                total = total + l2 * cfg.l2_sim_lambda
                terms["l2"] = l2.detach()
        return total, terms


