import gzip
from pathlib import Path

import numpy as np
import pytest

from harfusion.errors import HarfusionError
from tests.helpers import read_dat, write_recording


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


@pytest.mark.parametrize(
    ("column", "token", "reason"),
    [
        (3 + 1, "1e300", "hand_acc16_x: 1e300 m/s² out of range [-200, 200]"),
        (2, "-70", "heart_rate_bpm: -70 bpm out of range [20, 300]"),
        (3 + 17 + 7, "3.4e39", "chest_gyro_x: 3.4e39 rad/s out of range [-100, 100]"),
        (3 + 34 + 13, "1.5", "ankle_orient_w: 1.5 out of range [-1.01, 1.01]"),
        (0, "-5", "timestamp_s: -5 s out of range [0, 1e+10]"),
    ],
    ids=["acc-1e300", "negative-bpm", "beyond-float32", "quaternion", "negative-time"],
)
def test_value_no_sensor_produces_names_file_line_and_bounds(
    tmp_path: Path, column: int, token: str, reason: str
) -> None:
    """Before the bounds, a 1e300 parsed, and blanked its channel through the norm std."""

    def replace(line: str) -> str:
        tokens = line.split(" ")
        tokens[column] = token
        return " ".join(tokens)

    path = _corrupt(tmp_path, 9, replace)
    with pytest.raises(HarfusionError) as info:
        read_dat(path)
    assert str(info.value) == f"{path}:9: {reason}"


def test_real_recordings_lie_within_the_bounds(excerpt: Path) -> None:
    """The bounds accept every real row we have: the excerpt and the seven pamap2_dev subjects."""
    recordings = sorted((excerpt.parents[1] / "pamap2_dev" / "Protocol").glob("*.dat"))
    if not recordings:
        pytest.skip("../shared/pamap2_dev is not beside this checkout")
    for path in [excerpt, *recordings]:
        assert read_dat(path).shape[1] == 54


def test_gzip_reads_like_the_plain_file(tmp_path: Path) -> None:
    path = write_recording(tmp_path / "subject101.dat", [(4, 50)])
    packed = tmp_path / "subject102.dat.gz"
    packed.write_bytes(gzip.compress(path.read_bytes()))
    assert np.array_equal(read_dat(packed), read_dat(path), equal_nan=True)
    lines = path.read_text().splitlines()
    lines[4] = lines[4].replace(" ", " x", 1)
    packed.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    with pytest.raises(HarfusionError, match=rf"{packed}:5: field 'activity_id' is not a number"):
        read_dat(packed)
