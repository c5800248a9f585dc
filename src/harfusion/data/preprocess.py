"""Merge raw `.dat` recordings into per subject × activity CSV shards.

At most two subjects are in memory (one being written, the next being read), so peak memory
follows the largest subjects, not the data set.

Recordings are exactly `raw_dir/<session>/subject<id>.dat` (or `.dat.gz`) for the sessions in
`preprocess.sessions`: no deeper folder is searched (a `backup/Protocol/` copy would double a
subject), and any other entry there is skipped with a line saying why. A recording counted twice
stops preprocess naming both files: one id under two names in a session (`subject0101.dat`
beside `subject101.dat`; a lone non-canonical name is an error too, since it claims to be a
recording), or two files holding the same readings at the same instants (a copied file). Each
session file has its own clock (the synthetic set starts every session 3-10 s in), so
overlapping time ranges alone are normal; identical readings at the same instants are not.
"""

from __future__ import annotations

import io
import json
import re
import sys
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from itertools import chain, pairwise
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
from scipy.ndimage import median_filter
from tqdm import tqdm

from harfusion.atomic import atomic_path
from harfusion.data.dat_reader import read_dat
from harfusion.data.pamap2 import PROCESSED_COLUMNS, RAW_COLUMNS, RAW_FIELDS, TRANSIENT_ACTIVITY
from harfusion.errors import HarfusionError
from harfusion.layout import SHARD_INDEX
from harfusion.params import PreprocessParams
from harfusion.threads import usable_cores

_SUBJECT_FILE = re.compile(r"subject(\d+)\.dat(\.gz)?")
_FIRST_SENSOR = RAW_COLUMNS.index("hand_temperature_c")
_HR = RAW_COLUMNS.index("heart_rate_bpm")
_ACTIVITY = RAW_COLUMNS.index("activity_id")
MAX_SUBJECT_ID = 2**31 - 1  # shards store it as int32


@dataclass(frozen=True)
class Recording:
    path: Path
    subject: int
    session: str


def _skip(path: Path, why: str) -> None:
    print(f"preprocess: skipped {path}: {why}", file=sys.stderr)


def _session_recordings(folder: Path, session: str) -> list[Recording]:
    """The recordings directly in one session folder; a subject named twice is an error."""
    by_subject: dict[int, list[Path]] = defaultdict(list)
    for path in sorted(folder.iterdir()):
        match = _SUBJECT_FILE.fullmatch(path.name)
        if path.is_dir():
            _skip(path, "a folder (only files directly in the session folder are read)")
        elif not match:
            case = (
                " (names are case-sensitive)" if _SUBJECT_FILE.fullmatch(path.name.lower()) else ""
            )
            _skip(path, f"not named subject<id>.dat or subject<id>.dat.gz{case}")
        else:
            by_subject[int(match.group(1))].append(path)
    recordings = []
    for subject, paths in sorted(by_subject.items()):
        if len(paths) > 1:
            raise HarfusionError(
                f"{' and '.join(map(str, paths))}: subject {subject} twice in {folder}; keep one"
            )
        if paths[0].name.removesuffix(".gz") != f"subject{subject}.dat":
            raise HarfusionError(f"{paths[0]}: rename it subject{subject}.dat (no leading zeros)")
        if subject > MAX_SUBJECT_ID:
            raise HarfusionError(
                f"{paths[0]}: subject id {subject} is too large (at most {MAX_SUBJECT_ID})"
            )
        recordings.append(Recording(paths[0], subject, session))
    return recordings


def find_recordings(raw_dir: str | Path, sessions: list[str]) -> list[Recording]:
    """Every `<session>/subject<id>.dat[.gz]` directly under `raw_dir` for the sessions asked."""
    raw_dir = Path(raw_dir)
    if not raw_dir.is_dir():
        raise HarfusionError(
            f"data.raw_dir: {raw_dir} is not a directory; point it at the folder that holds "
            "Protocol/ (and Optional/)"
        )
    recordings = [
        recording
        for session in sessions
        if (raw_dir / session).is_dir()
        for recording in _session_recordings(raw_dir / session, session)
    ]
    if not recordings:
        wanted = ", ".join(f"{raw_dir}/{s}/*.dat" for s in sessions)
        raise HarfusionError(f"data.raw_dir: no .dat files found ({wanted})")
    order = {session: i for i, session in enumerate(sessions)}
    return sorted(recordings, key=lambda r: (r.subject, order[r.session]))


def fill_heart_rate(hr: np.ndarray, window: int) -> np.ndarray:
    """Forward-fill, back-fill, then a centred rolling median over `window` samples."""
    valid = ~np.isnan(hr)
    if not valid.any():
        return hr.copy()
    # in place where it can be: predict fills ten hours (3.6 M rows) at a time
    last_valid = np.where(valid, np.arange(hr.size), 0)
    np.maximum.accumulate(last_valid, out=last_valid)
    filled = hr[last_valid]
    del last_valid
    first = int(valid.argmax())
    filled[:first] = hr[first]
    if window > 1:  # a window beyond the recording medians the same rows (and costs memory)
        filled = median_filter(filled, size=min(window, hr.size), mode="nearest")
    return filled


