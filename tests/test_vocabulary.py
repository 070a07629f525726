"""The step fields are declared once (blendlab.vocabulary.STEP_FIELDS): the Recorder, the figures and
the step scrubber read them, and StepState holds every one."""

import dataclasses

import pytest

from blendlab.errors import InputError
from blendlab.vocabulary import STEP_FIELDS, step_field


def test_every_declared_field_is_a_stepstate_tensor_and_documented():
    from blendlab.sampler import StepState

    names = {f.name for f in dataclasses.fields(StepState)}
    for f in STEP_FIELDS:
        assert f.name in names and f.name in StepState.__doc__
        assert f.label and f.description and "\n" not in f.description
    assert len({f.name for f in STEP_FIELDS}) == len(STEP_FIELDS)


def test_the_recorder_figures_and_scrubber_read_the_declaration():
    from blendlab.hooks import FIELDS, Recorder
    from blendlab.viz.base import LABELS, PANEL_FIELDS as PANELS
    from blendlab.widgets.scrubber import _FIELD_LABELS

    assert FIELDS == tuple(f.name for f in STEP_FIELDS)
    assert LABELS == {f.name: f.label for f in STEP_FIELDS} and set(PANELS) <= set(LABELS)
    assert all(_FIELD_LABELS[f.name] == f.description for f in STEP_FIELDS)
    with pytest.raises(ValueError, match="choose from x_t, pred_x0"):
        Recorder(fields=("x0",))
    assert step_field("grad").label.startswith("$|")
    with pytest.raises(InputError, match="unknown step field 'xt'"):
        step_field("xt")


def test_every_step_carries_the_declared_numbers_under_one_name():
    from blendlab.sampler import StepState
    from blendlab.trajectory import RecordedStep
    from blendlab.vocabulary import STEP_SCALARS

    for cls in (StepState, RecordedStep):
        names = {f.name for f in dataclasses.fields(cls)}
        assert set(STEP_SCALARS) <= names, cls
        assert "t" not in names  # the old name is only a deprecated alias now


def test_stepstate_t_is_the_respaced_index_under_its_old_name_with_a_warning(tiny, image, mask):
    import blendlab as bl
    from _fast import fast_cfg

    state = next(bl.BlendedSampler(tiny, image, mask, fast_cfg()).steps())
    with pytest.warns(DeprecationWarning, match=r"StepState\.t is deprecated.*StepState\.respaced_index.*"
                                                r"StepState\.timestep"):
        old = state.t
    assert old == state.respaced_index and state.respaced_index != state.timestep


def test_the_built_in_hooks_keep_their_old_home():
    import blendlab
    import blendlab.hooks as hooks
    from blendlab.progress import ProgressBar
    from blendlab.recorder import FIELDS, Recorder, load_trajectory

    assert (hooks.Recorder, hooks.ProgressBar, hooks.FIELDS, hooks.load_trajectory) == (
        Recorder, ProgressBar, FIELDS, load_trajectory)
    assert blendlab.Recorder is Recorder and blendlab.ProgressBar is ProgressBar
    assert Recorder.__module__ == "blendlab.recorder" and ProgressBar.__module__ == "blendlab.progress"
    assert hooks.IterationVideos.__module__ == "blendlab.hooks"
