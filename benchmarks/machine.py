"""The machine a benchmark ran on: CPU, cores, torch threads and versions, the GPU if any, and the load
average (other processes on a shared machine skew CPU timings). Every benchmark records these.

May import: blendlab.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

import torch

import blendlab as bl

__all__ = ["machine_info", "load_average"]


def machine_info() -> dict:
    """CPU model, cores, threads, torch version, and the GPU if any."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = dict(cpu=cpu, cores=os.cpu_count(), torch_threads=torch.get_num_threads(),
                torch=torch.__version__, python=platform.python_version(), platform=platform.platform(),
                blendlab=bl.__version__, gpu=None)
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
        info["cuda"] = torch.version.cuda
    return info


def load_average() -> float | None:
    """1-minute load average (other processes on a shared machine skew CPU timings)."""
    try:
        return os.getloadavg()[0]
    except OSError:
        return None

