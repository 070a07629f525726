"""Measures of edited images: what rankings, figures, lessons and benchmarks compare samples by.

Every measure takes image tensors in blendlab's convention, ``(N, 3, H, W)`` in ``[-1, 1]``, and
returns ``(N,)`` on the CPU:

==========================  ================================================================  ==========
measure                     what it measures                                                  better
==========================  ================================================================  ==========
:func:`psnr`                fidelity to a reference outside the mask (dB, in [0, 1] units)    higher
:func:`background_drift`    mean squared difference to the input outside the mask             lower
:func:`seam_strength`       mean image gradient on the mask border: a visible seam is a jump  lower
:func:`textness`            how much the (masked) image looks like the prompt *written out*   lower
==========================  ================================================================  ==========

:mod:`blendlab.ranking` ranks an edit's samples by them (and by CLIP distances); the figures of
:mod:`blendlab.viz` show them; the failure-case lab (:mod:`blendlab.typography`) calibrates
:func:`textness`.

May import: errors, images, masks, embeddings, textrender.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from .embeddings import encode_images
from .errors import InputError
from .images import as_image_batch
from .masks import dilate_mask, erode_mask
from .textrender import NEUTRAL_WORDS, prompt_words, text_render_embedding

__all__ = ["psnr", "background_drift", "seam_strength", "border_band", "image_gradient", "textness"]


# -- the background ---------------------------------------------------------------------------------
def psnr(images: torch.Tensor, reference: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """(N,) PSNR in dB of ``images`` against ``reference`` (both in [-1, 1], compared in [0, 1])
    over the pixels where ``mask`` is 0 (the background); the whole image without a mask.
    ``inf`` where they are identical."""
    diff2 = (images.float() - reference.float()).div(2).pow(2)
    if mask is None:
        keep = torch.ones_like(diff2[:, :1])
    else:
        keep = (1 - mask.float()).expand(diff2.shape[0], 1, *diff2.shape[-2:])
    count = keep.sum(dim=(1, 2, 3)) * diff2.shape[1]
    if torch.any(count == 0):
        raise InputError("the mask covers the whole image, so there is no background to compare; "
                         "use a CLIP metric ('masked_clip', 'whole_clip') instead of 'psnr'/'lpips'")
    mse = (diff2 * keep).sum(dim=(1, 2, 3)) / count
    return 10 * torch.log10(1 / mse)


def background_drift(images: torch.Tensor, init_image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B,) mean squared difference to the input outside the mask (mask = 0), in [0, 1] units.
    0 when the background is the input's, as ``enforce_background`` makes it."""
    if images.shape[-2:] != init_image.shape[-2:] or mask.shape[-2:] != images.shape[-2:]:
        raise InputError("images, init_image and mask must have the same height and width")
    keep = (1 - mask.detach().float()).to(images.device)
    if keep.sum() == 0:
        raise InputError("the mask covers the whole image: there is no background to compare")
    diff2 = (images.detach().float() - init_image.detach().float().to(images.device)).div(2).pow(2).mean(dim=1, keepdim=True)
    return (diff2 * keep).sum(dim=(1, 2, 3)).div(keep.sum(dim=(1, 2, 3))).cpu()


# -- the seam ----------------------------------------------------------------------------------------
def border_band(mask: torch.Tensor, width: int = 1) -> torch.Tensor:
    """(1, 1, H, W) in {0, 1}: the pixels within ``width`` of the border of the first mask, on both
    sides (dilated minus eroded)."""
    m = mask.detach().float().reshape(-1, 1, *mask.shape[-2:])[:1]
    return (dilate_mask(m, width) - erode_mask(m, width)).clamp(0, 1)


def image_gradient(images: torch.Tensor) -> torch.Tensor:
    """(B, H, W): |∂x| + |∂y| (forward differences, mean over channels) of images in [0, 1] units
    (clamped, as drawn)."""
    x = images.detach().float().add(1).div(2).clamp(0, 1)
    gx = F.pad((x[..., :, 1:] - x[..., :, :-1]).abs(), (0, 1, 0, 0))
    gy = F.pad((x[..., 1:, :] - x[..., :-1, :]).abs(), (0, 0, 0, 1))
    return (gx + gy).mean(dim=1)


