"""The failure-case lab: CLIP reads written text, and that is where Blended Diffusion fails.

CLIP learned from captioned web images, so a word written on an object shifts what CLIP sees (an
apple with a paper label "iPod" is classified as an iPod), and CLIP-guided diffusion asked for a
"rubber toy" may simply *paint the word* "rubber". This lab makes both failures reproducible and
measurable:

- :func:`zero_shot` classifies images among labels as the CLIP paper does: each label is embedded
  through several prompt templates ("a photo of a {}.", ...) whose unit embeddings are averaged.
  :func:`attack_table` and :func:`text_sweep` show the probabilities with and without a word written
  on the image, and as curves over the text's size, opacity, position or rotation;
  :func:`plot_zero_shot` and :func:`plot_text_sweep` draw them (matplotlib ``Figure`` objects, no pyplot).
  (``sweep``, ``Sweep`` and ``plot_sweep``, their names until they clashed with :mod:`blendlab.sweep`,
  still work and warn.)

It builds on tools that live lower in the house and are re-exported here, so ``typography.<name>``
keeps working: :func:`render_text`, :func:`text_card`, :func:`text_render_embedding` and friends
(:mod:`blendlab.textrender`), :func:`textness` (:mod:`blendlab.metrics`: "the image, or its masked
region, looks like the prompt *written out*"), :func:`typography_direction` (the guidance's optional
anti-typography term, ``EditConfig.anti_typography_lambda``, :mod:`blendlab.guidance`) and
:class:`Table` (:mod:`blendlab.table`).

May import: errors, images, embeddings, textrender, table, metrics, guidance.
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .embeddings import encode_images, encode_text
from .errors import InputError
from .guidance import typography_direction  # noqa: F401  (re-exported)
from .images import as_image_batch, to_rgb01
from .metrics import textness  # noqa: F401  (re-exported)
from .table import Table
from .textrender import (  # noqa: F401  (re-exported: the lab's tools)
    DEFAULT_FONT,
    NEUTRAL_WORDS,
    NOTE_COLOR,
    find_font,
    prompt_words,
    render_text,
    text_card,
    text_render_embedding,
    text_renderings,
)

__all__ = [
    "DEFAULT_FONT", "TEMPLATES", "NEUTRAL_WORDS", "SWEEP_DEFAULTS", "NOTE_COLOR", "Table", "TextSweep",
    "find_font", "render_text", "text_card", "text_renderings", "text_render_embedding",
    "label_embeddings", "zero_shot", "attack_table", "text_sweep", "textness", "prompt_words",
    "plot_zero_shot", "plot_text_sweep", "typography_direction",
    "Sweep", "sweep", "plot_sweep",  # the old names (deprecated)
]

#: A handful of the CLIP paper's ImageNet prompt-ensemble templates.
TEMPLATES = (
    "a photo of a {}.",
    "a bad photo of a {}.",
    "a close-up photo of a {}.",
    "a photo of the large {}.",
    "a photo of the small {}.",
    "a bright photo of a {}.",
    "a cropped photo of the {}.",
    "itap of a {}.",
)
#: Values :func:`sweep` uses when none are given.
SWEEP_DEFAULTS = {
    "size": (0.06, 0.1, 0.15, 0.2, 0.3),
    "opacity": (0.0, 0.25, 0.5, 0.75, 1.0),
    "position": ((0.5, 0.2), (0.5, 0.5), (0.5, 0.8), (0.25, 0.5), (0.75, 0.5)),
    "rotation": (-45.0, -20.0, 0.0, 20.0, 45.0),
}


# -- zero-shot classification ----------------------------------------------------------------------
def _check_labels(labels) -> list[str]:
    if isinstance(labels, str):
        labels = [labels]
    labels = list(labels) if labels is not None else []
    if not labels:
        raise InputError("the label list is empty; pass the class names to choose from, e.g. ['apple', 'iPod']")
    if not all(isinstance(lab, str) and lab.strip() for lab in labels):
        raise InputError(f"labels must be non-empty strings, got {labels!r}")
    if len(set(labels)) != len(labels):
        raise InputError(f"labels {labels!r} contain duplicates; list each class once")
    return labels


@torch.no_grad()
def label_embeddings(clip_model, labels: Sequence[str], templates: Sequence[str] = TEMPLATES) -> torch.Tensor:
    """Prompt-ensemble text embeddings: per label, the mean of the unit embeddings of every template
    filled with it, re-normalised. (L, D) float32."""
    labels = _check_labels(labels)
    templates = list(templates)
    if not templates or not all("{}" in t for t in templates):
        raise InputError("templates must be a non-empty list of strings with a '{}' for the label")
    e = F.normalize(encode_text(clip_model, [t.format(lab) for lab in labels for t in templates]), dim=-1)
    return F.normalize(e.view(len(labels), len(templates), -1).mean(1), dim=-1)


@torch.no_grad()
def zero_shot(clip_model, images, labels: Sequence[str], templates: Sequence[str] = TEMPLATES,
              label_embeds: torch.Tensor | None = None) -> torch.Tensor:
    """CLIP zero-shot class probabilities: softmax over labels of CLIP's logit scale times the cosine
    similarity of each image to each label's ensemble embedding. (N, L) on the CPU, rows sum to 1."""
    labels = _check_labels(labels)
    if label_embeds is None:
        label_embeds = label_embeddings(clip_model, labels, templates)
    device = next(clip_model.parameters()).device
    x = as_image_batch(images).to(device)
    img = F.normalize(encode_images(clip_model, x), dim=-1)
    logits = clip_model.logit_scale.exp().float() * img @ label_embeds.to(device).T
    return logits.softmax(dim=-1).cpu()


