"""The background after decoding: the VAE does not give back the input outside the mask exactly.

A latent edit keeps the source *latents* outside the mask, but the decoder's reconstruction of them
differs from the input (and the edit leaks across the seam through the decoder's receptive field).
:func:`reconstruct` repairs the decoded result:

- ``"pixel"``: paste the input outside the mask, ``x̂ ⊙ m + x ⊙ (1 − m)``; the outside is the input
  exactly, but a colour step may show at the seam.
- ``"poisson"``: seamless cloning (Pérez, Gangnet, Blake 2003), the reference's cv2 ``NORMAL_CLONE``
  written out: outside the mask f = x; inside, f solves the discrete Poisson equation with the
  decoded image's gradients as the guidance field, Σ_q∈N(p) (f_p − f_q) = Σ_q∈N(p) (x̂_p − x̂_q) on the
  4-neighbourhood within the image, with f_q = x_q where q lies outside the mask. So the inside keeps
  the edit's detail and meets the input at the seam without a step; one sparse solve per mask
  (scipy's SuperLU), all channels and samples at once.
- ``"optimization"`` (:func:`optimize_decoder`, the BLD paper's own): fine-tune a copy of the VAE's
  decoder for each sample so that it decodes the sample's latents to the edit inside the mask and to
  the input outside, ``L = ‖(D(z) − x̂) ⊙ m‖² + λ ‖(D(z) − x) ⊙ (1 − m)‖²`` (mean squared, λ = 100,
  Adam at 1e-4 for 75 steps, z = E(x̂): the reference's settings, with the posterior's mean where it
  draws a sample); the result is D(z). It needs the
  models: :func:`reconstruct` takes them as ``models=``.

Images are (B, 3, H, W) in [-1, 1]; masks (1 or B, 1, H, W) in {0, 1}, 1 = edit. Inputs are never
modified. A full mask has no background: both return the decoded image.

May import: errors, masks.
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import InputError
from ..masks import paste_background

__all__ = ["reconstruct", "poisson_blend", "optimize_decoder"]


def _poisson_one(decoded: np.ndarray, source: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """The Poisson solution for S channels: decoded and source (S, H, W) float64, inside (H, W) bool."""
    import scipy.sparse as sp
    from scipy.sparse.linalg import splu

    h, w = inside.shape
    n = int(inside.sum())
    index = -np.ones((h, w), dtype=np.int64)
    index[inside] = np.arange(n)
    ys, xs = np.nonzero(inside)
    rows, cols, vals = [np.arange(n)], [np.arange(n)], [np.zeros(n)]
    rhs = np.zeros((n, decoded.shape[0]))
    diag = np.zeros(n)
    for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1)):
        qy, qx = ys + dy, xs + dx
        valid = (qy >= 0) & (qy < h) & (qx >= 0) & (qx < w)  # beyond the image's edge: no neighbour
        p, qy, qx = np.nonzero(valid)[0], qy[valid], qx[valid]
        diag[p] += 1
        rhs[p] += (decoded[:, ys[p], xs[p]] - decoded[:, qy, qx]).T  # the guidance field x̂_p − x̂_q
        q = index[qy, qx]
        within = q >= 0
        rows.append(p[within])
        cols.append(q[within])
        vals.append(-np.ones(int(within.sum())))
        rhs[p[~within]] += source[:, qy[~within], qx[~within]].T  # the boundary: f_q = x_q
    vals[0] = diag
    a = sp.csc_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))
    solution = splu(a).solve(rhs)
    out = source.copy()
    out[:, ys, xs] = solution.T
    return out


def poisson_blend(decoded: torch.Tensor, source: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Seamless cloning of ``decoded`` into ``source`` inside ``mask`` (see the module docstring).

    Args:
        decoded: (B, 3, H, W) the decoded result. source: (1 or B, 3, H, W) the input.
        mask: (1 or B, 1, H, W) in {0, 1}, 1 = edit.
    Returns (B, 3, H, W) float32 on ``decoded``'s device: ``source`` exactly outside the mask, the
    Poisson solution inside (not clamped; it stays near [-1, 1] for images in it).
    """
    _check(decoded, source, mask)
    b = decoded.shape[0]
    d = decoded.detach().double().cpu().numpy()
    x = source.detach().double().cpu().expand(b, -1, -1, -1).numpy()
    m = mask.detach().cpu().expand(b, -1, -1, -1).numpy()[:, 0] > 0.5
    out = np.empty_like(d)
    h, w = d.shape[-2:]
    shared = mask.shape[0] == 1  # one mask: one solve for every sample and channel
    for rows, inside in ([(list(range(b)), m[0])] if shared else [([i], m[i]) for i in range(b)]):
        if not inside.any():
            out[rows] = x[rows]
        elif inside.all():
            out[rows] = d[rows]
        else:
            solved = _poisson_one(d[rows].reshape(-1, h, w), x[rows].reshape(-1, h, w), inside)
            out[rows] = solved.reshape(len(rows), 3, h, w)
    return torch.from_numpy(out).float().to(decoded.device)


