"""A raw recording as a trained model reads it, for `harfusion predict`.

Exactly what training did to its recordings, from the model card: heart rate filled per
recording as preprocess fills it, windows that never span a gap or a backward timestamp
(`windows.window_starts`), a modality absent from a window where its sensor sent nothing for
most of it (as tensorize judges it). Free of torch: predict on an ONNX model never imports it.
Whether the recording fits the model (its rate, its channels) is `models.model_card.check_fits`'s
to say, from `Recording.spec`, once the whole file is read.

The file is read a block at a time, and a batch of windows is handed on as soon as every row
it needs is read and final (heart rate's rolling median looks a few rows ahead), so only the
rows of windows not yet handed on are kept of the model's channels: memory follows the batch,
not the recording (ten hours of the default model's channels are 0.4 GB as float32; the file's
54 columns as float64 1.55 GB). Per row only the clock, the label, heart rate and which sensors
sent nothing are kept (about 80 MB for ten hours). A recording whose heart rate never reads
(for a model that reads it) is the exception: until a reading comes, every row may still be
back-filled, so its windows wait, and their rows with them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harfusion.data.dat_reader import BLOCK_BYTES, read_dat_blocks
from harfusion.data.pamap2 import RAW_COLUMNS, TRANSIENT_ACTIVITY
from harfusion.data.preprocess import fill_heart_rate
from harfusion.data.presence import absent_windows, missing_by_modality
from harfusion.data.windows import WindowSpec, breaks, no_window_reason, sample_period
from harfusion.errors import HarfusionError

_TIME, _ACTIVITY, _HR = (RAW_COLUMNS.index(c) for c in RAW_COLUMNS[:3])
_SENSORS = RAW_COLUMNS[_HR + 1 :]  # the IMUs' columns
NO_LABEL = -1  # a window whose rows do not share one activity
HEART_RATE = "heart_rate"


@dataclass
class Recording:
    path: Path
    timestamps: np.ndarray  # float64 [rows], the recording's own clock
    activities: np.ndarray  # int16 [rows], 0 where the recording has no label
    spec: WindowSpec  # what it offers a model (`model_card.check_fits` compares)

    @property
    def labelled(self) -> bool:
        """Whether the recording carries activity labels (not all rows activity 0)."""
        return bool((self.activities != TRANSIENT_ACTIVITY).any())


@dataclass
class Windows:
    recording: Recording
    starts: np.ndarray  # int64 [windows], first row of each window
    absent: dict[str, np.ndarray]  # per modality bool [windows]: the window lacks it
    length: int  # rows per window

    def __len__(self) -> int:
        return len(self.starts)

    def true_activities(self) -> np.ndarray:
        """int [windows]: the activity all rows of a window share, or `NO_LABEL`."""
        activities = self.recording.activities
        changes = np.concatenate([[0], np.cumsum(activities[1:] != activities[:-1])])
        pure = changes[self.starts + self.length - 1] == changes[self.starts]
        return np.where(pure, activities[self.starts], NO_LABEL)


@dataclass
class Batch:
    first: int  # the position of its first window among the recording's
    inputs: dict[str, np.ndarray]  # per modality float32 [batch, length, channels], raw
    mask: np.ndarray  # bool [batch, modalities]: present, in the model's order


class WindowReader:
    """Iterate over a recording's windows in batches, in order; afterwards `recording` and
    `windows()` describe what was read."""

    def __init__(
        self,
        path: Path,
        card: dict,
        stride: int,
        batch_size: int = 256,
        block_bytes: int = BLOCK_BYTES,
    ) -> None:
        self.path, self.card, self.stride, self.batch_size = path, card, stride, batch_size
        self.block_bytes = block_bytes
        self.length: int = card["window"]
        self.columns = {
            m: [RAW_COLUMNS.index(n) for n in card["channel_names"][m]] for m in card["modalities"]
        }
        self.imus = [m for m in self.columns if m != HEART_RATE]
        self.median = int(card["preprocessing"]["heart_rate_median_window"])
        expected = _expected_rows(path)
        # per row: the clock, the label, heart rate forward-filled (float64, as preprocess
        # fills it) and which IMUs sent nothing
        self.rows = _Rows(expected)
        self.buffer = _Rows(1 << 16)  # the IMUs' channels of the rows windows still need
        self.hr_final = _Rows(expected)  # heart rate filled and smoothed: final
        self.hr_seen: float | None = None  # the last valid heart rate, once there is one
        self.sensed = {m: np.zeros(len(c), dtype=bool) for m, c in self.columns.items()}
        self.starts: list[int] = []  # every window found, in order
        self.handed = 0  # windows handed on
        self.next_start = 0  # the first row of the next window in the current run
        self.absent: dict[str, list[np.ndarray]] = {m: [] for m in self.columns}
        self.recording: Recording | None = None

    def __iter__(self) -> Iterator[Batch]:
        for block in read_dat_blocks(self.path, self.block_bytes):
            self._take(block)
            yield from self._batches(final=False)
        self._finish()
        yield from self._batches(final=True)

    def windows(self) -> Windows:
        """Every window, after iterating; one line naming the reason where there is none."""
        assert self.recording is not None, "iterate over the reader first"
        if not self.starts:
            why = no_window_reason(self.recording.timestamps, None, self.length)
            raise HarfusionError(f"{self.path}: no window of the model's {self.length} rows: {why}")
        absent = {m: np.concatenate(parts) for m, parts in self.absent.items()}
        return Windows(self.recording, np.array(self.starts), absent, self.length)

    def _take(self, block: np.ndarray) -> None:
        """One block's rows: kept per row where small, buffered where not, windows found."""
        missing = missing_by_modality(block[:, _HR + 1 :], _SENSORS)
        values = {m: block[:, self.columns[m]].astype(np.float32) for m in self.imus}
        for modality, chunk in values.items():
            self.sensed[modality] |= ~np.isnan(chunk).all(axis=0)
        first = self.rows.count
        self.rows.append(
            {"time": block[:, _TIME], "activity": block[:, _ACTIVITY].astype(np.int16)}
            | {"heart_rate": self._forward_filled(block[:, _HR])}
            | {m: missing[m] for m in self.imus}
        )
        if values:
            self.buffer.append(values)
        self._find_windows(max(first - 1, 0))

    def _forward_filled(self, hr: np.ndarray) -> np.ndarray:
        """A block's heart rate forward-filled from the rows before it; the rows before the
        first reading of the file take that reading (back-filled), as preprocess fills them."""
        valid = ~np.isnan(hr)
        filled = hr.copy()
        if self.hr_seen is not None and not valid[0]:
            filled[0] = self.hr_seen
        index = np.where(~np.isnan(filled), np.arange(len(filled)), 0)
        np.maximum.accumulate(index, out=index)
        filled = filled[index]
        if self.hr_seen is None and valid.any():
            first = filled[valid.argmax()]
            filled[: valid.argmax()] = first
            self.rows.columns.get("heart_rate", np.zeros(0))[: self.rows.count] = first
        if not np.isnan(filled[-1]):
            self.hr_seen = float(filled[-1])
        return filled

    def _smooth_heart_rate(self, final: bool) -> int:
        """Rows whose filled and smoothed heart rate is final: the rolling median of a row
        needs `median // 2` rows after it (all of them, at the end of the file)."""
        if self.hr_seen is None and not final:
            return 0  # no reading yet: every row so far may still be back-filled
        filled = self.rows["heart_rate"]
        rows, done = len(filled), self.hr_final.count
        upto = rows if final else max(rows - self.median, done)
        if upto > done:
            low = max(done - self.median, 0)
            if final and rows < self.median:  # as preprocess smooths a short recording
                low = 0
            smoothed = fill_heart_rate(filled[low:rows], self.median)
            self.hr_final.append({"hr": smoothed[done - low : upto - low].astype(np.float32)})
        return self.hr_final.count

    def _find_windows(self, scan_from: int) -> None:
        """Windows whose rows are all read: the runs without a gap, repeated or backward
        timestamp, cut every `stride` rows (`windows.window_starts`, a block at a time)."""
        cuts = scan_from + 1 + np.flatnonzero(breaks(np.diff(self.rows["time"][scan_from:])))
        for end in [*cuts.tolist(), self.rows.count]:
            while self.next_start + self.length <= end:
                self.starts.append(self.next_start)
                self.next_start += self.stride
            if end < self.rows.count:  # a cut: a new run
                self.next_start = end

    def _finish(self) -> None:
        timestamps = self.rows["time"]
        period = sample_period(timestamps)
        names = {}
        for modality, own in self.card["channel_names"].items():
            if modality == HEART_RATE:
                self.sensed[modality][:] = self.hr_seen is not None
            has = self.sensed[modality]
            # a sensor that sent nothing at all is absent (masked), not lacking channels
            names[modality] = [n for n, s in zip(own, has, strict=True) if s] if has.any() else own
        spec = WindowSpec(
            source=str(self.path),
            window=self.length,
            channels={m: len(n) for m, n in names.items()},
            channel_names=names,
            rate_hz=None if period is None else 1 / period,
        )
        activities = self.rows["activity"]
        self.recording = Recording(self.path, timestamps, activities, spec)

    def _batches(self, final: bool) -> Iterator[Batch]:
        """Batches of the windows found whose rows are final; all of them at the end."""
        ready = self.rows.count
        if HEART_RATE in self.columns:
            ready = self._smooth_heart_rate(final)
        while True:
            stop = self.handed
            while stop < len(self.starts) and self.starts[stop] + self.length <= ready:
                stop += 1
            if stop - self.handed < self.batch_size and not (final and stop > self.handed):
                return
            stop = min(stop, self.handed + self.batch_size)
            yield self._batch(self.handed, stop)
            self.handed = stop
            keep = self.starts[stop] if stop < len(self.starts) else self.next_start
            self.buffer.drop_before(keep)

    def _batch(self, first: int, stop: int) -> Batch:
        starts = np.array(self.starts[first:stop])
        rows = starts[:, None] + np.arange(self.length)
        inputs = {m: self.buffer[m][rows - self.buffer.offset] for m in self.imus}
        absent: dict[str, np.ndarray] = {}
        low, high = int(starts[0]), int(starts[-1]) + self.length
        for modality in self.imus:
            missing = self.rows[modality][low:high]
            absent[modality] = absent_windows(missing, starts - low, self.length)
        if HEART_RATE in self.columns:
            inputs[HEART_RATE] = self.hr_final["hr"][rows][..., None]
            no_reading = self.hr_seen is None  # none in the whole file: absent everywhere
            absent[HEART_RATE] = np.full(len(starts), no_reading)
            if no_reading:
                inputs[HEART_RATE] = np.full_like(inputs[HEART_RATE], np.nan)
        inputs = {m: inputs[m] for m in self.columns}  # the model's order
        for modality, flags in absent.items():
            self.absent[modality].append(flags)
        mask = np.stack([~absent[m] for m in self.columns], axis=1)
        return Batch(first, inputs, mask)


