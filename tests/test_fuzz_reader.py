"""Property-based: the `.dat` reader parses a file exactly or names the first bad line."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harfusion.errors import HarfusionError
from tests.helpers import PAMAP2, read_dat

RAW_COLUMNS = PAMAP2.columns
RAW_FIELDS = len(RAW_COLUMNS)
ACTIVITY_NAMES = PAMAP2.labels.known
# The label's bounds are its known ids; every other column's from the description.
FIELD_BOUNDS = PAMAP2.bounds | {"activity_id": (0.0, 24.0, "")}

# Every spelling pyarrow's float parser reads as NaN; the line scan must agree with it.
NAN_SPELLINGS = ["NaN", "nan", "NAN", "-nan", "+NaN"]
GARBAGE = ["abc", "1.2.3", "--1", "NaNx", "0x1F", "1e999", "-1e400", "inf", "-Infinity", "1,5", "é"]
MIDDLE = np.array([(FIELD_BOUNDS[c][0] + FIELD_BOUNDS[c][1]) / 2 for c in RAW_COLUMNS])
HALF = np.array([(FIELD_BOUNDS[c][1] - FIELD_BOUNDS[c][0]) / 2 for c in RAW_COLUMNS])


@st.composite
def valid_row(draw) -> tuple[list[str], list[float]]:
    """One well-formed row; the sensor values come from a drawn seed (fast) at mixed scales,
    anywhere inside their fields' physical bounds (the edges included)."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    spread = rng.uniform(-1, 1, RAW_FIELDS) * 10.0 ** -rng.integers(0, 9, RAW_FIELDS)
    spread[rng.random(RAW_FIELDS) < 0.05] = rng.choice([-1.0, 1.0])
    values = MIDDLE + HALF * spread
    values[rng.random(RAW_FIELDS) < 0.2] = np.nan
    values[0] = draw(st.floats(0, 1e5, allow_nan=False))
    values[1] = draw(st.sampled_from(sorted(ACTIVITY_NAMES)))
    nan = draw(st.sampled_from(NAN_SPELLINGS))
    tokens = [f"{v:.6g}" if not np.isnan(v) else nan for v in values]
    return tokens, [float(t) for t in tokens]  # Python reads every spelling as NaN too


@st.composite
def mutated_row(draw) -> bytes:
    tokens, _ = draw(valid_row())
    kinds = ["drop", "extra", "garbage", "bad-activity", "out-of-range", "bytes"]
    kind = draw(st.sampled_from(kinds))
    if kind == "drop":
        del tokens[draw(st.integers(0, RAW_FIELDS - 1))]
    elif kind == "extra":
        tokens.insert(draw(st.integers(0, RAW_FIELDS)), "1.0")
    elif kind == "garbage":
        tokens[draw(st.integers(0, RAW_FIELDS - 1))] = draw(st.sampled_from(GARBAGE))
    elif kind == "bad-activity":
        tokens[1] = draw(st.sampled_from(["8", "25", "-1", "4.5", "NaN"]))
    elif kind == "out-of-range":  # a number, but one no sensor of that field can produce
        column = draw(st.sampled_from([0, *range(2, RAW_FIELDS)]))
        low, high, _ = FIELD_BOUNDS[RAW_COLUMNS[column]]
        beyond = draw(st.sampled_from([1e-6, 1.0, 1e3, 1e300]))
        tokens[column] = f"{high + beyond * max(1.0, abs(high)):.9g}"
        if draw(st.booleans()):
            tokens[column] = f"{low - beyond * max(1.0, abs(low)):.9g}"
    else:
        return " ".join(tokens).encode() + draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\x00"]))
    return " ".join(tokens).encode()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=st.lists(valid_row(), min_size=1, max_size=8),
    bad=st.one_of(st.none(), mutated_row()),
    bad_at=st.integers(0, 8),
    blank_at=st.one_of(st.none(), st.integers(0, 8)),
    crlf=st.booleans(),
)
def test_reader_parses_exactly_or_names_the_line(rows, bad, bad_at, blank_at, crlf) -> None:
    lines = [" ".join(tokens).encode() for tokens, _ in rows]
    expected = [values for _, values in rows]
    if blank_at is not None:
        lines.insert(min(blank_at, len(lines)), b"")
    bad_line = None
    if bad is not None:
        position = min(bad_at, len(lines))
        lines.insert(position, bad)
        bad_line = position + 1
    ending = b"\r\n" if crlf else b"\n"
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "subject101.dat"
        path.write_bytes(ending.join(lines) + ending)
        try:
            values = read_dat(path)
        except HarfusionError as error:
            assert bad_line is not None, f"valid file rejected: {error}"
            assert f"{path}:{bad_line}:" in str(error)
            return
    assert bad_line is None, "a mutated row was accepted"
    np.testing.assert_array_equal(values, np.array(expected))
