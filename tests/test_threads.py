"""The thread policy: one torch thread for the small presets unless the user said otherwise."""

import pytest
import torch

from blendlab.errors import InputError
from blendlab.threads import apply_thread_policy, threads_for


@pytest.fixture(autouse=True)
def _restore_threads(monkeypatch):
    monkeypatch.delenv("BLENDLAB_THREADS", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("preset", ["toy", "tiny", "tiny-cond"])
def test_small_presets_run_on_one_thread(preset):
    torch.set_num_threads(2)
    assert apply_thread_policy(preset) == 1 == torch.get_num_threads()


def test_real_presets_keep_torchs_default():
    torch.set_num_threads(2)
    assert apply_thread_policy("256-uncond") == 2
    assert threads_for("512-cond") == (None, "torch's default")


def test_an_explicit_count_wins(monkeypatch):
    monkeypatch.setenv("BLENDLAB_THREADS", "1")
    assert apply_thread_policy("toy", threads=2) == 2


def test_the_environment_is_respected(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    torch.set_num_threads(2)
    assert apply_thread_policy("toy") == 2  # the user set it: left alone
    monkeypatch.setenv("BLENDLAB_THREADS", "1")
    assert apply_thread_policy("toy") == 1


@pytest.mark.parametrize("bad", [0, -1, "two", 1.5])
def test_a_bad_count_says_so(bad):
    with pytest.raises(InputError, match="whole number of threads"):
        threads_for("toy", threads=bad)
