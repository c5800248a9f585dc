"""Merge a dataset's recordings into per subject × activity CSV shards.

At most two subjects are in memory (one being written, the next being read), so peak memory
follows the largest subjects, not the data set.

Which files are recordings, and how they read, is the dataset description's to say
(`recordings`). A recording counted twice stops preprocess naming both files: two files holding
the same readings at the same instants (a copied file). Each session file has its own clock (the
synthetic set starts every session 3-10 s in), so overlapping time ranges alone are normal;
identical readings at the same instants are not.

A shard's columns are `subject_id, session, timestamp_s, activity_id` (seconds on the
recording's clock, the label), then the description's channels in file order. The checked
description is written beside them (`dataset.json`): the later stages read it there.
"""

from __future__ import annotations

import io
import json
import sys
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from itertools import chain, pairwise
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
from scipy.ndimage import median_filter
from tqdm import tqdm

from harfusion.atomic import atomic_path
from harfusion.data.description import Description, write_dataset
from harfusion.data.recordings import (
    NO_SESSION,
    Recording,
    RecordingData,
    find_recordings,
    read_recording,
)
from harfusion.errors import HarfusionError
from harfusion.layout import SHARD_INDEX
from harfusion.params import PreprocessParams
from harfusion.threads import usable_cores


def fill_and_smooth(values: np.ndarray, fill: bool, window: int) -> np.ndarray:
    """One channel of a slow sensor on the full-rate rows: forward-fill, back-fill (`fill`),
    then a centred rolling median over `window` samples."""
    valid = ~np.isnan(values)
    if fill and not valid.any():
        return values.copy()
    filled = values
    if fill:
        # in place where it can be: predict fills ten hours (3.6 M rows) at a time
        last_valid = np.where(valid, np.arange(values.size), 0)
        np.maximum.accumulate(last_valid, out=last_valid)
        filled = values[last_valid]
        del last_valid
        first = int(valid.argmax())
        filled[:first] = values[first]
    if window > 1:  # a window beyond the recording medians the same rows (and costs memory)
        filled = median_filter(filled, size=min(window, values.size), mode="nearest")
    return filled if filled is not values else values.copy()


def apply_preprocessing(data: RecordingData, description: Description) -> None:
    """Each modality's `preprocess` on its channels of one recording, in place."""
    index = {name: i for i, name in enumerate(data.channels)}
    for modality, spec in description.modalities.items():
        steps = spec.preprocess
        if not steps.fill and steps.median_window == 1:
            continue
        for channel in description.modality_channels(modality):
            column = index[channel]
            data.values[:, column] = fill_and_smooth(
                data.values[:, column], steps.fill, steps.median_window
            )


def _csv_bytes(
    subject: int, sessions: pa.DictionaryArray, rows: RecordingData, index: np.ndarray
) -> bytes:
    """The CSV of `rows[index]` (and their sessions), a column at a time."""
    columns: dict[str, pa.Array] = {
        "subject_id": pa.array(np.full(len(index), subject, dtype=np.int32)),
        "session": sessions.take(pa.array(index)),
        "timestamp_s": pa.array(rows.timestamps[index]),
        "activity_id": pa.array(rows.labels[index].astype(np.int32)),
    }
    for column, name in enumerate(rows.channels):
        columns[name] = pa.array(rows.values[index, column])
    buffer = io.BytesIO()
    pacsv.write_csv(pa.table(columns), buffer)
    return buffer.getvalue()


def _write_shard(
    out_dir: Path,
    subject: int,
    sessions: pa.DictionaryArray,
    rows: RecordingData,
    max_mb: float,
    activity: int,
    index: np.ndarray,
) -> list[dict]:
    """Write one subject × activity shard (`rows[index]`), in numbered parts if over `max_mb`."""
    data = _csv_bytes(subject, sessions, rows, index)
    # At most one part per row: a part of no rows has no activity or subject to read back.
    parts = min(len(index), max(1, int(np.ceil(len(data) / (max_mb * 1e6)))))
    folder = out_dir / f"subject_{subject}"
    folder.mkdir(parents=True, exist_ok=True)
    entries = []
    bounds = np.linspace(0, len(index), parts + 1).astype(int)
    # Byte offset where each line starts: a part is the header plus a run of whole lines.
    line_starts = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == ord("\n")) + 1
    header = data[: line_starts[0]]
    for part, (start, stop) in enumerate(pairwise(bounds)):
        name = f"activity_{activity}.csv" if parts == 1 else f"activity_{activity}_part{part}.csv"
        chunk = data if parts == 1 else header + data[line_starts[start] : line_starts[stop]]
        (folder / name).write_bytes(chunk)
        entries.append(
            {
                "path": f"subject_{subject}/{name}",
                "subject": subject,
                "activity": activity,
                "rows": int(stop - start),
            }
        )
    return entries


def _same_readings_at(
    first: RecordingData, second: RecordingData, compared: list[int]
) -> float | None:
    """The first instant at which two recordings hold identical readings in the `compared`
    channels (those no preprocessing fills), if any.

    Column by column over the shared timestamps, so independent recordings (whose clocks
    share instants but whose readings differ at once) cost one pass over one column.
    """
    common, i, j = np.intersect1d(first.timestamps, second.timestamps, return_indices=True)
    equal = np.ones(len(common), dtype=bool)
    for column in compared:
        a, b = first.values[i[equal], column], second.values[j[equal], column]
        keep = (a == b) | (np.isnan(a) & np.isnan(b))
        equal[np.flatnonzero(equal)[~keep]] = False
        if not equal.any():
            return None
    # Rows where every sensor dropped out match trivially; they prove nothing.
    sensed = ~np.isnan(first.values[i][:, compared]).all(axis=1)
    found = np.flatnonzero(equal & sensed)
    return float(common[found[0]]) if len(found) else None


