import os

import pytest
import torch

from harfusion.params import Params
from harfusion.threads import configure_threads, usable_cores


def test_usable_cores_follows_affinity_and_falls_back_without_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0, 3, 5}, raising=False)
    assert usable_cores() == 3
    monkeypatch.delattr(os, "sched_getaffinity")  # as on macOS
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    assert usable_cores() == 8


def test_configure_threads_auto_uses_half_the_cores_unless_omp_says(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    before = torch.get_num_threads()
    try:
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
        monkeypatch.setattr("harfusion.threads.usable_cores", lambda: 6)
        assert configure_threads(Params()) == 3 and torch.get_num_threads() == 3
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
        torch.set_num_threads(2)
        assert configure_threads(Params()) == 2  # left as the environment set it
    finally:
        torch.set_num_threads(before)
