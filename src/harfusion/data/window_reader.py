"""A raw recording as a trained model reads it, for `harfusion predict`.

Exactly what training did to its recordings, from the model card and the dataset description
it carries: each modality's preprocessing (a slow sensor filled and smoothed per recording, as
preprocess does it), windows that never span a gap or a backward timestamp
(`windows.window_starts`), a modality absent from a window where its sensor sent nothing for
most of it (as tensorize judges it). Free of torch: predict on an ONNX model never imports it.
Whether the recording fits the model (its rate, its channels) is `models.model_card.check_fits`'s
to say, from `ReadRecording.spec`, once the whole file is read.

The file is read a block at a time, and a batch of windows is handed on as soon as every row
it needs is read and final (a rolling median looks a few rows ahead), so only the rows of
windows not yet handed on are kept of the model's channels: memory follows the batch, not the
recording (ten hours of the default PAMAP2 model's channels are 0.4 GB as float32; the file's
54 columns as float64 1.55 GB). Per row only the clock, the label, the filled channels and which
sensors sent nothing are kept. A recording whose filled sensor never reads (for a model that
reads it) is the exception: until a reading comes, every row may still be back-filled, so its
windows wait, and their rows with them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import ValidationError

from harfusion.data.description import Description, describe
from harfusion.data.preprocess import fill_and_smooth
from harfusion.data.presence import absent_windows, missing_by_modality
from harfusion.data.recordings import BLOCK_BYTES, RecordingData, read_recording_blocks
from harfusion.data.windows import WindowSpec, breaks, no_window_reason, sample_period
from harfusion.errors import HarfusionError

NO_LABEL = -1  # a window whose rows do not share one activity


@dataclass
class ReadRecording:
    """What was read of one recording (a row per sample)."""

    path: Path
    timestamps: np.ndarray  # float64 [rows], the recording's own clock
    activities: np.ndarray  # int16 [rows], the label column
    labelled: bool  # whether any row carries an activity (not only ignored labels)
    spec: WindowSpec  # what it offers a model (`model_card.check_fits` compares)


@dataclass
class Windows:
    recording: ReadRecording
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


def card_description(card: dict, path: Path | str) -> Description:
    """The dataset description a model card carries (the one its training data were made
    with)."""
    if card.get("dataset") is None:
        raise HarfusionError(
            f"{path}: trained on the legacy .npy layout, which names no dataset: predict cannot "
            "read raw recordings for it"
        )
    try:
        return Description.model_validate(card["dataset"])
    except ValidationError as exc:
        raise HarfusionError(describe(exc, f"{path} (its dataset)")) from None


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
        self.description = description = card_description(card, path)
        self.rate = description.sampling_rate_hz
        self.length: int = card["window"]
        index = {name: i for i, name in enumerate(description.channels)}
        self.columns = {m: [index[n] for n in card["channel_names"][m]] for m in card["modalities"]}
        # Modalities preprocess fills or smooths (a slow sensor): kept per row until final.
        self.slow = [
            m
            for m in self.columns
            if description.modalities[m].preprocess.fill
            or description.modalities[m].preprocess.median_window > 1
        ]
        self.fast = [m for m in self.columns if m not in self.slow]
        self.fast_channels = {m: description.modality_channels(m) for m in self.fast}
        expected = _expected_rows(path)
        # per row: the clock, the label, the slow modalities forward-filled (float64, as
        # preprocess fills them) and which fast sensors sent nothing
        self.rows = _Rows(expected)
        self.buffer = _Rows(1 << 16)  # the fast modalities' channels of the rows still needed
        self.final = {m: _Rows(expected) for m in self.slow}  # filled and smoothed: final
        # per slow modality and channel, the last valid reading (NaN: none yet)
        self.seen = {m: np.full(len(self.columns[m]), np.nan) for m in self.slow}
        self.sensed = {m: np.zeros(len(c), dtype=bool) for m, c in self.columns.items()}
        self.starts: list[int] = []  # every window found, in order
        self.handed = 0  # windows handed on
        self.next_start = 0  # the first row of the next window in the current run
        self.absent: dict[str, list[np.ndarray]] = {m: [] for m in self.columns}
        self.recording: ReadRecording | None = None

    def __iter__(self) -> Iterator[Batch]:
        for block in read_recording_blocks(self.path, self.description, self.block_bytes):
            self._take(block)
            yield from self._batches(final=False)
        self._finish()
        yield from self._batches(final=True)

    def windows(self) -> Windows:
        """Every window, after iterating; one line naming the reason where there is none."""
        assert self.recording is not None, "iterate over the reader first"
        if not self.starts:
            why = no_window_reason(self.recording.timestamps, self.rate, None, self.length)
            raise HarfusionError(f"{self.path}: no window of the model's {self.length} rows: {why}")
        absent = {m: np.concatenate(parts) for m, parts in self.absent.items()}
        return Windows(self.recording, np.array(self.starts), absent, self.length)

    def _take(self, block: RecordingData) -> None:
        """One block's rows: kept per row where small, buffered where not, windows found."""
        missing = missing_by_modality(block.values, block.channels, self.fast_channels)
        own = {m: block.values[:, c] for m, c in self.columns.items()}
        for modality, chunk in own.items():
            self.sensed[modality] |= ~np.isnan(chunk).all(axis=0)
        first = self.rows.count
        self.rows.append(
            {"time": block.timestamps, "activity": block.labels.astype(np.int16)}
            | {f"slow:{m}": self._forward_filled(m, own[m]) for m in self.slow}
            | {m: missing[m] for m in self.fast}
        )
        values = {m: own[m].astype(np.float32) for m in self.fast}
        if values:
            self.buffer.append(values)
        self._find_windows(max(first - 1, 0))

    def _forward_filled(self, modality: str, block: np.ndarray) -> np.ndarray:
        """A block's channels of a slow modality forward-filled from the rows before it; the
        rows before a channel's first reading in the file take that reading (back-filled), as
        preprocess fills them. Unfilled (smoothed only): as read."""
        if not self.description.modalities[modality].preprocess.fill:
            return block.copy()
        filled = block.copy()
        seen, key = self.seen[modality], f"slow:{modality}"
        for channel in range(block.shape[1]):
            column = filled[:, channel]
            valid = ~np.isnan(column)
            if not np.isnan(seen[channel]) and not valid[0]:
                column[0] = seen[channel]
            index = np.where(~np.isnan(column), np.arange(len(column)), 0)
            np.maximum.accumulate(index, out=index)
            column[:] = column[index]
            if np.isnan(seen[channel]) and valid.any():
                first = column[valid.argmax()]
                column[: valid.argmax()] = first
                earlier = self.rows.columns.get(key)
                if earlier is not None:
                    earlier[: self.rows.count, channel] = first
            if not np.isnan(column[-1]):
                seen[channel] = float(column[-1])
        return filled

    def _smooth(self, modality: str, final: bool) -> int:
        """Rows whose filled and smoothed values are final: the rolling median of a row needs
        `median // 2` rows after it (all of them, at the end of the file)."""
        steps = self.description.modalities[modality].preprocess
        if steps.fill and np.isnan(self.seen[modality]).any() and not final:
            return 0  # a channel without a reading yet: every row so far may be back-filled
        filled, done = self.rows[f"slow:{modality}"], self.final[modality].count
        rows, median = len(filled), steps.median_window
        upto = rows if final else max(rows - median, done)
        if upto > done:
            low = max(done - median, 0)
            if final and rows < median:  # as preprocess smooths a short recording
                low = 0
            smoothed = np.stack(
                [
                    fill_and_smooth(filled[low:rows, c], steps.fill, median)
                    for c in range(filled.shape[1])
                ],
                axis=1,
            )
            self.final[modality].append(
                {"values": smoothed[done - low : upto - low].astype(np.float32)}
            )
        return self.final[modality].count

    def _find_windows(self, scan_from: int) -> None:
        """Windows whose rows are all read: the runs without a gap, repeated or backward
        timestamp, cut every `stride` rows (`windows.window_starts`, a block at a time)."""
        steps = np.diff(self.rows["time"][scan_from:])
        cuts = scan_from + 1 + np.flatnonzero(breaks(steps, self.rate))
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
        ignored = np.array(sorted(self.description.labels.ignore), dtype=activities.dtype)
        labelled = bool((~np.isin(activities, ignored)).any())
        self.recording = ReadRecording(self.path, timestamps, activities, labelled, spec)

    def _batches(self, final: bool) -> Iterator[Batch]:
        """Batches of the windows found whose rows are final; all of them at the end."""
        ready = self.rows.count
        for modality in self.slow:
            ready = min(ready, self._smooth(modality, final))
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
        inputs = {m: self.buffer[m][rows - self.buffer.offset] for m in self.fast}
        absent: dict[str, np.ndarray] = {}
        low, high = int(starts[0]), int(starts[-1]) + self.length
        for modality in self.fast:
            missing = self.rows[modality][low:high]
            absent[modality] = absent_windows(missing, starts - low, self.length)
        for modality in self.slow:
            inputs[modality] = self.final[modality]["values"][rows]
            # none in the whole file: absent everywhere
            no_reading = bool(np.isnan(self.seen[modality]).all()) and bool(
                self.description.modalities[modality].preprocess.fill
            )
            absent[modality] = np.full(len(starts), no_reading)
            if no_reading:
                inputs[modality] = np.full_like(inputs[modality], np.nan)
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
    """A generous guess of the rows in `path` (a PAMAP2 row is about 465 bytes of text, an
    MHEALTH row about 200, a tenth of that gzipped); a wrong guess costs one doubling."""
    return path.stat().st_size // (40 if path.suffix == ".gz" else 300) + 1024