def _compared_channels(description: Description) -> list[int]:
    """Positions of the channels of modalities preprocess leaves as read (a filled slow sensor
    repeats its readings, which proves nothing); all channels if it fills every modality."""
    filled = {
        channel
        for modality, spec in description.modalities.items()
        if spec.preprocess.fill
        for channel in description.modality_channels(modality)
    }
    kept = [i for i, name in enumerate(description.channels) if name not in filled]
    return kept or list(range(len(description.channels)))


def _load_subject(
    recordings: list[Recording], sessions: list[str], description: Description
) -> tuple[RecordingData, pa.DictionaryArray]:
    """A subject's rows, recordings concatenated (values column-major, as `read_recording`
    returns them), preprocessed per recording, and each row's session."""
    rows: list[RecordingData] = []
    session_codes = []
    compared = _compared_channels(description)
    for number, recording in enumerate(recordings):
        data = read_recording(recording.path, description)
        for earlier, earlier_data in zip(recordings[:number], rows, strict=True):
            instant = _same_readings_at(earlier_data, data, compared)
            if instant is not None:
                raise HarfusionError(
                    f"{earlier.path} and {recording.path}: both hold subject "
                    f"{recording.subject}'s readings at {instant:g} s (one copied from the "
                    "other?); keep one"
                )
        apply_preprocessing(data, description)
        rows.append(data)
        code = sessions.index(recording.session)
        session_codes.append(np.full(len(data.labels), code, dtype=np.int8))
    merged = rows[0]
    if len(rows) > 1:
        merged = RecordingData(
            np.concatenate([r.timestamps for r in rows]),
            np.concatenate([r.labels for r in rows]),
            np.asfortranarray(np.concatenate([r.values for r in rows])),
            merged.channels,
        )
    return merged, pa.DictionaryArray.from_arrays(np.concatenate(session_codes), pa.array(sessions))


def _activity_runs(labels: np.ndarray, ignore: frozenset[int]) -> dict[int, np.ndarray]:
    """Row indexes grouped by activity, recording order kept, ignored labels (transients, the
    null class) left out: the writer gathers each column once, with no row-major copy of the
    subject."""
    labelled = np.flatnonzero(~np.isin(labels, list(ignore)))
    order = labelled[np.argsort(labels[labelled], kind="stable")]
    found, starts = np.unique(labels[order], return_index=True)
    bounds = pairwise([*starts, len(order)])
    return {int(activity): order[a:b] for activity, (a, b) in zip(found, bounds, strict=True)}


def preprocess(
    raw_dir: str | Path, out_dir: str | Path, params: PreprocessParams, description: Description
) -> list[dict]:
    """Write the shards, `shards.json` (path, subject, activity, rows) and `dataset.json` (the
    description) into `out_dir`."""
    recordings = find_recordings(raw_dir, description, params.sessions)
    sessions = list(params.sessions or description.files.sessions or [NO_SESSION])
    ignore = frozenset(description.labels.ignore)
    by_subject: dict[int, list[Recording]] = defaultdict(list)
    for recording in recordings:
        by_subject[recording.subject].append(recording)
    shards: list[dict] = []
    # pyarrow parses, formats and writes with the GIL released, so threads overlap: a subject's
    # shards are written one per thread while the next subject is read. On two cores this took
    # a PAMAP2-scale set from 36 s to about 21 s (benchmarks/preprocess_speed.py).
    with atomic_path(out_dir) as tmp, ThreadPoolExecutor(usable_cores()) as pool:
        tmp.mkdir()
        subjects = sorted(by_subject.items())
        load = partial(_load_subject, sessions=sessions, description=description)
        loading = pool.submit(load, subjects[0][1])
        for position, (subject, _) in enumerate(tqdm(subjects, desc="preprocess", unit="subject")):
            rows, row_sessions = loading.result()
            if position + 1 < len(subjects):
                loading = pool.submit(load, subjects[position + 1][1])
            runs = _activity_runs(rows.labels, ignore)
            if not runs:
                ignored = ", ".join(f"{i} {name}" for i, name in description.labels.ignore.items())
                print(
                    f"preprocess: warning: subject {subject} has no labelled rows ({ignored} "
                    "only) and contributes nothing",
                    file=sys.stderr,
                )
            write = partial(_write_shard, tmp, subject, row_sessions, rows, params.max_shard_mb)
            shards += chain.from_iterable(pool.map(write, runs.keys(), runs.values()))
        if not shards:
            raise HarfusionError(
                f"data.raw_dir: {raw_dir} holds no rows of an activity (only "
                f"{', '.join(description.labels.ignore.values()) or 'none'})"
            )
        (tmp / SHARD_INDEX).write_text(json.dumps(shards, indent=1))
        write_dataset(description, tmp)
    return shards


def read_shard_csv(path: str | Path, description: Description) -> pa.Table:
    """Read one processed shard, checking its header is the description's processed columns."""
    path = Path(path)
    try:
        table = pacsv.read_csv(path)
    except (pa.ArrowInvalid, FileNotFoundError) as exc:
        raise HarfusionError(f"{path}: cannot read shard ({exc})") from None
    expected = description.processed_columns
    if tuple(table.column_names) != expected:
        raise HarfusionError(
            f"{path}: header is not the {len(expected)}-field layout of {description.name} "
            f"({', '.join(expected[:6])}, ...)"
        )
    return table
