"""The README's "Renamed" table is the list of old names: each still works, gives what its new name
gives, and warns with a DeprecationWarning that names the new one (the detailed tests of each sit
beside their rooms' tests)."""

import importlib
import sys
from pathlib import Path

import pytest

import blendlab as bl
from blendlab import speed, typography
from blendlab.plan import plan_steps
from blendlab.models import create_diffusion

from _fast import fast_cfg

ROOT = Path(__file__).resolve().parents[1]


def _readme_rows() -> list[str]:
    block = (ROOT / "README.md").read_text().split("<!-- renamed -->", 1)[1].split("<!-- /renamed -->", 1)[0]
    return [line.split("|")[1].strip() for line in block.strip().splitlines()[2:]]


def _state(tiny, image, mask):
    sampler = bl.BlendedSampler(tiny, image, mask, fast_cfg(prompt="rock"))
    return next(iter(sampler.steps()))


def _check_step_t(tiny, image, mask):
    state = _state(tiny, image, mask)
    with pytest.warns(DeprecationWarning, match="respaced_index"):
        assert state.t == state.respaced_index


def _check_planned_index(tiny, image, mask):
    cfg = fast_cfg(prompt="rock")
    planned = plan_steps(create_diffusion(tiny, cfg.timestep_respacing), cfg)[0]
    with pytest.warns(DeprecationWarning, match="respaced_index"):
        assert planned.index == planned.respaced_index


def _check_old_step_call(tiny, image, mask):
    sampler = bl.BlendedSampler(tiny, image, mask, fast_cfg(prompt="rock"))
    planned = sampler.plan[0]
    x = image.expand(sampler.cfg.batch_size, -1, -1, -1).clone()
    with pytest.warns(DeprecationWarning, match=r"step\(k, x"):
        sampler.step(planned.k, planned.respaced_index, planned.respaced_index, x, None, 0)


def _check_runner(tiny, image, mask):
    with pytest.warns(DeprecationWarning, match="Models.denoiser"):
        assert tiny.runner is tiny.denoiser


def _check_apps(tiny, image, mask):
    sys.modules.pop("blendlab.apps", None)
    with pytest.warns(DeprecationWarning, match="blendlab.applications"):
        apps = importlib.import_module("blendlab.apps")
    assert apps.object_edit is importlib.import_module("blendlab.applications").object_edit


def _check_text_sweep(tiny, image, mask):
    with pytest.warns(DeprecationWarning, match="text_sweep"):
        old = typography.sweep(tiny.clip, image, "dog", ["dog", "cat"], param="opacity", values=[1.0], size=0.3)
    assert old.values == [1.0]


def _check_run_edit(tiny, image, mask):
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(speed, "run_suite_edit", lambda *a, **k: "ran")
        with pytest.warns(DeprecationWarning, match="run_suite_edit"):
            assert speed.run_edit() == "ran"


def _check_panel_fields(tiny, image, mask):
    from blendlab import viz
    from blendlab.viz import base

    for room in (viz, base):
        with pytest.warns(DeprecationWarning, match="PANEL_FIELDS"):
            assert room.STEP_FIELDS == room.PANEL_FIELDS == ("x_t", "pred_x0", "grad", "fg", "bg", "x_prev")
    with pytest.raises(AttributeError, match="no attribute 'NO_SUCH'"):
        viz.NO_SUCH


def _check_measured_attack_table(tiny, image, mask):
    from blendlab.toyworld import measured

    with pytest.warns(DeprecationWarning, match="measured_attack_table"):
        old = measured.attack_table()
    assert old == measured.measured_attack_table() and len(old) > 0


CHECKS = {
    "`StepState.t`, `RecordedStep.t`": _check_step_t,
    "`PlannedStep.index`": _check_planned_index,
    "`BlendedSampler.step(index, i, t, x, …)`": _check_old_step_call,
    "`Models.runner`": _check_runner,
    "`blendlab.apps`": _check_apps,
    "`typography.sweep`, `typography.plot_sweep`": _check_text_sweep,
    "`speed.run_edit`": _check_run_edit,
    "`viz.STEP_FIELDS`": _check_panel_fields,
    "`toyworld.measured.attack_table`": _check_measured_attack_table,
}


def test_the_readme_lists_every_renamed_name():
    assert _readme_rows() == list(CHECKS)


@pytest.mark.parametrize("old", list(CHECKS))
def test_each_old_name_still_works_and_warns(old, tiny, image, mask):
    CHECKS[old](tiny, image, mask)
