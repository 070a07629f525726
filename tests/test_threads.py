"""The thread policy: one torch thread for the small presets unless the user said otherwise."""

import os
import subprocess
import sys

import pytest
import torch

from blendlab import _openmp

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
def test_small_presets_run_on_one_thread_where_idle_threads_may_spin(preset, monkeypatch):
    monkeypatch.setattr(_openmp, "_POLICY_AT_TORCH_LOAD", None)  # torch loaded before blendlab
    torch.set_num_threads(2)
    assert apply_thread_policy(preset) == 1 == torch.get_num_threads()


@pytest.mark.parametrize("preset", ["toy", "tiny"])
def test_small_presets_use_two_sleeping_threads(preset, monkeypatch):
    monkeypatch.setattr(_openmp, "_POLICY_AT_TORCH_LOAD", "PASSIVE")
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    torch.set_num_threads(1)
    assert apply_thread_policy(preset) == 2 == torch.get_num_threads()
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    assert apply_thread_policy(preset) == 1


def test_import_blendlab_asks_openmp_to_sleep_before_torch_loads():
    """In a fresh interpreter: blendlab sets OMP_WAIT_POLICY=PASSIVE when the user did not choose,
    leaves a user's choice alone, and cannot (and says so) when torch was imported first."""
    code = ("import os, blendlab, blendlab._openmp as o; "
            "print(os.environ.get('OMP_WAIT_POLICY'), o.waits_passively())")
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    run = lambda c, **e: subprocess.run([sys.executable, "-c", c], env={**env, **e}, capture_output=True,
                                        text=True, check=True).stdout.split()
    assert run(code) == ["PASSIVE", "True"]
    assert run(code, OMP_WAIT_POLICY="ACTIVE") == ["ACTIVE", "False"]
    assert run("import torch; " + code) == ["None", "False"]


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
