"""How many cores a process may use, and how many CPU threads torch uses in a stage."""

from __future__ import annotations

import os

from harfusion.params import Params


def usable_cores() -> int:
    """The cores this process may run on: its affinity mask where the OS has one (Linux, so
    containers and `taskset` count), else every core (macOS has no affinity call)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def configure_threads(params: Params) -> int:
    """Set torch's CPU threads from `train.cpu_threads`, unless OMP_NUM_THREADS already says."""
    import torch  # here, so stages that only count cores do not pay for importing torch

    if "OMP_NUM_THREADS" in os.environ:
        return torch.get_num_threads()
    threads = params.train.cpu_threads
    if threads == "auto":
        threads = max(1, usable_cores() // 2)
    torch.set_num_threads(threads)
    return threads
