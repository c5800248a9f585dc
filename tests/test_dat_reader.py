from pathlib import Path

import numpy as np
import pytest

from harfusion.dat_reader import read_dat
from harfusion.errors import HarfusionError
from tests.conftest import write_recording


def test_real_excerpt_parses(excerpt: Path) -> None:
    values = read_dat(excerpt)
    assert values.shape == (120, 54)
    assert set(values[:, 1]) == {12.0}
    assert np.isnan(values[:, 2]).mean() > 0.8  # heart rate is sparse
    assert values[0, 0] == pytest.approx(1681.34)
    assert values[0, 3] == pytest.approx(35.0625)


def _corrupt(tmp_path: Path, line_number: int, replace) -> Path:
    path = write_recording(tmp_path / "Protocol" / "subject101.dat", [(1, 30)])
    lines = path.read_text().splitlines()
    lines[line_number - 1] = replace(lines[line_number - 1])
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda line: line.rsplit(" ", 1)[0], "found 53"),
        (lambda line: line + " 1.0", "found 55"),
        (lambda line: line.replace(" ", " abc ", 1).rsplit(" ", 1)[0], "not a number: 'abc'"),
        (
            lambda line: line.split(" ", 2)[0] + " 8 " + line.split(" ", 2)[2],
            "unknown activity id '8'",
        ),
        (lambda line: line.rsplit(" ", 1)[0] + " inf", "infinite"),
    ],
    ids=["53-fields", "55-fields", "non-numeric", "unknown-activity", "inf"],
)
def test_bad_row_names_file_and_line(tmp_path: Path, mutate, reason: str) -> None:
    path = _corrupt(tmp_path, 17, mutate)
    with pytest.raises(HarfusionError, match=reason) as info:
        read_dat(path)
    assert f"{path}:17:" in str(info.value)


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "subject101.dat"
    path.write_text("")
    with pytest.raises(HarfusionError, match="empty"):
        read_dat(path)


def test_crlf_and_blank_lines_parse(tmp_path: Path) -> None:
    path = write_recording(tmp_path / "subject101.dat", [(4, 20)])
    clean = read_dat(path)
    path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n") + b"\r\n")
    assert np.array_equal(read_dat(path), clean, equal_nan=True)
