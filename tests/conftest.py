"""Shared test helpers: tiny raw recordings written in the PAMAP2 format."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from harfusion.pamap2 import RAW_FIELDS
from harfusion.params import SplitParams
from harfusion.preprocess import preprocess
from harfusion.splits import write_splits
from harfusion.tensorize import tensorize
from tests.clones import swept  # noqa: F401  (one swept clone for the sweep and scale-out tests)

# Tiny tensors: one thread avoids OpenMP hand-off costs that dominate when the other core is busy.
torch.set_num_threads(1)

SHARED = Path(__file__).resolve().parents[2] / "shared"
EXCERPT = SHARED / "fixtures" / "pamap2_excerpt.dat"


def dat_line(
    timestamp: float, activity: int, rng: np.random.Generator, hr: float | None = None
) -> str:
    values = rng.normal(size=RAW_FIELDS - 3)
    quaternions = values.reshape(3, 17)[:, 13:]  # a view: orientation is a unit quaternion
    quaternions /= np.linalg.norm(quaternions, axis=1, keepdims=True)
    fields = [f"{timestamp:.2f}", str(activity), "NaN" if hr is None else f"{hr:g}"]
    return " ".join(fields + [f"{v:.6g}" for v in values])


def write_recording(
    path: Path, segments: list[tuple[int, int]], seed: int = 0, start: float = 5.0
) -> Path:
    """Write `(activity, rows)` segments at 100 Hz; heart rate every 10th row."""
    rng = np.random.default_rng(seed)
    lines, t = [], start
    for activity, rows in segments:
        for i in range(rows):
            hr = 80.0 + activity if i % 10 == 0 else None
            lines.append(dat_line(t, activity, rng, hr))
            t += 0.01
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


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
    preprocess(raw, tmp_path / "processed", ["Protocol"], 25, 19.0)
    write_splits(tmp_path / "processed", tmp_path / "splits", SplitParams())
    tensorize(tmp_path / "splits", tmp_path / "processed", tmp_path / "tensors", 64, 32)
    return tmp_path
