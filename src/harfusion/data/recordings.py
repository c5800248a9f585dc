"""A dataset's recordings, as its description says: which files under `data.raw_dir` they are,
and what one holds (timestamps, labels, named sensor values).

Recordings are exactly the files the description's pattern names, directly in `data.raw_dir`
or in its session folders: no deeper folder is searched (a `backup/Protocol/` copy would double
a subject), and any other entry there is skipped with a line saying why. One subject under two
names in a folder (`subject0101.dat` beside `subject101.dat`, or `.gz` beside the plain file) is
an error naming both; so is a lone name with leading zeros, since it claims to be a recording.

Reading is fast with pyarrow: one vectorised parse of a well-formed file. When pyarrow (or a
value check) rejects a file, a plain line scan finds the exact line and reason, so the user gets
`file:line: why`. A value outside its channel's physical bounds is such a reason: no sensor
produced it, and one would poison the normalisation statistics of its channel.
"""

from __future__ import annotations

import gzip
import math
import re
import sys
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from harfusion.data.description import Description, Files
from harfusion.errors import HarfusionError

MAX_SUBJECT_ID = 2**31 - 1  # shards store it as int32
BLOCK_BYTES = 8 << 20  # what `read_recording_blocks` parses at once: ~18,000 PAMAP2 rows
NO_SESSION = "main"  # the session of every recording of a dataset without session folders
# What pyarrow's float parser accepts, so the line scan agrees with the fast path.
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


@dataclass(frozen=True)
class Recording:
    path: Path
    subject: int
    session: str


@dataclass(frozen=True)
class RecordingData:
    """One recording: a row per sample, NaN where a channel sent nothing."""

    timestamps: np.ndarray  # float64 [rows], seconds on the recording's own clock
    labels: np.ndarray  # int64 [rows]
    values: np.ndarray  # float64 [rows, channels], column-major
    channels: tuple[str, ...]


def _skip(path: Path, why: str) -> None:
    print(f"preprocess: skipped {path}: {why}", file=sys.stderr)


def _file_names(files: Files, subject: int | str) -> list[str]:
    """The names one subject's recording may have: plain, or compressed."""
    name = files.name_of(subject)
    return [name, *(f"{name}.{suffix}" for suffix in files.compression)]


def _name_pattern(files: Files) -> tuple[re.Pattern, re.Pattern]:
    """A recording's file name as a regex (the subject id captured), and the same ignoring case
    (to say why `Subject101.DAT` is skipped)."""
    before, after = (re.escape(part) for part in files.file_name.split("{subject}"))
    suffixes = "".join(f"|\\.{re.escape(suffix)}" for suffix in files.compression)
    text = f"{before}(\\d+){after}(?:{suffixes})"
    return re.compile(text), re.compile(text, re.IGNORECASE)


def _folder_recordings(folder: Path, session: str, description: Description) -> list[Recording]:
    """The recordings directly in one folder; a subject named twice is an error."""
    exact, caseless = _name_pattern(description.files)
    by_subject: dict[int, list[Path]] = defaultdict(list)
    for path in sorted(folder.iterdir()):
        match = exact.fullmatch(path.name)
        if path.is_dir():
            where = "the session folder" if session != NO_SESSION else "data.raw_dir"
            _skip(path, f"a folder (only files directly in {where} are read)")
        elif not match:
            case = " (names are case-sensitive)" if caseless.fullmatch(path.name) else ""
            expected = " or ".join(_file_names(description.files, "<id>"))
            _skip(path, f"not named {expected}{case}")
        else:
            by_subject[int(match.group(1))].append(path)
    recordings = []
    for subject, paths in sorted(by_subject.items()):
        if len(paths) > 1:
            raise HarfusionError(
                f"{' and '.join(map(str, paths))}: subject {subject} twice in {folder}; keep one"
            )
        if paths[0].name not in _file_names(description.files, subject):
            canonical = description.files.name_of(subject)
            raise HarfusionError(f"{paths[0]}: rename it {canonical} (no leading zeros)")
        if subject > MAX_SUBJECT_ID:
            raise HarfusionError(
                f"{paths[0]}: subject id {subject} is too large (at most {MAX_SUBJECT_ID})"
            )
        recordings.append(Recording(paths[0], subject, session))
    return recordings


