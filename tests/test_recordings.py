"""Finding and reading recordings as a description says: PAMAP2 exactly as before and
today's `find_recordings` do, MHEALTH's layout, and a user's CSV format (header, commas,
empty fields, a millisecond clock)."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from harfusion.data.description import load_description
from harfusion.data.recordings import NO_SESSION, find_recordings, read_recording
from harfusion.errors import HarfusionError
from tests.datasets import docs_example, write_mhealth_log
from tests.helpers import write_recording

PAMAP2 = load_description("pamap2")
MHEALTH = load_description("mhealth")


def test_mhealth_layout_reads_with_the_implicit_clock(tmp_path: Path) -> None:
    path = write_mhealth_log(tmp_path / "mHealth_subject1.log", [(0, 30), (4, 100), (12, 20)])
    data = read_recording(path, MHEALTH)
    written = np.loadtxt(path, delimiter="\t")
    assert written.shape == (150, 24)
    assert np.array_equal(data.timestamps, np.arange(150) / 50.0)
    assert np.array_equal(data.labels, written[:, 23].astype(int))
    assert data.channels == MHEALTH.channels and len(data.channels) == 23
    assert np.array_equal(data.values, written[:, :23])
    packed = tmp_path / "mHealth_subject2.log.gz"
    packed.write_bytes(gzip.compress(path.read_bytes()))
    assert np.array_equal(read_recording(packed, MHEALTH).values, data.values)


def _damaged(tmp_path: Path, line: int, edit) -> Path:
    path = write_mhealth_log(tmp_path / "mHealth_subject1.log", [(1, 12)])
    lines = path.read_text().splitlines()
    lines[line - 1] = edit(lines[line - 1].split("\t"))
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        (lambda t: "\t".join(t[:-1]), "expected 24 tab-separated fields, found 23"),
        (lambda t: " ".join(t), "expected 24 tab-separated fields, found 1"),
        (lambda t: "\t".join([*t[:-1], "13"]), "unknown activity id '13' (known: [0, 1, 2, "),
        (lambda t: "\t".join(["1e300", *t[1:]]), "chest_acc_x: 1e300 m/s² out of range [-200,"),
        (lambda t: "\t".join([*t[:3], "x", *t[4:]]), "field 'ecg_lead1' is not a number: 'x'"),
        (lambda t: "\t".join([*t[:9], "-inf", *t[10:]]), "field 'ankle_gyro_y' is infinite"),
    ],
    ids=["23-fields", "spaces", "unknown-label", "out-of-bounds", "not-a-number", "inf"],
)
def test_a_bad_mhealth_line_is_named(tmp_path: Path, edit, reason: str) -> None:
    path = _damaged(tmp_path, 7, edit)
    with pytest.raises(HarfusionError) as info:
        read_recording(path, MHEALTH)
    assert str(info.value).startswith(f"{path}:7: {reason}")


def test_empty_and_header_only_files(tmp_path: Path) -> None:
    empty = tmp_path / "mHealth_subject1.log"
    empty.write_text("")
    with pytest.raises(HarfusionError, match=r"file is empty"):
        read_recording(empty, MHEALTH)
    example = tmp_path / "mine.yaml"
    example.write_text(docs_example())
    mine = load_description(example)
    header = tmp_path / "participant1.csv"
    header.write_text("time_ms,ax,ay,az,gx,gy,gz,hr,activity\n")
    with pytest.raises(HarfusionError, match=r"no data rows"):
        read_recording(header, mine)


def test_a_users_csv_format(tmp_path: Path) -> None:
    """The documented example: a header line skipped, commas, empty fields missing, a
    millisecond clock turned into seconds; a bad line is numbered counting the header."""
    example = tmp_path / "wrist_study.yaml"
    example.write_text(docs_example())
    mine = load_description(example)
    path = tmp_path / "lab" / "participant7.csv"
    path.parent.mkdir()
    rows = [
        "time_ms,ax,ay,az,gx,gy,gz,hr,activity",
        "1000,0.1,0.2,1.0,5,6,7,,1",
        "1031.25,0.1,0.2,1.0,5,6,7,71,1",
        "1062.5,-0.1,0.3,0.9,-5,6,7,,0",
    ]
    path.write_text("\n".join(rows) + "\n")
    data = read_recording(path, mine)
    assert np.array_equal(data.timestamps, [1.0, 1.03125, 1.0625])
    assert data.labels.tolist() == [1, 1, 0]
    assert data.channels[-1] == "hr_bpm"
    assert np.isnan(data.values[[0, 2], -1]).all() and data.values[1, -1] == 71
    path.write_text("\n".join([*rows, "1093.75,0.1,0.2,40,5,6,7,,1"]) + "\n")
    with pytest.raises(HarfusionError, match=rf"^{path}:5: wrist_acc_z: 40 g out of range"):
        read_recording(path, mine)
    assert find_recordings(tmp_path, mine)[0].session == "lab"


def _as_tuples(recordings) -> list[tuple[Path, int, str]]:
    return [(r.path, r.subject, r.session) for r in recordings]


def test_pamap2_recordings_are_found_as_today(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Session folders only, `.gz` read, other names and folders skipped with today's words."""
    raw = tmp_path / "raw"
    write_recording(raw / "Protocol" / "subject101.dat", [(1, 5)])
    write_recording(raw / "Protocol" / "subject103.dat", [(1, 5)])
    write_recording(raw / "backup" / "Protocol" / "subject101.dat", [(1, 5)])
    write_recording(raw / "Protocol" / "old" / "subject101.dat", [(1, 5)])
    write_recording(raw / "Protocol" / "subject104.DAT", [(1, 5)])
    (raw / "Protocol" / "README").write_text("notes\n")
    packed = write_recording(tmp_path / "subject102.dat", [(4, 5)])
    (raw / "Optional").mkdir()
    (raw / "Optional" / "subject102.dat.gz").write_bytes(gzip.compress(packed.read_bytes()))
    (raw / "Optional" / "subject101.dat").write_bytes(packed.read_bytes())
    found = find_recordings(raw, PAMAP2)
    ours = capsys.readouterr().err
    assert "skipped" in ours and "subject104.DAT" in ours and "case-sensitive" in ours
    assert _as_tuples(found) == [
        (raw / "Protocol" / "subject101.dat", 101, "Protocol"),
        (raw / "Optional" / "subject101.dat", 101, "Optional"),
        (raw / "Optional" / "subject102.dat.gz", 102, "Optional"),
        (raw / "Protocol" / "subject103.dat", 103, "Protocol"),
    ]
    assert (
        f"preprocess: skipped {raw / 'Protocol' / 'README'}: not named subject<id>.dat or " in ours
    )
    assert "(names are case-sensitive)" in ours and "backup" not in ours
    assert (
        f"skipped {raw / 'Protocol' / 'old'}: a folder (only files directly in the session" in ours
    )
    assert _as_tuples(find_recordings(raw, PAMAP2, ["Optional"]))[0][2] == "Optional"


