"""Shared test helpers: tiny raw recordings written in the PAMAP2 format."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from harfusion.pamap2 import RAW_FIELDS

SHARED = Path(__file__).resolve().parents[2] / "shared"
EXCERPT = SHARED / "fixtures" / "pamap2_excerpt.dat"


def dat_line(
    timestamp: float, activity: int, rng: np.random.Generator, hr: float | None = None
) -> str:
    values = rng.normal(size=RAW_FIELDS - 3)
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
