"""Guidance losses: CLIP spherical distance on augmented views, range loss, background preservation.

The total loss of one reverse step (Blended Diffusion, Sec. 4 and the reference ``cond_fn``)::

    x_in  = x̂0 · fac + x_t · (1 − fac),          fac = √(1 − ᾱ_t)
    L     = λ_clip · Σ_b mean_v D(CLIP(aug_v(x_in[b] · m)), CLIP(prompt))
          + λ_range · Σ_b mean((x̂0 − clamp(x̂0))²)
          [+ λ_lpips · LPIPS(x_in·(1−m), x0) + λ_l2 · MSE(x_in·(1−m), x0)]   (baseline only)

where D is the squared great-circle distance between unit embeddings and the views are the
"extending augmentations": view 0 is the masked image pooled to CLIP's size, views 1..V−1 are random
affine + perspective warps of it. The sampler adds ``variance · (−∇L)`` to the posterior mean.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = [
    "CLIP_MEAN",
    "CLIP_STD",
    "clip_normalize",
    "spherical_distance",
    "range_loss",
    "encode_text",
    "encode_images",
    "ExtendingAugmentations",
    "GuidanceLoss",
    "masked_clip_distance",
]

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def clip_normalize(x01: torch.Tensor) -> torch.Tensor:
    """Images in [0, 1] -> CLIP's input normalisation (per-channel mean/std of its training set)."""
    mean = torch.tensor(CLIP_MEAN, device=x01.device, dtype=x01.dtype).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD, device=x01.device, dtype=x01.dtype).view(1, 3, 1, 1)
    return (x01 - mean) / std


def spherical_distance(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Squared great-circle distance between L2-normalised embeddings: 2·arcsin(‖x̂−ŷ‖/2)².

    ``x`` is (N, D), ``y`` is (1, D) or (N, D); returns (N,). Equals θ²/2 for the angle θ between them.
    """
    x = F.normalize(x, dim=-1)
    y = F.normalize(y, dim=-1)
    return (x - y).norm(dim=-1).div(2).arcsin().pow(2).mul(2)


def range_loss(x: torch.Tensor) -> torch.Tensor:
    """Per-sample mean squared excess of ``x`` outside [-1, 1]; (B,)."""
    return (x - x.clamp(-1, 1)).pow(2).mean(dim=(1, 2, 3))


@torch.no_grad()
def encode_text(clip_model: torch.nn.Module, prompt: str | list[str]) -> torch.Tensor:
    """CLIP text embedding(s), float32, (1, D) for a string or (N, D) for a list."""
    import clip

    prompts = [prompt] if isinstance(prompt, str) else list(prompt)
    device = next(clip_model.parameters()).device
    tokens = clip.tokenize(prompts, truncate=True).to(device)
    return clip_model.encode_text(tokens).float()


def encode_images(clip_model: torch.nn.Module, x: torch.Tensor, normalize: bool = True,
                  mask: torch.Tensor | None = None) -> torch.Tensor:
    """CLIP image embeddings of images in [-1, 1] at any size: to [0, 1], times ``mask`` if given
    (black outside), bilinear (antialiased) resize to CLIP's input size, then CLIP normalisation
    (skip it with ``normalize=False``). (N, D) float32."""
    from torchvision.transforms import functional as TF

    size = int(clip_model.visual.input_resolution)
    x01 = x.add(1).div(2).clamp(0, 1)
    if mask is not None:
        x01 = x01 * mask
    if tuple(x01.shape[-2:]) != (size, size):
        x01 = TF.resize(x01, [size, size], antialias=True)
    if normalize:
        x01 = clip_normalize(x01)
    return clip_model.encode_image(x01).float()


class ExtendingAugmentations(torch.nn.Module):
    """The paper's "extending augmentations": a batch of B images becomes B·V views.

    Output order is view-major like the reference: ``[x_1..x_B (pooled, unaugmented),
    aug_1(x_1)..aug_1(x_B), ..., aug_{V-1}(x_B)]``. Every view is first average-pooled to CLIP's
    input size; views after the first go through kornia ``RandomAffine(15°, translate 0.1,
    border padding)`` then ``RandomPerspective(0.7)``, each applied with probability ``p``.

    kornia draws from torch's global generator, so :meth:`forward` takes an explicit ``seed`` and
    runs kornia inside a forked RNG: the same seed gives the same views, and the caller's global RNG
    state is untouched.
    """

    def __init__(self, output_size: int, aug_num: int, p: float = 0.7):
        super().__init__()
        import kornia.augmentation as K

        if aug_num < 1:
            raise ValueError(f"aug_num must be at least 1 (one unaugmented view), got {aug_num}")
        self.output_size = int(output_size)
        self.aug_num = int(aug_num)
        self.augmentations = torch.nn.Sequential(
            K.RandomAffine(degrees=15, translate=0.1, p=p, padding_mode="border"),
            K.RandomPerspective(0.7, p=p),
        )

    def forward(self, x: torch.Tensor, seed: int | None = None, aug_num: int | None = None) -> torch.Tensor:
        """``aug_num`` overrides the module's number of views for this call."""
        aug_num = self.aug_num if aug_num is None else int(aug_num)
        pooled = F.adaptive_avg_pool2d(x, (self.output_size, self.output_size))
        if aug_num == 1:
            return pooled
        repeated = pooled.repeat(aug_num - 1, 1, 1, 1)
        devices = [x.device.index or 0] if x.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            if seed is not None:
                torch.manual_seed(seed)
            augmented = self.augmentations(repeated)
        return torch.cat([pooled, augmented], dim=0)


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
    in use). ``typography_embed`` (1, D) is the direction of the prompt rendered as text
    (:func:`blendlab.typography.typography_direction`), needed when ``cfg.anti_typography_lambda``
    is non-zero.
    ``per_sample_clip`` of the last call holds each sample's view-averaged distance (B,).
    """

    def __init__(self, models, cfg, init_image, mask, text_embed, typography_embed=None):
        self.models = models
        self.cfg = cfg
        self.init_image = init_image
        self.mask = mask
        self.text_embed = text_embed
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


@torch.no_grad()
def masked_clip_distance(
    clip_model: torch.nn.Module,
    images: torch.Tensor,
    text_embed: torch.Tensor,
    mask: torch.Tensor | None = None,
    normalize: bool = True,
) -> torch.Tensor:
    """(N,) spherical distance between CLIP(image · mask) and the text embedding: the paper's
    ranking score (lower is better).

    As the reference ``unaugmented_clip_distance``: images go to [0, 1] and are multiplied by the
    mask (so the outside is black), then resized to CLIP's input size. Unlike the reference, the
    views are CLIP-normalised by default (the reference skips that, feeding CLIP out-of-distribution
    inputs); ``normalize=False`` reproduces the reference exactly.
    """
    return spherical_distance(encode_images(clip_model, images, normalize, mask), text_embed)
