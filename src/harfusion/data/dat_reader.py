"""Read raw PAMAP2 `.dat` files: fast with pyarrow, precise about the first bad line.

pyarrow parses a well-formed file in one vectorised pass; when it (or a value check) rejects a
file, a plain line scan finds the exact line and reason, so the user gets `file:line: why`.
A value outside its field's physical bounds (`pamap2.FIELD_BOUNDS`) is such a reason: no sensor
produced it, and one of them would poison the normalisation statistics of its channel.
`subject<id>.dat.gz` is read the same way (pyarrow and the line scan both decompress it).
`read_dat_blocks` reads a long recording a block at a time with the same checks.
"""

from __future__ import annotations

import gzip
import math
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from harfusion.data.pamap2 import ACTIVITY_NAMES, FIELD_BOUNDS, RAW_COLUMNS, RAW_FIELDS
from harfusion.errors import HarfusionError

# What pyarrow's float parser accepts, so the line scan agrees with the fast path.
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
# pyarrow's default 1 MB blocks: larger ones halved the parse speed (fewer blocks in parallel).
_READ = pacsv.ReadOptions(column_names=list(RAW_COLUMNS))
_PARSE = pacsv.ParseOptions(delimiter=" ", quote_char=False, double_quote=False)
# No null values: pyarrow parses NaN (any case, signed) as a float, so columns have no validity
# bitmap and convert to NumPy without a copy.
_CONVERT = pacsv.ConvertOptions(
    column_types=dict.fromkeys(RAW_COLUMNS, pa.float64()), null_values=[]
)
BLOCK_BYTES = 8 << 20  # what `read_dat_blocks` parses at once: ~18,000 rows
_LOW = np.array([FIELD_BOUNDS[c][0] for c in RAW_COLUMNS])
_HIGH = np.array([FIELD_BOUNDS[c][1] for c in RAW_COLUMNS])


def read_dat(path: str | Path) -> np.ndarray:
    """Return the file as a float64 array [rows, 54] (column-major) with NaN for missing values."""
    path = Path(path)
    _check_not_empty(path)
    try:
        table = pacsv.read_csv(
            path, read_options=_READ, parse_options=_PARSE, convert_options=_CONVERT
        )
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        raise _located_error(path, str(exc)) from None
    except OSError as exc:  # a damaged .gz stream
        raise HarfusionError(f"{path}: cannot read ({exc})") from None
    if table.num_rows == 0:
        raise HarfusionError(f"{path}: file has no data rows")
    values = _column_major(table)
    if not _values_ok(values):
        raise _located_error(path, "invalid values")
    return values


def read_dat_blocks(path: str | Path, block_bytes: int = BLOCK_BYTES) -> Iterator[np.ndarray]:
    """The file as `read_dat` reads it, a block of whole lines at a time (float64 [rows, 54]
    each, column-major), so that memory follows the block, not the file: ten hours at 100 Hz
    are 1.55 GB as float64. Each block is parsed by pyarrow's multi-threaded reader (its
    streaming reader is single-threaded) and checked as a whole file is; a bad line is named
    with its number in the file."""
    path = Path(path)
    _check_not_empty(path)
    rows, first_line, rest = 0, 1, b""
    try:
        with pa.input_stream(str(path), compression="detect") as stream:  # .gz by its name
            while True:
                data = stream.read(block_bytes)
                block, rest = _whole_lines(rest + data, final=not data)
                if block.strip():
                    values = _parse_block(path, block, first_line)
                    rows += len(values)
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


def _parse_block(path: Path, block: bytes, first_line: int) -> np.ndarray:
    try:
        table = pacsv.read_csv(
            pa.BufferReader(block),
            read_options=_READ,
            parse_options=_PARSE,
            convert_options=_CONVERT,
        )
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        raise _located_error(path, str(exc), block.splitlines(keepends=True), first_line) from None
    values = _column_major(table)
    if not _values_ok(values):
        lines = block.splitlines(keepends=True)
        raise _located_error(path, "invalid values", lines, first_line)
    return values


def _check_not_empty(path: Path) -> None:
    if path.stat().st_size == 0:
        raise HarfusionError(f"{path}: file is empty")


def _column_major(table: pa.Table) -> np.ndarray:
    """Column-major: preprocess hands whole columns to pyarrow's CSV writer without copies."""
    values = np.empty((table.num_rows, table.num_columns), dtype=np.float64, order="F")
    for index, column in enumerate(table.columns):
        np.concatenate([chunk.to_numpy() for chunk in column.chunks], out=values[:, index])
    return values


def _values_ok(values: np.ndarray) -> bool:
    if np.isinf(values).any():
        return False
    timestamps, activities = values[:, 0], values[:, 1]
    if np.isnan(timestamps).any() or np.isnan(activities).any():
        return False
    known = np.array(sorted(ACTIVITY_NAMES), dtype=np.float64)
    if not np.isin(activities, known).all():
        return False
    # Per column, so the column-major array is read in order; NaN compares false (in range).
    return not any(
        ((column < low) | (column > high)).any()
        for column, low, high in zip(values.T, _LOW, _HIGH, strict=True)
    )


def _located_error(
    path: Path, fallback: str, lines: Iterable[bytes] | None = None, first_line: int = 1
) -> HarfusionError:
    """Scan line by line (`lines`, numbered from `first_line`, or the whole file) for the first
    problem; the fast parser's row numbers are not exact."""
    if lines is None:
        with gzip.open(path) if path.suffix == ".gz" else path.open("rb") as handle:
            return _located_error(path, fallback, handle)
    for number, raw in enumerate(lines, start=first_line):
        problem = _line_problem(raw)
        if problem:
            return HarfusionError(f"{path}:{number}: {problem}")
    return HarfusionError(f"{path}: could not parse ({fallback})")


def _line_problem(raw: bytes) -> str | None:
    try:
        line = raw.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError:
        return "not valid UTF-8 text"
    if not line:
        return None  # blank lines are skipped, as pyarrow does
    tokens = line.split(" ")
    if len(tokens) != RAW_FIELDS:
        return f"expected {RAW_FIELDS} space-separated fields, found {len(tokens)}"
    numbers = []
    for column, token in zip(RAW_COLUMNS, tokens, strict=True):
        if token.lstrip("+-").lower() == "nan":  # as pyarrow's float parser reads it
            numbers.append(math.nan)
            continue
        if token.lstrip("+-").lower() in ("inf", "infinity"):
            return f"field {column!r} is infinite: {token!r}"
        if not _NUMBER.fullmatch(token):
            return f"field {column!r} is not a number: {token[:40]!r}"
        value = float(token)
        if math.isinf(value):
            return f"field {column!r} overflows to infinity: {token[:40]!r}"
        numbers.append(value)
    if math.isnan(numbers[0]):
        return "timestamp is missing"
    activity = numbers[1]
    if math.isnan(activity) or activity not in ACTIVITY_NAMES:
        return f"unknown activity id {tokens[1]!r} (known: {sorted(ACTIVITY_NAMES)})"
    for column, token, value in zip(RAW_COLUMNS, tokens, numbers, strict=True):
        low, high, unit = FIELD_BOUNDS[column]
        if not low <= value <= high and not math.isnan(value):
            unit = f" {unit}" if unit else ""
            return f"{column}: {token[:40]}{unit} out of range [{low:g}, {high:g}]"
    return None