def _check(decoded, source, mask) -> None:
    if decoded.dim() != 4 or decoded.shape[1] != 3:
        raise InputError(f"decoded images must be (B, 3, H, W), got {tuple(decoded.shape)}")
    if source.dim() != 4 or source.shape[1] != 3 or source.shape[0] not in (1, decoded.shape[0]):
        raise InputError(f"the source must be (1 or B, 3, H, W), got {tuple(source.shape)}")
    if mask.dim() != 4 or mask.shape[1] != 1 or mask.shape[0] not in (1, decoded.shape[0]):
        raise InputError(f"the mask must be (1 or B, 1, H, W), got {tuple(mask.shape)}")
    if not (decoded.shape[-2:] == source.shape[-2:] == mask.shape[-2:]):
        raise InputError(f"decoded {tuple(decoded.shape[-2:])}, source {tuple(source.shape[-2:])} and mask "
                         f"{tuple(mask.shape[-2:])} must have the same height and width")


def optimize_decoder(models, decoded: torch.Tensor, source: torch.Tensor, mask: torch.Tensor, *, steps: int = 75,
                     lr: float = 1e-4, preservation: float = 100.0) -> torch.Tensor:
    """Background reconstruction by decoder fine-tuning (the module docstring), one sample at a time.

    ``models``: a :class:`~blendlab.latent.models.LatentModels` (its VAE is copied, in float32, and
    left as it was). Returns (B, 3, H, W) in [-1, 1]: each sample's latents decoded by its own
    fine-tuned decoder copy."""
    import copy

    _check(decoded, source, mask)
    if not (isinstance(steps, int) and steps >= 1):
        raise InputError(f"steps must be a whole number >= 1, got {steps!r}")
    device = models.device
    source = source.to(device, torch.float32)
    mask = mask.to(device, torch.float32)
    out = []
    for b in range(decoded.shape[0]):
        fg = decoded[b:b + 1].to(device, torch.float32)
        bg = source[b:b + 1] if source.shape[0] > 1 else source
        m = mask[b:b + 1] if mask.shape[0] > 1 else mask
        vae = copy.deepcopy(models.vae).float().requires_grad_(False)
        with torch.no_grad():
            z = vae.encode(fg).latent_dist.mean  # unscaled: the decoder's own input
        parts = [vae.decoder] + ([vae.post_quant_conv] if getattr(vae, "post_quant_conv", None) is not None else [])
        params = [p for part in parts for p in part.parameters()]
        for p in params:
            p.requires_grad_(True)
        opt = torch.optim.Adam(params, lr=lr)
        for _ in range(steps):
            with torch.enable_grad():
                rec = vae.decode(z).sample
                loss = ((rec - fg) * m).pow(2).mean() + preservation * ((rec - bg) * (1 - m)).pow(2).mean()
                opt.zero_grad(set_to_none=True)
                loss.backward()
            opt.step()
        with torch.no_grad():
            out.append(vae.decode(z).sample.clamp(-1, 1))
    return torch.cat(out)


def reconstruct(decoded: torch.Tensor, source: torch.Tensor, mask: torch.Tensor, how: str, models=None) -> torch.Tensor:
    """The decoded result with its background reconstructed ``how``: "none" (``decoded`` itself),
    "pixel" (the input pasted outside the mask), "poisson" (:func:`poisson_blend`) or "optimization"
    (:func:`optimize_decoder`, which needs ``models``). Shapes as :func:`poisson_blend`."""
    if how == "optimization":
        if models is None:
            raise InputError("the 'optimization' reconstruction fine-tunes the VAE's decoder: pass "
                             "models= (the LatentModels the edit used)")
        return optimize_decoder(models, decoded, source, mask)
    if how == "none":
        return decoded
    if how == "pixel":
        _check(decoded, source, mask)
        return paste_background(decoded, source, mask)
    if how == "poisson":
        return poisson_blend(decoded, source, mask)
    raise InputError(f"reconstruction must be 'none', 'pixel', 'poisson' or 'optimization', got {how!r}")