def seam_strength(images: torch.Tensor, mask: torch.Tensor, width: int = 1) -> torch.Tensor:
    """(B,) mean image gradient ``|∂x| + |∂y|`` (in [0, 1] units) on the mask border: the pixels
    within ``width`` of it on both sides. A visible seam is a jump there; compare with the input's
    own value, which is what the border would have without any edit."""
    if not isinstance(images, torch.Tensor) or images.dim() not in (3, 4):
        raise InputError("images must be a (B, 3, H, W) tensor in [-1, 1]")
    images = images if images.dim() == 4 else images[None]
    if tuple(mask.shape[-2:]) != tuple(images.shape[-2:]):
        raise InputError(f"mask is {tuple(mask.shape[-2:])} but the images are {tuple(images.shape[-2:])}")
    if width < 1:
        raise InputError(f"width must be at least 1 pixel, got {width}")
    ring = border_band(mask, width)[0, 0].to(images.device)
    if ring.sum() == 0:
        raise InputError("the mask has no border (it is empty or covers the whole image)")
    return (image_gradient(images) * ring).sum(dim=(1, 2)).div(ring.sum()).cpu()


# -- text-ness ---------------------------------------------------------------------------------------
def _square_crop(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """``x·m`` cropped to the smallest square around the mask's bounding box (inside the image)."""
    ys, xs = torch.nonzero(m[0] > 0, as_tuple=True)
    H, W = x.shape[-2:]
    if ys.numel() == 0:
        raise InputError("mask is empty: there is no region to score; paint the edit region white (1)")
    side = min(max(int(ys.max() - ys.min()), int(xs.max() - xs.min())) + 1, H, W)
    cy, cx = (int(ys.min()) + int(ys.max()) + 1) // 2, (int(xs.min()) + int(xs.max()) + 1) // 2
    top, left = min(max(0, cy - side // 2), H - side), min(max(0, cx - side // 2), W - side)
    masked = (x + 1) * m - 1  # outside the mask is black, as in the masked CLIP ranking
    return masked[..., top:top + side, left:left + side]


@torch.no_grad()
def textness(clip_model, images, prompt: str, mask: torch.Tensor | None = None,
             neutral_words: Sequence[str] = NEUTRAL_WORDS, crop: bool = False) -> torch.Tensor:
    """How much the images look like the prompt *written out*: (N,) on the CPU, in [-2, 2].

    ``max_w cos(CLIP(image), R(w)) − mean_n cos(CLIP(image), R(n))`` where ``R`` is
    :func:`text_render_embedding`, ``w`` runs over :func:`prompt_words` and ``n`` over neutral words.
    Positive: closer to the prompt's writing than to writing in general. With ``mask`` ((1 or N, 1,
    H, W)), only the masked region counts: it is cut out on black and, by default, scored in the whole
    frame — the view the guidance and the paper's ranking give CLIP. ``crop=True`` instead crops a
    square around the mask and scores it at CLIP's resolution (a zoomed look at small regions).
    """
    if not isinstance(prompt, str) or not prompt.strip():
        raise InputError("prompt is empty; textness measures whether the image shows the prompt's words")
    words = prompt_words(prompt)
    lowered = {w.lower() for w in words}
    neutral = [n for n in neutral_words if n.lower() not in lowered]
    if not neutral:
        raise InputError("no neutral word left (all are words of the prompt); pass other neutral_words")
    device = next(clip_model.parameters()).device
    x = as_image_batch(images).to(device)
    if mask is not None:
        m = mask.to(device=device, dtype=x.dtype)
        if m.dim() != 4 or m.shape[1] != 1 or m.shape[0] not in (1, x.shape[0]) or m.shape[-2:] != x.shape[-2:]:
            raise InputError(f"mask must be (1 or N, 1, H, W) matching the images {tuple(x.shape)}, "
                             f"got {tuple(mask.shape)}")
        if crop:
            crops = [_square_crop(x[i:i + 1], m[i if m.shape[0] > 1 else 0]) for i in range(x.shape[0])]
            img = torch.cat([encode_images(clip_model, c) for c in crops])
        else:
            if not torch.any(m > 0):
                raise InputError("mask is empty: no region to score; pass mask=None for the whole image")
            img = encode_images(clip_model, x * m)
    else:
        img = encode_images(clip_model, x)
    img = F.normalize(img, dim=-1)
    prompt_sim = torch.stack([img @ text_render_embedding(clip_model, w)[0] for w in words]).amax(0)
    neutral_sim = torch.stack([img @ text_render_embedding(clip_model, n)[0] for n in neutral]).mean(0)
    return (prompt_sim - neutral_sim).cpu()
