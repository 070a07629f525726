"""Typography: CLIP reads written text, and that is where Blended Diffusion fails.

CLIP learned from captioned web images, so a word written on an object shifts what CLIP sees (an
apple with a paper label "iPod" is classified as an iPod), and CLIP-guided diffusion asked for a
"rubber toy" may simply *paint the word* "rubber". This module makes both failures reproducible and
measurable:

- :func:`render_text` writes text onto an image: DejaVu (ships with matplotlib) or any installed
  font, size, position, colour, opacity, rotation, an optional sticky-note background. Deterministic:
  the same arguments give the same pixels, and pixels the text does not cover are left untouched.
- :func:`zero_shot` classifies images among labels as the CLIP paper does: each label is embedded
  through several prompt templates ("a photo of a {}.", ...) whose unit embeddings are averaged.
  :func:`attack_table` and :func:`sweep` show the probabilities with and without the text, and as
  curves over the text's size, opacity, position or rotation.
- :func:`textness` scores "the image (or its masked region) looks like the prompt *written out*":
  CLIP similarity to renderings of the prompt's words minus similarity to renderings of neutral words.
- :func:`text_render_embedding` is CLIP's embedding of a text rendered as an image; the guidance's
  optional anti-typography term (``EditConfig.anti_typography_lambda``) pushes away from it.

Plotting functions are named ``plot_*`` and return matplotlib ``Figure`` objects (no pyplot state).
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .embeddings import encode_images, encode_text
from .errors import InputError
from .guidance import typography_direction  # noqa: F401  (re-exported)
from .images import as_image_batch, to_rgb01
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
    "DEFAULT_FONT", "TEMPLATES", "NEUTRAL_WORDS", "SWEEP_DEFAULTS", "NOTE_COLOR", "Table", "Sweep",
    "find_font", "render_text", "text_card", "text_renderings", "text_render_embedding",
    "label_embeddings", "zero_shot", "attack_table", "sweep", "textness", "prompt_words",
    "plot_zero_shot", "plot_sweep", "typography_direction",
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


class Table(list):
    """A list of dicts (one per row) that prints as an aligned text table and as HTML in Jupyter."""

    def to_string(self, precision: int = 3) -> str:
        if not self:
            return "(empty table)"
        cols = list(dict.fromkeys(k for row in self for k in row))
        cells = [[_fmt(row.get(c, ""), precision) for c in cols] for row in self]
        widths = [max(len(str(c)), *(len(r[i]) for r in cells)) for i, c in enumerate(cols)]
        lines = ["  ".join(str(c).rjust(w) for c, w in zip(cols, widths))]
        lines += ["  ".join(v.rjust(w) for v, w in zip(r, widths)) for r in cells]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_string()

    def _repr_html_(self) -> str:
        if not self:
            return "<p>(empty table)</p>"
        cols = list(dict.fromkeys(k for row in self for k in row))
        head = "".join(f"<th>{c}</th>" for c in cols)
        body = "".join("<tr>" + "".join(f"<td>{_fmt(r.get(c, ''), 3)}</td>" for c in cols) + "</tr>" for r in self)
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _fmt(v, precision: int) -> str:
    """Floats to ``precision`` decimals; tiny non-zero ones (tiny-CLIP text-ness ~1e-4) to
    ``precision`` significant digits instead of showing as 0.000."""
    if not isinstance(v, float):
        return str(v)
    if v != 0 and abs(v) < 10 ** -precision:
        return f"{v:.{precision}g}"
    return f"{v:.{precision}f}"




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
class Sweep:
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


def sweep(clip_model, image, text: str, labels: Sequence[str], param: str = "size", values=None,
          templates: Sequence[str] = TEMPLATES, **render_kwargs) -> Sweep:
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
    return Sweep(param, values, labels, probs[1:], probs[0], rendered.cpu(), text)


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


# -- plots ------------------------------------------------------------------------------------------
def _thumb(ax, image: torch.Tensor, title: str = "") -> None:
    ax.imshow(to_rgb01(image))
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=8)


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
    fig = Figure(figsize=(max(5.0, 0.5 * len(labels) * max(1, n) + 2), 3.6 + (1.6 if images is not None else 0)))
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
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_sweep(result: Sweep, show_images: bool = True):
    """Probability of each label against the swept parameter (dashed: without text), with the
    classified images above."""
    from matplotlib.figure import Figure

    v = len(result.values)
    fig = Figure(figsize=(max(6.0, 1.3 * v), 5.2 if show_images else 3.8))
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
        ax.set_xticklabels([str(x) for x in result.values], fontsize=8)
    ax.set_xlabel(result.param + ("" if numeric else " (x, y)"))
    ax.set_ylabel("probability")
    ax.set_ylim(0, 1)
    ax.set_title(f"writing {result.text!r}: probabilities vs {result.param} (dashed: no text)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
