"""The speed lab's figure: judged success against CPU seconds per ranked set, the Pareto front drawn.

May import: nothing.
"""

from __future__ import annotations

__all__ = ["plot_pareto"]


def plot_pareto(summary: dict, labels: dict | None = None, title: str | None = None):
    """Two panels, success rate against CPU seconds per ranked set (log scale): the best-ranked
    sample (left) and all samples (right), 95 % Wilson intervals, the Pareto front of the left
    panel drawn. Points are numbered; the key underneath names them (``labels`` maps mode keys to
    display names; default the keys)."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FormatStrFormatter

    labels = labels or {}
    fig, axes = plt.subplots(1, 2, figsize=(10, 7.4), sharex=True, sharey=True)
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.36, top=0.9, wspace=0.06)
    numbers = {key: n for n, key in enumerate(summary, start=1)}
    front = sorted((k for k, v in summary.items() if v.get("pareto")), key=lambda k: summary[k]["cpu_s_per_set"])
    for ax, metric, what in ((axes[0], "best_success", "best-ranked sample"), (axes[1], "all_success", "all samples")):
        for key, v in summary.items():
            lo, hi = v[f"{metric}_ci"]
            x, y = v["cpu_s_per_set"], 100 * v[metric]
            style = dict(marker="X", color="black", ms=10) if key == "reference" else \
                dict(marker="*", color="tab:red", ms=15) if key == "default" else \
                dict(marker="o", color="tab:blue" if v.get("pareto") else "tab:gray", ms=7)
            ax.errorbar(x, y, yerr=[[y - 100 * lo], [100 * hi - y]], fmt="none", capsize=2, lw=0.7, alpha=0.4,
                        ecolor=style["color"])
            ax.plot(x, y, linestyle="none", **style)
            ax.annotate(str(numbers[key]), (x, y), textcoords="offset points", xytext=(4, 3), fontsize=9)
        if metric == "best_success" and front:
            ax.step([summary[k]["cpu_s_per_set"] for k in front], [100 * summary[k][metric] for k in front],
                    where="post", color="tab:blue", lw=1, alpha=0.6, label="Pareto front")
            ax.legend(loc="lower right", fontsize=9)
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FormatStrFormatter("%g"))
        ax.xaxis.set_minor_formatter(FormatStrFormatter("%g"))
        ax.tick_params(axis="x", which="minor", labelsize=9)
        ax.set_xlabel("CPU seconds per ranked set (log scale)")
        ax.set_title(f"judge-correct: {what}")
        ax.grid(alpha=0.3, which="both")
    axes[0].set_ylabel("judge-correct (colour and shape), % (95 % interval)")
    keys = [f"{n:2d}  {labels.get(k, k)}" for k, n in numbers.items()]
    half = (len(keys) + 1) // 2  # the key in two columns under the panels: the figure fits a notebook column
    for x, column in ((0.08, keys[:half]), (0.53, keys[half:])):
        fig.text(x, 0.25, "\n".join(column), va="top", ha="left", fontsize=9, family="monospace")
    if title:
        fig.suptitle(title, fontsize=10)
    return fig
