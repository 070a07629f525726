"""One row of a sweep, whatever runs it: :func:`run_row` edits, measures and records atomically;
the records folder is the sweep's state, and ``results.csv`` the table pandas reads.

A sweep folder ``out/`` holds ``records/<id>.json`` (one per row, written last and atomically, status
``done`` or ``failed`` with the error), ``images/<id>/`` (the ranked samples, best first) and
``loads/`` (one file per model load: which process, how long). A row without a ``done`` record is
not finished; re-running a sweep computes those rows only.

May import: errors, images, metrics, runner, models, toyworld, blendlab.sweep.spec.
"""

from __future__ import annotations

import csv
import json
import os
import socket
import time
import traceback
import uuid
from pathlib import Path

from ..images import atomic_write
from .spec import Row, prepare_row, row_config

__all__ = ["run_row", "run_row_safe", "load_row_models", "read_records", "finished_ids", "write_table",
           "summary", "estimate", "TABLE"]

TABLE = "results.csv"


def _write_json(path: Path, data: dict) -> Path:
    return atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(data, indent=1, default=str) + "\n"))


def load_row_models(preset: str, out, device=None):
    """Load a preset's models once for many rows, and note the load in ``out/loads/``."""
    from ..models import load_models

    t0 = time.perf_counter()
    models = load_models(preset, device=device, progress=False)
    _write_json(Path(out) / "loads" / f"{uuid.uuid4().hex[:12]}.json",
                dict(preset=preset, host=socket.gethostname(), pid=os.getpid(), device=str(models.device),
                     seconds=round(time.perf_counter() - t0, 3)))
    return models


def _judge_fields(row: Row, result) -> dict:
    from ..toyworld import parse_caption
    from ..toyworld.judge import judge

    inp = row["input"]
    colour, shape = inp.get("colour"), inp.get("shape")
    if colour is None:
        colour, shape = parse_caption(inp.get("prompt"))
    verdicts = judge(result.images, result.sample_masks)
    best = verdicts[result.order[0]]
    return dict(judge_colour=best.colour, judge_shape=best.shape,
                judge_correct=bool(best.holds(colour, shape)) if colour else None,
                judge_share=sum(v.holds(colour, shape) for v in verdicts) / len(verdicts) if colour else None)


def run_row(models, row: Row, out) -> dict:
    """Run one row with ``bl.edit``: save its samples (best first) in ``out/images/<id>/`` and its
    record in ``out/records/<id>.json`` (atomically, last). Returns the record.

    The record: the row's id, input name, prompt, setting and seed; ``clip_distance`` (best) and
    ``clip_distance_mean``; ``background_drift`` and ``seam_strength`` of the best sample (and
    ``seam_strength_input``, the input's own); with the toy preset the judge's verdict on the best
    sample (``judge_*``); ``wall_s``, ``unet_forwards``; ``status`` ``done``."""
    from ..metrics import background_drift, seam_strength
    from ..runner import edit

    out = Path(out)
    inputs = prepare_row(models, row)  # validate() said its warnings before the sweep ran
    cfg = inputs.cfg
    forwards = [0]
    handle = models.unet.register_forward_hook(lambda *_: forwards.__setitem__(0, forwards[0] + 1))
    try:
        t0 = time.perf_counter()
        result = edit(models, inputs, progress=False)
        wall = time.perf_counter() - t0
    finally:
        handle.remove()
    paths = result.save_ranked(out / "images" / row["id"])
    best = result.best
    record = dict(id=row["id"], status="done", input=row["input"].get("name"), prompt=cfg.prompt,
                  preset=row["preset"], seed=row["seed"], **{f"set_{k}": v for k, v in row["setting"].items()},
                  clip_distance=float(result.distances.min()), clip_distance_mean=float(result.distances.mean()),
                  background_drift=float(background_drift(best, result.init_image, result.mask)[0]),
                  seam_strength=float(seam_strength(best, result.mask)[0]),
                  seam_strength_input=float(seam_strength(result.init_image, result.mask)[0]),
                  wall_s=round(wall, 4), unet_forwards=forwards[0], best_image=str(paths[0].relative_to(out)),
                  samples=len(paths), setting=row["setting"], config=row["config"])
    if row["preset"] == "toy":
        record.update(_judge_fields(row, result))
    _write_json(out / "records" / f"{row['id']}.json", record)
    return record