def attack_table(clip_model, image, text: str, labels: Sequence[str], templates=TEMPLATES, **render_kwargs) -> Table:
    """Zero-shot probabilities of ``image`` without and with ``text`` written on it (two rows)."""
    x = as_image_batch(image)
    attacked = render_text(x[:1], text, **render_kwargs)
    probs = zero_shot(clip_model, torch.cat([x[:1], attacked]), labels, templates)
    return Table({"image": name, **{lab: float(p) for lab, p in zip(labels, row)}}
                 for name, row in zip(("original", f"with {text!r}"), probs))


@dataclasses.dataclass
class TextSweep:
    """Zero-shot probabilities while one rendering parameter varies.

    ``probs`` is (V, L) for the V ``values``; ``baseline`` (L,) is the image without text;
    ``images`` (V, 3, H, W) are the images that were classified.
    """

    param: str
    values: list
    labels: list
    probs: torch.Tensor
    baseline: torch.Tensor
    images: torch.Tensor
    text: str = ""

    @property
    def curves(self) -> dict[str, list[float]]:
        """label -> probability at each value (one curve per label)."""
        return {lab: self.probs[:, j].tolist() for j, lab in enumerate(self.labels)}

    def table(self) -> Table:
        rows = [{self.param: "no text", **{lab: float(p) for lab, p in zip(self.labels, self.baseline)}}]
        rows += [{self.param: str(v), **{lab: float(p) for lab, p in zip(self.labels, row)}}
                 for v, row in zip(self.values, self.probs)]
        return Table(rows)


def text_sweep(clip_model, image, text: str, labels: Sequence[str], param: str = "size", values=None,
               templates: Sequence[str] = TEMPLATES, **render_kwargs) -> TextSweep:
    """Classify ``image`` with ``text`` rendered at each of ``values`` of ``param`` ("size",
    "opacity", "position" or "rotation"; defaults in :data:`SWEEP_DEFAULTS`). Other rendering
    arguments (colour, note, ...) go to :func:`render_text`."""
    if param not in SWEEP_DEFAULTS:
        raise InputError(f"cannot sweep {param!r}; choose one of {', '.join(SWEEP_DEFAULTS)}")
    if param in render_kwargs:
        raise InputError(f"{param} is the swept parameter; pass its values as values=, not {param}=")
    labels = _check_labels(labels)
    values = list(SWEEP_DEFAULTS[param] if values is None else values)
    if not values:
        raise InputError(f"values is empty; pass the {param} values to try, e.g. {SWEEP_DEFAULTS[param]}")
    x = as_image_batch(image)[:1]
    rendered = torch.cat([render_text(x, text, **{param: v}, **render_kwargs) for v in values])
    embeds = label_embeddings(clip_model, labels, templates)
    probs = zero_shot(clip_model, torch.cat([x, rendered]), labels, label_embeds=embeds)
    return TextSweep(param, values, labels, probs[1:], probs[0], rendered.cpu(), text)




