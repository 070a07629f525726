"""The benchmark's committed figures, shipped inside the package: :data:`RESULTS_FILE` is written by
``benchmarks/quality_per_second.py`` and read by :func:`load_results` (lesson ``11_speed``) from an
installed blendlab as from a checkout.

May import: download.
"""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["RESULTS_FILE", "RESULTS_PATH", "load_results"]

#: Where the benchmark's figures are committed, relative to the repository root.
RESULTS_FILE = "blendlab/speed/quality_per_second.json"
#: The same file where this blendlab is installed (package data).
RESULTS_PATH = Path(__file__).resolve().with_name("quality_per_second.json")


def load_results(path=None, url: str | None = None) -> dict | None:
    """The benchmark results: ``path`` when given, else the file shipped with blendlab
    (:data:`RESULTS_PATH`), else, when ``url`` is given and blendlab is not offline, that URL.
    None when there is none."""
    candidate = Path(path) if path else RESULTS_PATH
    if candidate.is_file():
        return json.loads(candidate.read_text())
    if url and not path:
        import urllib.request

        from ..download import is_offline

        if not is_offline():
            try:
                with urllib.request.urlopen(url, timeout=5) as f:
                    return json.loads(f.read())
            except (OSError, ValueError):
                return None
    return None
