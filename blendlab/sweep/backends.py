"""Backends that run a sweep's unfinished rows: ``local`` (serial, in-process, the default) and
``ray`` (Ray Data ``map_batches`` over an actor pool: one model load per actor; the ``ray`` extra).

Both call the same :func:`blendlab.sweep.core.run_row_safe`, so a row that raises is recorded as
failed and the rest go on. Finished rows (a ``done`` record) are skipped; failed ones run again.
Ray does the distribution and the retries: an actor that dies is restarted and its row retried
(Ray Data's defaults for actor pools); nothing here schedules or retries on its own.

May import: errors, blendlab.sweep.spec, blendlab.sweep.core.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import InputError
from .core import finished_ids, load_row_models, run_row, run_row_safe, summary, write_table
from .spec import expand, validate

__all__ = ["run_sweep", "BACKENDS"]

BACKENDS = ("local", "ray")


def _progress(total: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="sweep rows", unit="row", disable=not enabled)


def _run_local(todo, out, fn, progress, device):
    if not todo:
        return
    models = load_row_models(todo[0]["preset"], out, device=device)
    with _progress(len(todo), progress) as bar:
        for row in todo:
            rec = run_row_safe(models, row, out, fn)
            bar.update(1)
            bar.set_postfix_str(rec["status"])


class _RowActor:
    """One Ray actor: loads the models once, then runs whichever rows Ray hands it."""

    def __init__(self, preset: str, out: str, fn, device):
        self.out, self.fn = out, fn
        self.models = load_row_models(preset, out, device=device)

    def __call__(self, batch):
        import numpy as np

        ids, status = [], []
        for text in batch["row"]:
            rec = run_row_safe(self.models, json.loads(str(text)), self.out, self.fn)
            ids.append(rec["id"])
            status.append(rec["status"])
        return {"id": np.array(ids), "status": np.array(status)}


def _run_ray(todo, out, fn, progress, address, workers, cpus_per_worker):
    try:
        import ray
    except ImportError:
        raise InputError("the ray backend needs Ray: pip install 'blendlab[ray]'") from None
    if not ray.is_initialized():
        ray.init(address=address)  # None: RAY_ADDRESS's cluster if set, else a local one
    if not todo:
        return
    gpus = ray.cluster_resources().get("GPU", 0)
    workers = workers or max(1, int(gpus) or int(ray.cluster_resources().get("CPU", 1)))
    remote = dict(num_gpus=1, num_cpus=cpus_per_worker or 1) if gpus else dict(num_cpus=cpus_per_worker or 0.5)
    ds = ray.data.from_items([{"row": json.dumps(r)} for r in todo], override_num_blocks=len(todo))
    # Ray Data's actor pools restart a dead actor and retry its row (max_restarts and max_task_retries
    # default to -1 there; tests/test_sweep_ray.py kills a worker to hold Ray to it)
    pool = ray.data.ActorPoolStrategy(size=min(workers, len(todo)))
    ds = ds.map_batches(_RowActor, batch_size=1, compute=pool,
                        fn_constructor_kwargs=dict(preset=todo[0]["preset"], out=str(out), fn=fn,
                                                   device="cuda" if gpus else "cpu"),
                        **remote)
    with _progress(len(todo), progress) as bar:
        for rec in ds.iter_rows():
            bar.update(1)
            bar.set_postfix_str(str(rec["status"]))


def run_sweep(spec, out, backend: str = "local", *, address: str | None = None, workers: int | None = None,
              cpus_per_worker: float | None = None, progress: bool = True, device=None, fn=run_row) -> dict:
    """Expand and validate ``spec`` (before any model loads), run every row without a ``done``
    record in ``out`` on ``backend``, rebuild ``out/results.csv`` and return the summary:
    ``rows``, ``done``, ``failed``, ``missing``, ``skipped`` (finished before this run), ``ran``.

    ``address``: a Ray cluster (default ``RAY_ADDRESS``, else a local one); ``workers``: actors
    (default one per GPU, else one per CPU); ``fn(models, row, out)`` runs one row (default
    :func:`run_row`; wrappers may add to it)."""
    if backend not in BACKENDS:
        raise InputError(f"backend {backend!r}: choose one of {', '.join(BACKENDS)}")
    rows = validate(expand(spec))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    done = finished_ids(out)
    todo = [r for r in rows if r["id"] not in done]
    if backend == "local":
        _run_local(todo, out, fn, progress, device)
    else:
        _run_ray(todo, out, fn, progress, address, workers, cpus_per_worker)
    write_table(out, rows)
    return dict(summary(out, rows, skipped=len(rows) - len(todo)), ran=len(todo))
