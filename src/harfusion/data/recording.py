"""A raw recording as a trained model reads it, for `harfusion predict`.

Exactly what training did to its recordings, from the model card: heart rate filled per
recording as preprocess fills it, windows that never span a gap or a backward timestamp, a
modality absent from a window where its sensor sent nothing for most of it (as tensorize
judges it). The file is read a block at a time and only the model's channels are kept, so
memory follows those (ten hours of the default model's 28 channels: 0.4 GB), not the 54 raw
columns (1.55 GB). Free of torch: predict on an ONNX model never imports it. Whether the
recording fits the model (its rate, its channels) is `models.model_card.check_fits`'s to say,
from `Recording.spec`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harfusion.data.dat_reader import read_dat_blocks
from harfusion.data.pamap2 import RAW_COLUMNS, TRANSIENT_ACTIVITY
from harfusion.data.preprocess import fill_heart_rate
from harfusion.data.presence import absent_windows, missing_by_modality
from harfusion.data.windows import WindowSpec, no_window_reason, sample_period, window_starts
from harfusion.errors import HarfusionError

_TIME, _ACTIVITY, _HR = (RAW_COLUMNS.index(c) for c in RAW_COLUMNS[:3])
NO_LABEL = -1  # a window whose rows do not share one activity


@dataclass
class Recording:
    path: Path
    timestamps: np.ndarray  # float64 [rows], the recording's own clock
    activities: np.ndarray  # int16 [rows], 0 where the recording has no label
    inputs: dict[str, np.ndarray]  # per modality float32 [rows, channels]; NaN: nothing sent
    missing: dict[str, np.ndarray]  # per modality bool [rows]: its sensor sent nothing
    spec: WindowSpec  # what it offers a model (`model_card.check_fits` compares)

    @property
    def labelled(self) -> bool:
        """Whether the recording carries activity labels (not all rows activity 0)."""
        return bool((self.activities != TRANSIENT_ACTIVITY).any())

    def windows(self, length: int, stride: int) -> Windows:
        """Windows of `length` rows every `stride` rows, none across a gap in the clock; one
        line naming the reason where there is none."""
        starts = window_starts(self.timestamps, length, stride)
        if not len(starts):
            why = no_window_reason(self.timestamps, None, length)
            raise HarfusionError(f"{self.path}: no window of the model's {length} rows: {why}")
        absent = {m: absent_windows(self.missing[m], starts, length) for m in self.inputs}
        return Windows(self, starts, absent, length)


@dataclass
class Windows:
    recording: Recording
    starts: np.ndarray  # int64 [windows], first row of each window
    absent: dict[str, np.ndarray]  # per modality bool [windows]: the window lacks it
    length: int  # rows per window

    def __len__(self) -> int:
        return len(self.starts)

    def batch(self, first: int, last: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Windows `first` to `last` (exclusive): per modality float32 [batch, length,
        channels], and the presence mask bool [batch, modalities] in the model's order."""
        rows = self.starts[first:last, None] + np.arange(self.length)
        inputs = {m: values[rows] for m, values in self.recording.inputs.items()}
        mask = np.stack([~self.absent[m][first:last] for m in inputs], axis=1)
        return inputs, mask

    def true_activities(self) -> np.ndarray:
        """int [windows]: the activity all rows of a window share, or `NO_LABEL`."""
        activities = self.recording.activities
        changes = np.concatenate([[0], np.cumsum(activities[1:] != activities[:-1])])
        pure = changes[self.starts + self.length - 1] == changes[self.starts]
        return np.where(pure, activities[self.starts], NO_LABEL)


def read_recording(path: Path, card: dict) -> Recording:
    """`path` read for the model `card`: its channels, heart rate filled as training's was, and
    which rows of each modality hold nothing."""
    names = card["channel_names"]
    columns = {m: [RAW_COLUMNS.index(n) for n in names[m]] for m in card["modalities"]}
    parts: dict[str, list[np.ndarray]] = {key: [] for key in ("time", "activity", "hr")}
    values: dict[str, list[np.ndarray]] = {m: [] for m in columns}
    missing: dict[str, list[np.ndarray]] = {m: [] for m in columns if m != "heart_rate"}
    sensed = {m: np.zeros(len(c), dtype=bool) for m, c in columns.items()}
    sensors = RAW_COLUMNS[_HR + 1 :]  # the IMUs' columns
    for block in read_dat_blocks(path):
        parts["time"].append(block[:, _TIME].copy())
        parts["activity"].append(block[:, _ACTIVITY].astype(np.int16))
        parts["hr"].append(block[:, _HR].copy())
        for modality, rows in missing_by_modality(block[:, _HR + 1 :], sensors).items():
            if modality in missing:
                missing[modality].append(rows)
        for modality, own in columns.items():
            if modality != "heart_rate":
                chunk = block[:, own].astype(np.float32)
                sensed[modality] |= ~np.isnan(chunk).all(axis=0)
                values[modality].append(chunk)
    timestamps = np.concatenate(parts.pop("time"))
    activities = np.concatenate(parts.pop("activity"))
    inputs = {m: _concatenate(values, m) for m in columns if m != "heart_rate"}
    rows_missing = {m: _concatenate(missing, m) for m in list(missing)}
    if "heart_rate" in columns:  # filled as preprocess fills it, then judged as tensorize does
        hr = fill_heart_rate(np.concatenate(parts.pop("hr")), _median_window(card))
        rows_missing["heart_rate"] = np.isnan(hr)
        sensed["heart_rate"][:] = not rows_missing["heart_rate"].all()
        inputs["heart_rate"] = hr.astype(np.float32)[:, None]
    inputs = {m: inputs[m] for m in columns}  # the model's order
    spec = _spec(path, card, sensed, sample_period(timestamps))
    return Recording(path, timestamps, activities, inputs, rows_missing, spec)


def _concatenate(lists: dict[str, list[np.ndarray]], key: str) -> np.ndarray:
    """One modality's blocks as one array, its blocks freed first: one copy at a time."""
    blocks = lists.pop(key)
    return blocks[0] if len(blocks) == 1 else np.concatenate(blocks)


def _median_window(card: dict) -> int:
    return int(card["preprocessing"]["heart_rate_median_window"])


def _spec(
    path: Path, card: dict, sensed: dict[str, np.ndarray], period: float | None
) -> WindowSpec:
    """What the recording offers the model: per modality the model's channels that hold a
    value somewhere (all of them where the sensor sent nothing at all: that modality is absent,
    and masked, not lacking), and the rate its clock advances at."""
    names = {}
    for modality, own in card["channel_names"].items():
        has = sensed[modality]
        names[modality] = [n for n, s in zip(own, has, strict=True) if s] if has.any() else own
    return WindowSpec(
        source=str(path),
        window=card["window"],
        channels={m: len(n) for m, n in names.items()},
        channel_names=names,
        rate_hz=None if period is None else 1 / period,
    )