def find_recordings(
    raw_dir: str | Path, description: Description, sessions: list[str] | None = None
) -> list[Recording]:
    """Every recording directly in `raw_dir` (or in its folders of `sessions`, by default the
    described ones), by subject, then session in the order asked."""
    raw_dir = Path(raw_dir)
    described = description.files.sessions
    if described is None and sessions:
        raise HarfusionError(
            f"preprocess.sessions: {description.name} recordings have no session folders "
            f"({description.files.pattern}); leave sessions unset"
        )
    sessions = list(sessions or described or [NO_SESSION])
    if not raw_dir.is_dir():
        first, *others = (f"{session}/" for session in sessions)
        holds = first + (f" (and {', '.join(others)})" if others else "")
        if not described:
            holds = f"the {description.files.name_of('<id>')} files"
        raise HarfusionError(
            f"data.raw_dir: {raw_dir} is not a directory; point it at the folder that holds {holds}"
        )
    folders = {s: raw_dir / s for s in sessions} if described else {NO_SESSION: raw_dir}
    recordings = [
        recording
        for session, folder in folders.items()
        if folder.is_dir()
        for recording in _folder_recordings(folder, session, description)
    ]
    if not recordings:
        wanted = ", ".join(
            str(folder / description.files.name_of("<id>")) for folder in folders.values()
        )
        raise HarfusionError(f"data.raw_dir: no {description.name} recordings found ({wanted})")
    order = {session: i for i, session in enumerate(sessions)}
    return sorted(recordings, key=lambda r: (r.subject, order[r.session]))


def _csv_options(
    description: Description,
) -> tuple[pacsv.ReadOptions, pacsv.ParseOptions, pacsv.ConvertOptions]:
    text, columns = description.format, list(description.columns)
    # No null values for NaN: pyarrow parses NaN (any case, signed) as a float, so columns have
    # no validity bitmap and convert to NumPy without a copy. pyarrow's default 1 MB blocks:
    # larger ones halved the parse speed (fewer blocks in parallel).
    nulls = [] if text.missing.lstrip("+-").lower() == "nan" else [text.missing]
    return (
        pacsv.ReadOptions(column_names=columns, skip_rows=int(text.header)),
        pacsv.ParseOptions(delimiter=text.separator, quote_char=False, double_quote=False),
        pacsv.ConvertOptions(column_types=dict.fromkeys(columns, pa.float64()), null_values=nulls),
    )


def read_recording(path: str | Path, description: Description) -> RecordingData:
    """One recording file, checked: every row complete and numeric, labels known, values within
    their channels' bounds, timestamps present (or the implicit clock)."""
    path = Path(path)
    _check_not_empty(path)
    read, parse, convert = _csv_options(description)
    try:
        table = pacsv.read_csv(
            path, read_options=read, parse_options=parse, convert_options=convert
        )
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        raise _located_error(path, description, str(exc)) from None
    except OSError as exc:  # a damaged .gz stream
        raise HarfusionError(f"{path}: cannot read ({exc})") from None
    if table.num_rows == 0:
        raise HarfusionError(f"{path}: file has no data rows")
    data = _table_data(table, description, 0)
    if data is None:
        raise _located_error(path, description, "invalid values")
    return data


def read_recording_blocks(
    path: str | Path, description: Description, block_bytes: int = BLOCK_BYTES
) -> Iterator[RecordingData]:
    """The file as `read_recording` reads it, a block of whole lines at a time, so that memory
    follows the block, not the file (ten hours of PAMAP2 are 1.55 GB as float64). Each block is
    parsed by pyarrow's multi-threaded reader (its streaming reader is single-threaded) and
    checked as a whole file is; a bad line is named with its number in the file."""
    path = Path(path)
    _check_not_empty(path)
    read, parse, convert = _csv_options(description)
    read = pacsv.ReadOptions(column_names=read.column_names)  # the header is cut off here
    rows, first_line, rest = 0, 1, b""
    header = description.format.header
    try:
        with pa.input_stream(str(path), compression="detect") as stream:  # .gz by its name
            while True:
                data = stream.read(block_bytes)
                block, rest = _whole_lines(rest + data, final=not data)
                if header and block:
                    cut = block.find(b"\n") + 1 or len(block)
                    block, first_line, header = block[cut:], first_line + 1, False
                if block.strip():
                    lines = block.splitlines(keepends=True)
                    try:
                        table = pacsv.read_csv(
                            pa.BufferReader(block),
                            read_options=read,
                            parse_options=parse,
                            convert_options=convert,
                        )
                    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
                        raise _located_error(
                            path, description, str(exc), lines, first_line
                        ) from None
                    values = _table_data(table, description, rows)
                    if values is None:
                        raise _located_error(path, description, "invalid values", lines, first_line)
                    rows += len(values.labels)
                    yield values
                first_line += block.count(b"\n")
                if not data:
                    break
    except OSError as exc:  # a damaged .gz stream
        raise HarfusionError(f"{path}: cannot read ({exc})") from None
    if rows == 0:
        raise HarfusionError(f"{path}: file has no data rows")


def _whole_lines(data: bytes, final: bool) -> tuple[bytes, bytes]:
    """`data` cut after its last line end (all of it at the end of the file), and the rest."""
    if final:
        return data, b""
    cut = data.rfind(b"\n") + 1
    return data[:cut], data[cut:]


def _check_not_empty(path: Path) -> None:
    if path.stat().st_size == 0:
        raise HarfusionError(f"{path}: file is empty")