def _csv_bytes(
    subject: int, sessions: pa.DictionaryArray, rows: np.ndarray, index: np.ndarray
) -> bytes:
    """The CSV of `rows[index]` (and their sessions), a column at a time."""
    columns: dict[str, pa.Array] = {
        "subject_id": pa.array(np.full(len(index), subject, dtype=np.int32)),
        "session": sessions.take(pa.array(index)),
        "timestamp_s": pa.array(rows[index, 0]),
        "activity_id": pa.array(rows[index, 1].astype(np.int32)),
    }
    for column, name in enumerate(RAW_COLUMNS[2:], start=2):
        columns[name] = pa.array(rows[index, column])
    buffer = io.BytesIO()
    pacsv.write_csv(pa.table(columns), buffer)
    return buffer.getvalue()


def _write_shard(
    out_dir: Path,
    subject: int,
    sessions: pa.DictionaryArray,
    rows: np.ndarray,
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


def _same_readings_at(first: np.ndarray, second: np.ndarray) -> float | None:
    """The first instant at which two recordings hold identical IMU readings, if any.

    Column by column over the shared timestamps, so independent recordings (whose clocks
    share instants but whose readings differ at once) cost one pass over one column.
    """
    common, i, j = np.intersect1d(first[:, 0], second[:, 0], return_indices=True)
    equal = np.ones(len(common), dtype=bool)
    for column in range(_FIRST_SENSOR, RAW_FIELDS):
        a, b = first[i[equal], column], second[j[equal], column]
        keep = (a == b) | (np.isnan(a) & np.isnan(b))
        equal[np.flatnonzero(equal)[~keep]] = False
        if not equal.any():
            return None
    # Rows where every IMU dropped out match trivially; they prove nothing.
    sensed = ~np.isnan(first[i, _FIRST_SENSOR:]).all(axis=1)
    found = np.flatnonzero(equal & sensed)
    return float(common[found[0]]) if len(found) else None


def _load_subject(
    recordings: list[Recording], sessions: list[str], hr_median_window: int
) -> tuple[np.ndarray, pa.DictionaryArray]:
    """A subject's rows, recordings concatenated (column-major, as `read_dat` returns them),
    heart rate filled per recording, and each row's session."""
    rows, session_codes = [], []
    for number, recording in enumerate(recordings):
        values = read_dat(recording.path)
        for earlier, earlier_values in zip(recordings[:number], rows, strict=True):
            instant = _same_readings_at(earlier_values, values)
            if instant is not None:
                raise HarfusionError(
                    f"{earlier.path} and {recording.path}: both hold subject "
                    f"{recording.subject}'s readings at {instant:g} s (one copied from the "
                    "other?); keep one"
                )
        values[:, _HR] = fill_heart_rate(values[:, _HR], hr_median_window)
        rows.append(values)
        code = sessions.index(recording.session)
        session_codes.append(np.full(len(values), code, dtype=np.int8))
    all_rows = rows[0] if len(rows) == 1 else np.concatenate(rows)
    return all_rows, pa.DictionaryArray.from_arrays(
        np.concatenate(session_codes), pa.array(sessions)
    )


def _activity_runs(rows: np.ndarray) -> dict[int, np.ndarray]:
    """Row indexes grouped by activity, recording order kept, transients left out: the writer
    gathers each column once, with no row-major copy of the subject."""
    activities = rows[:, _ACTIVITY].astype(int)
    labelled = np.flatnonzero(activities != TRANSIENT_ACTIVITY)
    order = labelled[np.argsort(activities[labelled], kind="stable")]
    found, starts = np.unique(activities[order], return_index=True)
    bounds = pairwise([*starts, len(order)])
    return {int(activity): order[a:b] for activity, (a, b) in zip(found, bounds, strict=True)}


def preprocess(raw_dir: str | Path, out_dir: str | Path, params: PreprocessParams) -> list[dict]:
    """Write the shards and `shards.json` (path, subject, activity, rows) into `out_dir`."""
    recordings = find_recordings(raw_dir, params.sessions)
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
        load = partial(
            _load_subject, sessions=params.sessions, hr_median_window=params.hr_median_window
        )
        loading = pool.submit(load, subjects[0][1])
        for position, (subject, _) in enumerate(tqdm(subjects, desc="preprocess", unit="subject")):
            rows, row_sessions = loading.result()
            if position + 1 < len(subjects):
                loading = pool.submit(load, subjects[position + 1][1])
            runs = _activity_runs(rows)
            if not runs:
                print(
                    f"preprocess: warning: subject {subject} has no labelled rows (activity 0 "
                    "only) and contributes nothing",
                    file=sys.stderr,
                )
            write = partial(_write_shard, tmp, subject, row_sessions, rows, params.max_shard_mb)
            shards += chain.from_iterable(pool.map(write, runs.keys(), runs.values()))
        if not shards:
            raise HarfusionError(f"data.raw_dir: {raw_dir} holds no rows with a non-zero activity")
        (tmp / SHARD_INDEX).write_text(json.dumps(shards, indent=1))
    return shards


def read_shard_csv(path: str | Path) -> pa.Table:
    """Read one processed shard, checking it has the 56-field aligned header."""
    path = Path(path)
    try:
        table = pacsv.read_csv(path)
    except (pa.ArrowInvalid, FileNotFoundError) as exc:
        raise HarfusionError(f"{path}: cannot read shard ({exc})") from None
    if tuple(table.column_names) != PROCESSED_COLUMNS:
        raise HarfusionError(f"{path}: header is not the {len(PROCESSED_COLUMNS)}-field layout")
    return table
