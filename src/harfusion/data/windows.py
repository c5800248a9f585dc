"""Where windows may lie in a recording's rows, and what a model must agree with in them.

Free of torch, so that `harfusion predict` on an ONNX model never imports it. Windows never
span a gap in the timestamps, a repeated or backward timestamp, or a change of session: a model
never sees two recordings (or two bouts with a pause between them) glued together.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import numpy as np

GAP_FACTOR = 1.5  # a step longer than 1.5 sample periods starts a new segment


@dataclass(frozen=True)
class WindowSpec:
    """What a model must agree with in the windows it is applied to (`model_card.check_fits`)."""

    source: str  # the file that says so, named in errors
    window: int  # steps per window
    channels: dict[str, int]  # per modality
    channel_names: dict[str, list[str]] | None = None  # None: the layout does not name them
    classes: list[int] | None = None  # None: unlabelled windows
    class_names: list[str] | None = None
    rate_hz: float | None = None  # measured from the timestamps; None: not measured


def breaks(steps: np.ndarray, rate_hz: float) -> np.ndarray:
    """bool per step between two rows sampled at `rate_hz`: whether a window may not span it (a
    gap, or a repeated or backward timestamp)."""
    return (steps <= 0) | (steps > GAP_FACTOR / rate_hz)


def segments(
    timestamps: np.ndarray, rate_hz: float, sessions: np.ndarray | None = None
) -> np.ndarray:
    """Bounds of the runs of rows with no gap, no repeated or backward timestamp and no change
    of session: [0, b1, ..., rows]."""
    cut = breaks(np.diff(timestamps), rate_hz)
    if sessions is not None:
        cut |= sessions[1:] != sessions[:-1]
    return np.concatenate([[0], np.flatnonzero(cut) + 1, [len(timestamps)]])


def window_starts(
    timestamps: np.ndarray,
    rate_hz: float,
    chunk_size: int,
    stride: int,
    sessions: np.ndarray | None = None,
) -> np.ndarray:
    """Start rows of every full window that lies inside one gap-free segment of one session."""
    starts = [
        np.arange(begin, end - chunk_size + 1, stride)
        for begin, end in pairwise(segments(timestamps, rate_hz, sessions))
        if end - begin >= chunk_size
    ]
    return np.concatenate(starts) if starts else np.zeros(0, dtype=np.int64)


def sample_period(timestamps: np.ndarray) -> float | None:
    """The median step between rows whose clock advances; None without two such rows."""
    steps = np.diff(timestamps)
    steps = steps[steps > 0]
    return float(np.median(steps)) if len(steps) else None


def no_window_reason(
    timestamps: np.ndarray, rate_hz: float, sessions: np.ndarray | None, chunk_size: int
) -> str:
    """Why rows with these timestamps hold no window of `chunk_size`, measured from the clock."""
    rows = len(timestamps)
    if rows < chunk_size:
        return f"{rows} rows, fewer than chunk_size={chunk_size}"
    steps = np.diff(timestamps)
    repeated = int((steps <= 0).sum())
    period = sample_period(timestamps)
    if repeated * 2 > len(steps) or period is None:
        return (
            f"{repeated} of {rows} rows repeat or precede the previous row's timestamp "
            "(duplicated rows, or a clock that does not advance)"
        )
    if period > GAP_FACTOR / rate_hz:
        unit = (
            "; a millisecond clock? timestamps must be seconds"
            if period >= 1
            else f" ({1 / period:.3g} Hz)"
        )
        return (
            f"timestamps advance {period:.3g} per row{unit}; windows need rows "
            f"{1 / rate_hz:g} s apart ({rate_hz:g} Hz): resample the recording"
        )
    longest = int(np.diff(segments(timestamps, rate_hz, sessions)).max())
    return (
        f"its longest run without a gap, repeated timestamp or change of session is {longest} "
        f"rows, fewer than chunk_size={chunk_size}"
    )
