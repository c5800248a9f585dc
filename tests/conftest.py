"""Fixtures shared by the test files (plain helpers are in tests/helpers.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from harfusion.data.preprocess import preprocess
from harfusion.data.splits import write_splits
from harfusion.data.tensorize import tensorize
from harfusion.params import PreprocessParams, SplitParams
from tests.clones import swept  # noqa: F401  (one swept clone for the sweep and scale-out tests)
from tests.helpers import PAMAP2, write_recording

# Tiny tensors: one thread avoids OpenMP hand-off costs that dominate when the other core is busy.
torch.set_num_threads(1)

SHARED = Path(__file__).resolve().parents[2] / "shared"
EXCERPT = SHARED / "fixtures" / "pamap2_excerpt.dat"


@pytest.fixture
def excerpt() -> Path:
    if not EXCERPT.exists():
        pytest.skip("../shared/fixtures is not beside this checkout")
    return EXCERPT


@pytest.fixture
def tensors(tmp_path: Path) -> Path:
    """raw → preprocess → split → tensorize for 5 subjects × 3 activities, windows of 64."""
    raw = tmp_path / "raw"
    for subject in range(101, 106):
        segments = [(a, 300 + 37 * subject % 100) for a in (1, 4, 5)]
        segments.insert(2, (0, 30))
        write_recording(raw / "Protocol" / f"subject{subject}.dat", segments, seed=subject)
    preprocess(raw, tmp_path / "processed", PreprocessParams(sessions=["Protocol"]), PAMAP2)
    write_splits(tmp_path / "processed", tmp_path / "splits", SplitParams())
    tensorize(tmp_path / "splits", tmp_path / "processed", tmp_path / "tensors", 64, 32)
    return tmp_path
