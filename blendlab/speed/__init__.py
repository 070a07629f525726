"""The speed lab: fast modes of Blended Diffusion, measured by what the edits show.

Blended Diffusion is slow: every one of its 75 steps runs the UNet forward *and backward* and CLIP on
8 augmented views. Each fast mode here is a named set of :class:`~blendlab.EditConfig` overrides that
gives something up for time (the paper's algorithm is the default and stays the default):

- :data:`MODES`: the modes, each with what it gives up; ``mode.config(base)`` applies it;
- :func:`toy_suite`: a fixed, seeded suite of toy-world edits, "a {colour} {shape}" into an empty
  masked area of several scenes, at any image size;
- :func:`run_suite_edit` (formerly ``run_edit``, which still works and warns): one edit of the suite run to a
  ranked set: CPU and wall time, UNet forwards, UNet backward passes, CLIP views, and the toy
  world's independent judge on every sample;
- :func:`summarize`: per mode, success rates of the best-ranked sample and of all samples (with
  95 % Wilson intervals), time per ranked set, paired time ratios, the expected time to the first
  judge-correct best-ranked result, and whether the mode is on the Pareto front;
- :func:`plot_pareto`: success against CPU seconds, the front drawn; :func:`load_results` reads the
  benchmark figures shipped with blendlab (``speed/quality_per_second.json``).

``benchmarks/quality_per_second.py`` runs the whole comparison (with the reference loop as one more
arm); lesson ``11_speed`` reads its results. Plotting functions return matplotlib ``Figure`` objects.

Its rooms: ``modes`` (the catalogue), ``suite`` (the edits and their judged runs), ``summary``
(statistics and the table), ``plot``, ``results`` (the shipped figures).

May import: blendlab.speed.modes, blendlab.speed.suite, blendlab.speed.summary, blendlab.speed.plot,
blendlab.speed.results.
"""

from __future__ import annotations

import warnings

from .modes import MODES, Mode, mode
from .plot import plot_pareto
from .results import RESULTS_FILE, RESULTS_PATH, load_results
from .suite import REGIONS, SuiteEdit, run_suite_edit, toy_suite
from .summary import pareto_front, results_table, summarize, wilson



def run_edit(*args, **kwargs):
    """Deprecated: :func:`run_suite_edit` (the old name clashed with ``cli``'s own ``run_edit``)."""
    warnings.warn("blendlab.speed.run_edit is now run_suite_edit (the old name clashed with the CLI's run_edit); "
                  "run_edit will go in a later release", DeprecationWarning, stacklevel=2)
    return run_suite_edit(*args, **kwargs)

__all__ = ["Mode", "MODES", "mode", "REGIONS", "SuiteEdit", "toy_suite", "run_suite_edit", "run_edit", "wilson",
           "summarize", "pareto_front", "plot_pareto", "results_table", "load_results", "RESULTS_FILE",
           "RESULTS_PATH"]