@pytest.mark.parametrize("other", ["subject0101.dat", "subject101.dat.gz"])
def test_one_pamap2_subject_under_two_names(tmp_path: Path, other: str) -> None:
    raw = tmp_path / "raw"
    names = sorted(
        [write_recording(raw / "Protocol" / name, [(1, 5)]) for name in ("subject101.dat", other)]
    )
    with pytest.raises(HarfusionError) as info:
        find_recordings(raw, PAMAP2)
    assert str(info.value) == (
        f"{names[0]} and {names[1]}: subject 101 twice in {raw / 'Protocol'}; keep one"
    )


def test_pamap2_folder_errors(tmp_path: Path) -> None:
    lone = write_recording(tmp_path / "raw" / "Protocol" / "subject0102.dat", [(1, 5)])
    with pytest.raises(HarfusionError, match=rf"^{lone}: rename it subject102\.dat \(no leading"):
        find_recordings(tmp_path / "raw", PAMAP2)
    lone.unlink()
    with pytest.raises(HarfusionError) as info:
        find_recordings(tmp_path / "raw", PAMAP2)
    assert str(info.value) == (
        f"data.raw_dir: no PAMAP2 recordings found ({tmp_path}/raw/Protocol/subject<id>.dat, "
        f"{tmp_path}/raw/Optional/subject<id>.dat)"
    )
    with pytest.raises(HarfusionError) as info:
        find_recordings(tmp_path / "nowhere", PAMAP2)
    assert str(info.value) == (
        f"data.raw_dir: {tmp_path / 'nowhere'} is not a directory; point it at the folder that "
        "holds Protocol/ (and Optional/)"
    )


def test_mhealth_recordings_are_found(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The published folder holds the logs and a README: the logs directly in it, one session."""
    raw = tmp_path / "MHEALTHDATASET"
    first = write_mhealth_log(raw / "mHealth_subject1.log", [(1, 5)])
    write_mhealth_log(raw / "mHealth_subject10.log", [(1, 5)])
    (raw / "mHealth_subject2.log.gz").write_bytes(gzip.compress(first.read_bytes()))
    (raw / "README.txt").write_text("mHealth dataset\n")
    write_mhealth_log(raw / "old" / "mHealth_subject3.log", [(1, 5)])
    found = find_recordings(raw, MHEALTH)
    assert [(r.path.name, r.subject, r.session) for r in found] == [
        ("mHealth_subject1.log", 1, NO_SESSION),
        ("mHealth_subject2.log.gz", 2, NO_SESSION),
        ("mHealth_subject10.log", 10, NO_SESSION),
    ]
    skipped = capsys.readouterr().err
    assert (
        f"skipped {raw / 'README.txt'}: not named mHealth_subject<id>.log or "
        "mHealth_subject<id>.log.gz\n" in skipped
    )
    assert f"skipped {raw / 'old'}: a folder (only files directly in data.raw_dir are read)" in (
        skipped
    )
    with pytest.raises(HarfusionError, match=r"^preprocess.sessions: MHEALTH recordings have no"):
        find_recordings(raw, MHEALTH, ["Protocol"])
    write_mhealth_log(raw / "mHealth_subject01.log", [(1, 5)])
    with pytest.raises(HarfusionError, match=r"mHealth_subject1.log: subject 1 twice in"):
        find_recordings(raw, MHEALTH)
    with pytest.raises(HarfusionError, match=r"holds the mHealth_subject<id>.log files$"):
        find_recordings(tmp_path / "nowhere", MHEALTH)