class _Rows:
    """Columns appended a block at a time into arrays that grow by doubling (no list of blocks,
    no concatenated copy of them), from which the rows before a given one can be dropped. Space
    reserved past the last row is never touched, so it costs no memory. Rows are addressed by
    their number in the file."""

    def __init__(self, capacity: int) -> None:
        self.capacity = max(capacity, 1)
        self.offset = 0  # the file row kept at index 0
        self.count = 0  # the file rows before `count` have been appended
        self.columns: dict[str, np.ndarray] = {}

    def append(self, block: dict[str, np.ndarray]) -> None:
        size = len(next(iter(block.values())))
        kept = self.count - self.offset
        if kept + size > self.capacity:
            while kept + size > self.capacity:
                self.capacity *= 2
            self.columns = {k: self._grown(v, kept) for k, v in self.columns.items()}
        for key, values in block.items():
            if key not in self.columns:
                self.columns[key] = np.empty((self.capacity, *values.shape[1:]), values.dtype)
            self.columns[key][kept : kept + size] = values
        self.count += size

    def _grown(self, values: np.ndarray, kept: int) -> np.ndarray:
        grown = np.empty((self.capacity, *values.shape[1:]), values.dtype)
        grown[:kept] = values[:kept]
        return grown

    def __getitem__(self, key: str) -> np.ndarray:
        """The kept rows of a column, file row `offset` first."""
        return self.columns[key][: self.count - self.offset]

    def drop_before(self, row: int) -> None:
        """Forget the rows before file row `row`: the rest move to the front."""
        row = min(row, self.count)
        if row > self.offset:
            start, kept = row - self.offset, self.count - self.offset
            for values in self.columns.values():
                values[: kept - start] = values[start:kept]
            self.offset = row


def _expected_rows(path: Path) -> int:
    """A generous guess of the rows in `path` (a PAMAP2 row is about 465 bytes of text, about
    a tenth of that gzipped); a wrong guess costs one doubling."""
    return path.stat().st_size // (40 if path.suffix == ".gz" else 300) + 1024