# -- plots ------------------------------------------------------------------------------------------
def _thumb(ax, image: torch.Tensor, title: str = "") -> None:
    ax.imshow(to_rgb01(image))
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)


def plot_zero_shot(probs, labels: Sequence[str], names: Sequence[str] | None = None, images=None,
                   title: str = "CLIP zero-shot probabilities"):
    """Grouped bars: for each image (row of ``probs`` (N, L), or a :class:`Table` from
    :func:`attack_table`), its probability of each label. ``images`` (N, 3, H, W) adds thumbnails."""
    from matplotlib.figure import Figure

    labels = _check_labels(labels)
    if isinstance(probs, Table):
        names = names or [str(r.get("image", i)) for i, r in enumerate(probs)]
        probs = torch.tensor([[r[lab] for lab in labels] for r in probs])
    probs = torch.as_tensor(probs).float().cpu()
    n = probs.shape[0]
    names = list(names) if names is not None else [f"image {i}" for i in range(n)]
    width = min(10.0, max(5.0, 0.5 * len(labels) * max(1, n) + 2))  # at most a notebook column wide
    fig = Figure(figsize=(width, 3.6 + (1.6 if images is not None else 0)))
    if images is not None:
        gs = fig.add_gridspec(2, n, height_ratios=[1, 2.2])
        for i in range(n):
            _thumb(fig.add_subplot(gs[0, i]), images[i], names[i])
        ax = fig.add_subplot(gs[1, :])
    else:
        ax = fig.add_subplot(1, 1, 1)
    width = 0.8 / max(1, n)
    xs = np.arange(len(labels))
    for i in range(n):
        ax.bar(xs + (i - (n - 1) / 2) * width, probs[i].numpy(), width, label=names[i])
    ax.set_xticks(xs)
    ax.set_xticklabels(labels, rotation=20, ha="right")
    ax.set_ylim(0, 1)
    ax.set_ylabel("probability")
    ax.set_title(title)
    ax.legend(fontsize=9)
    fig.tight_layout()
    return fig


def plot_text_sweep(result: TextSweep, show_images: bool = True):
    """Probability of each label against the swept parameter (dashed: without text), with the
    classified images above."""
    from matplotlib.figure import Figure

    v = len(result.values)
    fig = Figure(figsize=(min(10.0, max(6.0, 1.3 * v)), 5.2 if show_images else 3.8))
    if show_images:
        gs = fig.add_gridspec(2, v, height_ratios=[1, 2.4])
        for i in range(v):
            _thumb(fig.add_subplot(gs[0, i]), result.images[i], str(result.values[i]))
        ax = fig.add_subplot(gs[1, :])
    else:
        ax = fig.add_subplot(1, 1, 1)
    numeric = all(isinstance(x, (int, float)) for x in result.values)
    xs = list(result.values) if numeric else list(range(v))
    for j, (lab, curve) in enumerate(result.curves.items()):
        line, = ax.plot(xs, curve, marker="o", label=lab)
        ax.axhline(float(result.baseline[j]), color=line.get_color(), linestyle="--", linewidth=0.8)
    if not numeric:
        ax.set_xticks(xs)
        ax.set_xticklabels([str(x) for x in result.values], fontsize=9)
    ax.set_xlabel(result.param + ("" if numeric else " (x, y)"))
    ax.set_ylabel("probability")
    ax.set_ylim(0, 1)
    ax.set_title(f"writing {result.text!r}: probabilities vs {result.param} (dashed: no text)")
    ax.legend(fontsize=9)
    fig.tight_layout()
    return fig


# -- the old names, which clashed with blendlab.sweep (the settings sweeps) --------------------------
Sweep = TextSweep


def _renamed(old: str, new):
    def call(*args, **kwargs):
        warnings.warn(f"blendlab.typography.{old} is now {new.__name__} (the old name clashed with "
                      f"blendlab.sweep, the settings sweeps); {old} will go in a later release",
                      DeprecationWarning, stacklevel=2)
        return new(*args, **kwargs)
    call.__name__, call.__doc__ = old, f"Deprecated: :func:`{new.__name__}`."
    return call


sweep = _renamed("sweep", text_sweep)
plot_sweep = _renamed("plot_sweep", plot_text_sweep)
