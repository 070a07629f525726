"""Training curves read from the JSON cards the toy world's training scripts write beside their weights.

A card (``blendlab/toyworld/weights/toy_*.json``, or the ``<name>.json`` a run writes into its
``--out`` folder) holds ``loss_history``: every 50 steps, the running (exponentially smoothed) value
of each loss term, and ``run_log``: the steps each run (each resumed phase) covered. This figure
draws the one and marks the other; it reads plain dicts and knows nothing of the scripts.

May import: viz.base.
"""

from __future__ import annotations

from typing import Mapping

from .base import MIN_FONT, Figure

__all__ = ["training_curves"]


def training_curves(cards: Mapping[str, dict], term: str = "loss", log: bool = True,
                    phases: bool = True, title: str | None = None) -> Figure:
    """``term`` of every card's ``loss_history`` against the training step, one line per card.

    ``cards``: ``{label: card}`` (a card is the parsed JSON). ``log``: both axes logarithmic (a short
    run and a long one on one axis). ``phases``: a dotted line where each later run of a card began,
    labelled with its run number, each label a line lower than the last so close runs stay legible (a
    resumed run with new arguments is a new phase of training).
    """
    fig = Figure(figsize=(6.4, 3.4), layout="constrained")
    ax = fig.add_subplot()
    for label, card in cards.items():
        history = [h for h in card.get("loss_history", []) if term in h]
        if not history:
            known = sorted({k for h in card.get("loss_history", []) for k in h} - {"step"})
            raise ValueError(f"card {label!r} records no {term!r}; it records: {', '.join(known) or 'nothing'}")
        line, = ax.plot([h["step"] for h in history], [h[term] for h in history], marker="o", markersize=3,
                        label=f"{label} ({card.get('steps', history[-1]['step'])} steps)")
        if phases:
            for k, run in enumerate(card.get("run_log", [])[1:], start=2):
                ax.axvline(run["start_step"], color=line.get_color(), linestyle=":", linewidth=1)
                ax.annotate(f"run {k}", (run["start_step"], 1.0), xycoords=("data", "axes fraction"),
                            xytext=(2, -2 - 12 * (k - 2)), textcoords="offset points", va="top", fontsize=MIN_FONT,
                            color=line.get_color())
    if log:
        ax.set_xscale("log")
        ax.set_yscale("log")
    ax.set_xlabel("training step")
    ax.set_ylabel(f"{term} (running mean, every 50 steps)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=MIN_FONT)
    if title:
        ax.set_title(title)
    return fig
