"""Sweeps: inputs × settings × seeds -> rows, each run by one engine-agnostic function and recorded
atomically, on the ``local`` backend (serial, in-process) or on Ray Data (the ``ray`` extra).

A spec (a dict, or a YAML/TOML file) expands into rows with deterministic ids
(:func:`expand`); every row is checked before any model loads (:func:`validate`); :func:`run_row`
runs one; :func:`run_sweep` runs the rows without a finished record and rebuilds ``results.csv``;
:func:`grid_figure` and :func:`metric_plot` show a finished sweep.

May import: blendlab.sweep.spec, blendlab.sweep.core, blendlab.sweep.backends, blendlab.sweep.results.
"""

from .spec import Row, expand, load_spec, validate
from .core import read_records, run_row, summary, write_table
from .backends import run_sweep
from .results import grid_figure, metric_plot

__all__ = ["Row", "expand", "load_spec", "validate", "run_row", "read_records", "write_table", "summary",
           "run_sweep", "grid_figure", "metric_plot"]
