"""Ranking the samples of an edit, and seeing where different rankings disagree.

Blended Diffusion draws several samples and keeps the one CLIP likes best *inside the mask*. That
ranking only looks at the masked region and only through CLIP, so it inherits CLIP's blind spots (a
sample that paints the word "rubber" can win for "rubber toy"). The metrics here rank the same
samples by other criteria:

===============  ==================================================================  ==========
name             what it measures                                                    better
===============  ==================================================================  ==========
``masked_clip``  spherical CLIP distance of the masked region to the prompt (the     lower
                 paper's / reference's ranking, :func:`~blendlab.embeddings.masked_clip_distance`;
                 unnormalised views, as the reference, when ``cfg.reference_ranking``)
``whole_clip``   the same for the whole image (does the edit fit its surroundings?)  lower
``psnr``         background fidelity: :func:`~blendlab.metrics.psnr` outside the     higher
                 mask; infinite when the background is the input's, as
                 ``enforce_background`` makes it
``lpips``        LPIPS(VGG) between the backgrounds (masked region blanked in both); lower
                 for tiny presets LPIPS is randomly initialised: mechanics only
``textness``     :func:`~blendlab.metrics.textness` of the masked region: how much   lower
                 it looks like the prompt *written out*
===============  ==================================================================  ==========

``score(result, metric)`` gives the (N,) scores, ``rank_by(result, metric)`` the images best first,
``compare(result)`` a table of every sample's rank under each metric, and
:func:`plot_rank_disagreement` draws it. The measures themselves live in :mod:`blendlab.metrics`
(``ranking.psnr`` is re-exported from there).

May import: errors, images, embeddings, metrics, table.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch

from .embeddings import encode_text, masked_clip_distance
from .errors import DownloadError, InputError
from .images import to_pil, to_rgb01
from .metrics import psnr, textness
from .table import Table

__all__ = ["METRICS", "DEFAULT_METRICS", "score", "order", "rank_by", "compare", "psnr",
           "plot_rank_disagreement"]


def _models(result, models):
    models = models if models is not None else getattr(result, "models", None)
    if models is None:
        raise InputError("this result carries no models; pass models=bl.load_models(...) "
                         "(the bundle the edit was made with)")
    return models


def _clip_distance(result, models, masked: bool, normalize: bool = True) -> torch.Tensor:
    models = _models(result, models)
    device = models.device
    text = encode_text(models.clip, result.cfg.prompt)
    mask = result.sample_masks.to(device) if masked else None
    return masked_clip_distance(models.clip, result.images.to(device), text, mask, normalize).cpu()


def masked_clip(result, models=None) -> torch.Tensor:
    """(N,) CLIP distance of the masked region to the prompt (the paper's ranking; lower = better),
    computed as the edit ranked: unnormalised views when ``result.cfg.reference_ranking``."""
    return _clip_distance(result, models, masked=True,
                          normalize=not result.cfg.reference_ranking)


def whole_clip(result, models=None) -> torch.Tensor:
    """(N,) CLIP distance of the whole image to the prompt (lower = better)."""
    return _clip_distance(result, models, masked=False)


def background_psnr(result, models=None) -> torch.Tensor:
    """(N,) PSNR of each image's background against the input (higher = better)."""
    return psnr(result.images, result.init_image, result.sample_masks)


@torch.no_grad()
def background_lpips(result, models=None) -> torch.Tensor:
    """(N,) LPIPS between each background and the input's, the masked region blanked (lower = better)."""
    models = _models(result, models)
    keep = 1 - result.sample_masks.to(models.device)
    if torch.any(keep.sum(dim=(1, 2, 3)) == 0):
        raise InputError("the mask covers the whole image, so there is no background to compare; "
                         "use a CLIP metric instead of 'lpips'")
    try:
        net = models.lpips()
    except (OSError, RuntimeError) as exc:
        raise DownloadError(
            f"LPIPS needs torchvision's pretrained VGG16, which could not be loaded ({exc}). Connect once "
            "to let torchvision download it to its cache, or rank by 'psnr' instead."
        ) from None
    images = result.images.to(models.device) * keep
    ref = result.init_image.to(models.device) * keep
    return net(images, ref.expand_as(images)).flatten().float().cpu()


def text_score(result, models=None) -> torch.Tensor:
    """(N,) text-ness of the masked region (lower = better: the edit did not write the prompt)."""
    models = _models(result, models)
    return textness(models.clip, result.images, result.cfg.prompt, result.sample_masks)


#: metric name -> (function(result, models=None) -> (N,) scores, higher_is_better)
METRICS: dict[str, tuple[Callable, bool]] = {
    "masked_clip": (masked_clip, False),
    "whole_clip": (whole_clip, False),
    "psnr": (background_psnr, True),
    "lpips": (background_lpips, False),
    "textness": (text_score, False),
}
#: What :func:`compare` uses by default (LPIPS is opt-in: its real weights need a download).
DEFAULT_METRICS = ("masked_clip", "whole_clip", "psnr", "textness")


def _metric(metric: str) -> tuple[Callable, bool]:
    if metric not in METRICS:
        raise InputError(f"unknown ranking metric {metric!r}; choose one of {', '.join(METRICS)}")
    return METRICS[metric]


def score(result, metric: str = "masked_clip", models=None) -> torch.Tensor:
    """(N,) float scores of ``result.images`` under ``metric`` (see :data:`METRICS` for which
    direction is better). ``models`` defaults to ``result.models``."""
    fn, _ = _metric(metric)
    return fn(result, models).float().cpu()


def _order(scores: torch.Tensor, higher_is_better: bool) -> list[int]:
    return torch.argsort(-scores if higher_is_better else scores, stable=True).tolist()


def order(result, metric: str = "masked_clip", models=None) -> list[int]:
    """Indices into ``result.images``, best first under ``metric`` (ties keep sampling order)."""
    _, higher = _metric(metric)
    return _order(score(result, metric, models), higher)


def rank_by(result, metric: str = "masked_clip", models=None) -> list:
    """``[(PIL.Image, score), ...]`` best first under ``metric``."""
    _, higher = _metric(metric)
    scores = score(result, metric, models)
    return [(to_pil(result.images[i]), float(scores[i])) for i in _order(scores, higher)]


def _ranks(scores: torch.Tensor, higher_is_better: bool) -> list[int]:
    """Rank of each sample, 1 = best; ties share the better rank (1, 2, 2, 4)."""
    s = -scores if higher_is_better else scores
    return [1 + int((s < v).sum()) for v in s]


def compare(result, metrics: Sequence[str] = DEFAULT_METRICS, models=None) -> Table:
    """Every sample's score and rank under each metric: a :class:`~blendlab.table.Table`
    (a list of dicts, one per sample in sampling order, keys ``sample``, ``name``, ``<metric>`` and
    ``<metric> rank``; ``spread`` = worst minus best rank, large where the metrics disagree)."""
    metrics = [metrics] if isinstance(metrics, str) else list(metrics)
    if not metrics:
        raise InputError(f"metrics is empty; pass some of {', '.join(METRICS)}")
    for m in metrics:
        _metric(m)
    n = result.images.shape[0]
    rows = [{"sample": i, "name": result.sample_name(i) if hasattr(result, "sample_name") else str(i)}
            for i in range(n)]
    all_ranks = []
    for m in metrics:
        s = score(result, m, models)
        ranks = _ranks(s, METRICS[m][1])
        all_ranks.append(ranks)
        for row, v, r in zip(rows, s.tolist(), ranks):
            row[m] = float(v)
            row[f"{m} rank"] = r
    for i, row in enumerate(rows):
        row["spread"] = max(r[i] for r in all_ranks) - min(r[i] for r in all_ranks)
    table = Table(rows)
    table.metrics = metrics
    return table


def plot_rank_disagreement(result, metrics: Sequence[str] = DEFAULT_METRICS, models=None, table: Table | None = None):
    """A bump chart: each sample's rank (1 at the top) under each metric, one line per sample, the
    samples the metrics disagree on most drawn thickest; thumbnails of the samples underneath.
    Pass ``table`` (from :func:`compare`) to reuse computed scores. Returns a matplotlib Figure."""
    from matplotlib import colormaps
    from matplotlib.figure import Figure

    if table is None:
        table = compare(result, metrics, models)
    metrics = list(getattr(table, "metrics", metrics))
    n = len(table)
    cmap = colormaps["tab10" if n <= 10 else "viridis"]
    colour = lambda i: cmap(i % 10) if n <= 10 else cmap(i / max(1, n - 1))  # noqa: E731
    fig = Figure(figsize=(min(10.0, max(6.0, 1.8 * len(metrics) + 2)), 4.0 + min(2.0, 12.0 / max(n, 1))))
    gs = fig.add_gridspec(2, n, height_ratios=[3, 1])
    ax = fig.add_subplot(gs[0, :])
    max_spread = max((row["spread"] for row in table), default=0)
    xs = list(range(len(metrics)))
    for row in table:
        i = row["sample"]
        ranks = [row[f"{m} rank"] for m in metrics]
        thick = row["spread"] == max_spread and max_spread > 0
        ax.plot(xs, ranks, marker="o", color=colour(i), linewidth=3.0 if thick else 1.2,
                alpha=1.0 if thick or max_spread == 0 else 0.6, label=f"#{i}")
        ax.annotate(f"#{i}", (xs[-1], ranks[-1]), xytext=(6, 0), textcoords="offset points",
                    va="center", fontsize=9, color=colour(i))
    ax.set_xticks(xs)
    ax.set_xticklabels(metrics)
    ax.set_yticks(range(1, n + 1))
    ax.set_ylim(n + 0.5, 0.5)
    ax.set_ylabel("rank (1 = best)")
    ax.set_title("Where the rankings disagree (thick: largest rank spread)")
    for j, row in enumerate(table):
        sub = fig.add_subplot(gs[1, j])
        sub.imshow(to_rgb01(result.images[row["sample"]]))
        sub.set_xticks([])
        sub.set_yticks([])
        sub.set_title(f"#{row['sample']}", fontsize=9, color=colour(row["sample"]))
    fig.tight_layout()
    return fig
