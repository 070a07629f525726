"""The ray backend on a local 2-CPU Ray cluster started once for this module (CI installs the
``ray`` extra, so nothing here skips): 8 rows -> 8 records from 2 model loads; a row that raises is
recorded as failed and the other 7 finish; a worker that dies mid-row is restarted and the row
retried; a re-run computes only the missing rows; local and ray records agree."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pandas as pd
import pytest
import ray

import blendlab.sweep as sw

ROOT = Path(__file__).resolve().parents[1]
FAST = dict(timestep_respacing="4", skip_timesteps=1, iterations_num=1, batch_size=2)
SPEC = dict(preset="tiny", config=FAST, grid=dict(aug_num=[1, 2]), seeds=2,
            inputs=[{"example": "insert"}, {"example": "replace"}])
MEASURED = ("clip_distance", "clip_distance_mean", "background_drift", "seam_strength", "unet_forwards")


@pytest.fixture(scope="module", autouse=True)
def cluster():
    # the workers import this checkout's blendlab, and this module's row functions travel by value
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}})
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    yield
    ray.shutdown()


def _table(out) -> pd.DataFrame:
    return pd.read_csv(Path(out) / "results.csv").set_index("id").sort_index()


def test_eight_rows_two_loads_and_equal_to_local(tmp_path):
    result = sw.run_sweep(SPEC, tmp_path / "ray", backend="ray", workers=2, progress=False)
    assert result == dict(rows=8, done=8, failed=0, missing=0, skipped=0, ran=8)
    assert len(list((tmp_path / "ray" / "loads").iterdir())) == 2
    sw.run_sweep(SPEC, tmp_path / "local", progress=False)
    on_ray, local = _table(tmp_path / "ray"), _table(tmp_path / "local")
    assert list(on_ray.index) == list(local.index)
    pd.testing.assert_frame_equal(on_ray[list(MEASURED)], local[list(MEASURED)], rtol=1e-4)


def _failing(bad_id):
    def fn(models, row, out):
        if row["id"] == bad_id:
            raise RuntimeError("injected failure")
        return sw.run_row(models, row, out)
    return fn


def test_a_row_that_raises_is_recorded_and_the_rest_finish(tmp_path):
    bad = sw.expand(SPEC)[3]["id"]
    result = sw.run_sweep(SPEC, tmp_path, backend="ray", workers=2, progress=False, fn=_failing(bad))
    assert result == dict(rows=8, done=7, failed=1, missing=0, skipped=0, ran=8)
    table = _table(tmp_path)
    assert table.loc[bad, "status"] == "failed" and "injected failure" in table.loc[bad, "error"]


def _dies_once(marker):
    def fn(models, row, out):
        if not os.path.exists(marker):
            Path(marker).write_text(row["id"])
            os._exit(1)  # the worker process dies mid-row, once
        return sw.run_row(models, row, out)
    return fn


def test_a_worker_that_dies_is_restarted_and_its_row_retried(tmp_path):
    marker = tmp_path / "died"
    result = sw.run_sweep(SPEC, tmp_path / "out", backend="ray", workers=2, progress=False,
                          fn=_dies_once(str(marker)))
    assert marker.exists()
    assert result == dict(rows=8, done=8, failed=0, missing=0, skipped=0, ran=8)


def test_a_second_run_computes_only_the_missing_rows(tmp_path):
    half = dict(SPEC, inputs=[{"example": "insert"}])
    assert sw.run_sweep(half, tmp_path, progress=False)["done"] == 4  # a partial run (local)
    result = sw.run_sweep(SPEC, tmp_path, backend="ray", workers=2, progress=False)
    assert result == dict(rows=8, done=8, failed=0, missing=0, skipped=4, ran=4)
    assert len(list((tmp_path / "loads").iterdir())) == 1 + 2
