"""How many CPU threads torch uses in a stage."""

from __future__ import annotations

import os

import torch

from harfusion.params import Params


def configure_threads(params: Params) -> int:
    """Set torch's CPU threads from `train.cpu_threads`, unless OMP_NUM_THREADS already says."""
    if "OMP_NUM_THREADS" in os.environ:
        return torch.get_num_threads()
    threads = params.train.cpu_threads
    if threads == "auto":
        threads = max(1, len(os.sched_getaffinity(0)) // 2)
    torch.set_num_threads(threads)
    return threads