def run_row_safe(models, row: Row, out, fn=run_row) -> dict:
    """``fn(models, row, out)``, but a row that raises is recorded as ``failed`` with its error (and
    returned) instead of stopping the sweep."""
    try:
        return fn(models, row, out)
    except Exception as exc:  # noqa: BLE001 - every row error is recorded, none is lost
        record = dict(id=row["id"], status="failed", input=row["input"].get("name"),
                      prompt=row["input"].get("prompt"), preset=row["preset"], seed=row["seed"],
                      **{f"set_{k}": v for k, v in row["setting"].items()},
                      error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc(limit=8),
                      setting=row["setting"], config=row["config"])
        _write_json(Path(out) / "records" / f"{row['id']}.json", record)
        return record


def read_records(out) -> dict:
    """``{id: record}`` of every record in ``out/records/``."""
    folder = Path(out) / "records"
    records = {}
    for p in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            rec = json.loads(p.read_text())
        except (OSError, json.JSONDecodeError):
            continue  # never half-written (atomic), but be safe against foreign files
        records[rec["id"]] = rec
    return records


def finished_ids(out) -> set:
    return {i for i, r in read_records(out).items() if r.get("status") == "done"}


def write_table(out, rows: list[Row] | None = None) -> Path:
    """``out/results.csv``: one line per record (of ``rows`` when given), nested fields as JSON."""
    records = read_records(out)
    if rows is not None:
        records = {r["id"]: records[r["id"]] for r in rows if r["id"] in records}
    columns = []
    for rec in records.values():
        columns += [k for k in rec if k not in columns and k != "traceback"]

    def write(tmp):
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=columns)
            w.writeheader()
            for rec in records.values():
                w.writerow({k: json.dumps(v) if isinstance(v, (dict, list)) else v
                            for k, v in rec.items() if k in columns})

    return atomic_write(Path(out) / TABLE, write)


def summary(out, rows: list[Row], skipped: int = 0) -> dict:
    """Counts of a sweep's rows: ``done`` (this run and before), ``failed``, ``missing`` (no record),
    ``skipped`` (finished before this run), ``rows``."""
    records = read_records(out)
    status = [records.get(r["id"], {}).get("status") for r in rows]
    return dict(rows=len(rows), done=status.count("done"), failed=status.count("failed"),
                missing=status.count(None), skipped=skipped)


def estimate(rows: list[Row], measure: bool = True, device=None) -> dict:
    """The work of ``rows`` in sample-steps (iterations × batch × unskipped steps, the unit the
    runtime grows with) and, with ``measure``, the estimated serial seconds: one sample-step of the
    first row is timed (one model load, a 1-sample run of the first row, nothing written)."""
    cfgs = [row_config(r) for r in rows]
    work = [c.iterations_num * c.batch_size * (c.num_steps_total() - c.skip_timesteps) for c in cfgs]
    est = dict(rows=len(rows), sample_steps=sum(work))
    if measure and rows:
        from ..models import load_models
        from ..runner import edit

        models = load_models(rows[0]["preset"], device=device, progress=False)
        one = cfgs[0].replace(iterations_num=1, batch_size=1, keep=None, prune_at=None)
        inputs = prepare_row(models, rows[0], one)
        t0 = time.perf_counter()
        edit(models, inputs, progress=False)
        per_step = (time.perf_counter() - t0) / (one.num_steps_total() - one.skip_timesteps)
        est.update(seconds_per_sample_step=per_step, seconds=per_step * sum(work))
    return est
