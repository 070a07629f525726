"""CLIP's view of blendlab's images: normalisation, text and image embeddings, and distances.

Images arrive in blendlab's convention, ``(B, 3, H, W)`` in ``[-1, 1]`` at any size; CLIP wants
``[0, 1]`` images at its input resolution, normalised by the mean and std of its training set.
Everything that embeds with CLIP (the guidance, the ranking, the text renderings, the measures)
goes through these functions, so the conversion is written once:

- :func:`encode_text`, :func:`encode_images`: float32 embeddings;
- :func:`spherical_distance`: the squared great-circle distance the paper's loss and ranking use;
- :func:`masked_clip_distance`: the paper's ranking score of masked images;
- :func:`extending_augmentations`, :func:`augment_views`: the paper's random views of what CLIP sees
  (the guidance's views and the toy CLIP's training data draw them the same way).

May import: nothing.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["CLIP_MEAN", "CLIP_STD", "clip_normalize", "spherical_distance", "encode_text", "encode_images",
           "masked_clip_distance", "extending_augmentations", "augment_views"]


#: CLIP's input normalisation: per-channel mean and std of its training images.
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


def extending_augmentations(p: float = 0.7) -> torch.nn.Module:
    """The paper's "extending augmentations": kornia ``RandomAffine(15°, translate 0.1, border
    padding)`` then ``RandomPerspective(0.7)``, each applied with probability ``p``."""
    import kornia.augmentation as K

    return torch.nn.Sequential(K.RandomAffine(degrees=15, translate=0.1, p=p, padding_mode="border"),
                               K.RandomPerspective(0.7, p=p))


def augment_views(augmentations: torch.nn.Module, x: torch.Tensor, seed: int | None = None) -> torch.Tensor:
    """``augmentations(x)`` with torch's global RNG seeded by ``seed`` inside a forked RNG (kornia draws
    from it; the caller's RNG state is untouched). About one draw in 10^6 of kornia's perspective is
    near-degenerate and leaves NaN pixels: that view is returned unaugmented, so a bad draw cannot
    stop a run (no host sync; finite views are untouched, bit for bit, and no NaN reaches the gradient)."""
    devices = [x.device.index or 0] if x.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        if seed is not None:
            torch.manual_seed(seed)
        augmented = augmentations(x)
    finite = torch.isfinite(augmented).flatten(1).all(1).view(-1, 1, 1, 1)
    return torch.where(finite, augmented, x)