def _table_data(table: pa.Table, description: Description, first_row: int) -> RecordingData | None:
    """The parsed rows, `first_row` the number of the first in the file (the implicit clock
    counts from there); None where a value is invalid (the line scan says which)."""
    channels = description.channels
    # Column-major: preprocess hands whole columns to pyarrow's CSV writer without copies.
    values = np.empty((table.num_rows, len(channels)), dtype=np.float64, order="F")
    for index, name in enumerate(channels):
        _column(table, name, out=values[:, index])
    labels = _column(table, description.labels.column)
    clock = description.clock
    if clock.column is None:
        timestamps = (first_row + np.arange(table.num_rows)) / description.sampling_rate_hz
    else:
        timestamps = _column(table, clock.column)
    if not _values_ok(description, timestamps, labels, values):
        return None
    if clock.per_second != 1.0:
        timestamps = timestamps / clock.per_second
    return RecordingData(timestamps, labels.astype(np.int64), values, channels)


def _column(table: pa.Table, name: str, out: np.ndarray | None = None) -> np.ndarray:
    chunks = [chunk.to_numpy(zero_copy_only=False) for chunk in table.column(name).chunks]
    return np.concatenate(chunks, out=out)


def _values_ok(
    description: Description, timestamps: np.ndarray, labels: np.ndarray, values: np.ndarray
) -> bool:
    if np.isinf(values).any() or np.isinf(timestamps).any() or np.isinf(labels).any():
        return False
    if np.isnan(timestamps).any() or np.isnan(labels).any():
        return False
    known = np.array(sorted(description.labels.known), dtype=np.float64)
    if not np.isin(labels, known).all():
        return False
    bounds = description.bounds
    clock = description.clock.column
    if clock is not None:
        low, high, _ = bounds[clock]
        if ((timestamps < low) | (timestamps > high)).any():
            return False
    # Per column, so the column-major array is read in order; NaN compares false (in range).
    return not any(
        ((column < bounds[name][0]) | (column > bounds[name][1])).any()
        for column, name in zip(values.T, description.channels, strict=True)
    )


def _located_error(
    path: Path,
    description: Description,
    fallback: str,
    lines: list[bytes] | None = None,
    first_line: int = 1,
) -> HarfusionError:
    """Scan line by line (the file's, or a block's `lines` starting at line `first_line`) for
    the first problem; the fast parser's row numbers are not exact."""
    if lines is not None:
        return _first_problem(path, description, fallback, lines, first_line, skip=0)
    skip = 1 if description.format.header else 0
    with gzip.open(path) if path.suffix == ".gz" else path.open("rb") as handle:
        return _first_problem(path, description, fallback, handle, 1, skip)


def _first_problem(
    path: Path,
    description: Description,
    fallback: str,
    lines: Iterable[bytes],
    first_line: int,
    skip: int,
) -> HarfusionError:
    for number, raw in enumerate(lines, start=first_line):
        problem = None if number < first_line + skip else _line_problem(raw, description)
        if problem:
            return HarfusionError(f"{path}:{number}: {problem}")
    return HarfusionError(f"{path}: could not parse ({fallback})")


def _number(token: str, missing: str) -> float | str:
    """The value of one field as pyarrow reads it, or why it is none."""
    if token == missing or token.lstrip("+-").lower() == "nan":
        return math.nan
    if token.lstrip("+-").lower() in ("inf", "infinity"):
        return f"is infinite: {token!r}"
    if not _NUMBER.fullmatch(token):
        return f"is not a number: {token[:40]!r}"
    value = float(token)
    return f"overflows to infinity: {token[:40]!r}" if math.isinf(value) else value


def _line_problem(raw: bytes, description: Description) -> str | None:
    text = description.format
    try:
        line = raw.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError:
        return "not valid UTF-8 text"
    if not line:
        return None  # blank lines are skipped, as pyarrow does
    tokens = line.split(text.separator)
    columns = description.columns
    if len(tokens) != len(columns):
        return (
            f"expected {len(columns)} {text.separator_name}-separated fields, found {len(tokens)}"
        )
    numbers = []
    for column, token in zip(columns, tokens, strict=True):
        value = _number(token, text.missing)
        if isinstance(value, str):
            return f"field {column!r} {value}"
        numbers.append(value)
    row = dict(zip(columns, numbers, strict=True))
    clock, label = description.clock.column, description.labels.column
    if clock is not None and math.isnan(row[clock]):
        return "timestamp is missing"
    if math.isnan(row[label]) or row[label] not in description.labels.known:
        token = tokens[columns.index(label)]
        return f"unknown activity id {token!r} (known: {sorted(description.labels.known)})"
    for column, token, value in zip(columns, tokens, numbers, strict=True):
        if column == label:
            continue
        low, high, unit = description.bounds[column]
        if not low <= value <= high and not math.isnan(value):
            unit = f" {unit}" if unit else ""
            return f"{column}: {token[:40]}{unit} out of range [{low:g}, {high:g}]"
    return None
