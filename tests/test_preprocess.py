import gzip
import json
from pathlib import Path

import numpy as np
import pyarrow.csv as pacsv
import pytest

from harfusion.data.preprocess import fill_and_smooth, preprocess
from harfusion.errors import HarfusionError
from harfusion.params import PreprocessParams
from tests.helpers import PAMAP2, PROCESSED_COLUMNS, write_recording


def _run(raw: Path, out: Path, sessions=("Protocol", "Optional"), max_shard_mb=19.0):
    return preprocess(
        raw, out, PreprocessParams(sessions=list(sessions), max_shard_mb=max_shard_mb), PAMAP2
    )


def test_shards_per_subject_and_activity(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    write_recording(raw / "Protocol" / "subject101.dat", [(1, 50), (0, 20), (4, 80)])
    write_recording(raw / "Optional" / "subject101.dat", [(9, 40)], seed=1)
    write_recording(raw / "Protocol" / "subject102.dat", [(4, 30), (0, 5), (1, 60)], seed=2)
    shards = _run(raw, tmp_path / "processed")
    got = {(s["subject"], s["activity"]): s["rows"] for s in shards}
    assert got == {(101, 1): 50, (101, 4): 80, (101, 9): 40, (102, 1): 60, (102, 4): 30}
    table = pacsv.read_csv(tmp_path / "processed" / "subject_101" / "activity_9.csv")
    assert tuple(table.column_names) == PROCESSED_COLUMNS
    assert set(table.column("session").to_pylist()) == {"Optional"}
    assert set(table.column("activity_id").to_pylist()) == {9}
    index = json.loads((tmp_path / "processed" / "shards.json").read_text())
    assert index == shards


def test_sessions_param_filters(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    write_recording(raw / "Protocol" / "subject101.dat", [(1, 50)])
    write_recording(raw / "Optional" / "subject101.dat", [(9, 40)])
    shards = _run(raw, tmp_path / "out", sessions=["Protocol"])
    assert {s["activity"] for s in shards} == {1}


def test_heart_rate_filled_without_gaps(tmp_path: Path) -> None:
    hr = np.full(100, np.nan)
    hr[10], hr[50], hr[90] = 70.0, 100.0, 90.0
    filled = fill_and_smooth(hr, True, 1)
    assert not np.isnan(filled).any()
    assert filled[0] == 70.0  # back-filled
    assert filled[49] == 70.0 and filled[50] == 100.0  # forward-filled
    hr[51] = 70.0
    smoothed = fill_and_smooth(hr, True, 25)
    assert smoothed[50] == 70.0  # a one-sample spike is removed by the rolling median
    assert smoothed[95] == 90.0


def test_large_shard_split_into_parts(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    write_recording(raw / "Protocol" / "subject101.dat", [(4, 3000)])
    shards = _run(raw, tmp_path / "out", max_shard_mb=0.5)
    assert len(shards) > 1
    assert sum(s["rows"] for s in shards) == 3000
    for shard in shards:
        path = tmp_path / "out" / shard["path"]
        assert path.stat().st_size < 0.5e6
        assert "_part" in path.name


def test_no_dat_files(tmp_path: Path) -> None:
    (tmp_path / "raw" / "Protocol").mkdir(parents=True)
    with pytest.raises(HarfusionError, match=r"no PAMAP2 recordings found"):
        _run(tmp_path / "raw", tmp_path / "out")


def test_bad_row_leaves_previous_output_untouched(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    write_recording(raw / "Protocol" / "subject101.dat", [(1, 50)])
    out = tmp_path / "out"
    _run(raw, out)
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    bad = write_recording(raw / "Protocol" / "subject102.dat", [(1, 50)])
    bad.write_text(bad.read_text() + "1 2 3\n")
    with pytest.raises(HarfusionError, match=r"subject102.dat:51: expected 54"):
        _run(raw, out)
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_threads_do_not_change_the_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    raw = tmp_path / "raw"
    for subject in (101, 102, 103):
        acts = [(1, 300), (0, 20), (4, 500), (9, 200), (12, 400)]
        write_recording(raw / "Protocol" / f"subject{subject}.dat", acts, seed=subject)
    monkeypatch.setattr("harfusion.data.preprocess.usable_cores", lambda: 4)
    threaded = _run(raw, tmp_path / "threaded", max_shard_mb=0.1)
    monkeypatch.setattr("harfusion.data.preprocess.usable_cores", lambda: 1)
    single = _run(raw, tmp_path / "single", max_shard_mb=0.1)
    assert threaded == single
    keys = [(s["subject"], s["activity"]) for s in single]
    assert keys == sorted(keys) and len(set(keys)) == 12 and len(keys) > 12  # parts, in order
    for shard in single:
        got = (tmp_path / "threaded" / shard["path"]).read_bytes()
        assert got == (tmp_path / "single" / shard["path"]).read_bytes()


def test_a_copied_recording_stops_naming_both_files(tmp_path: Path) -> None:
    """A copy of Protocol/subject101.dat as Optional/subject101.dat used to double its rows."""
    raw = tmp_path / "raw"
    original = write_recording(raw / "Protocol" / "subject101.dat", [(1, 60), (4, 60)])
    copy = raw / "Optional" / "subject101.dat"
    copy.parent.mkdir()
    copy.write_bytes(original.read_bytes())
    with pytest.raises(HarfusionError) as info:
        _run(raw, tmp_path / "out")
    assert str(info.value).startswith(f"{original} and {copy}: both hold subject 101's readings")
    assert not (tmp_path / "out").exists()
    # A partial copy (a backup cut short, the rest dropped) is the same readings too.
    copy.write_text("".join(original.read_text().splitlines(keepends=True)[50:70]))
    with pytest.raises(HarfusionError, match=r"both hold subject 101's readings at 5\.5 s"):
        _run(raw, tmp_path / "out")


def test_sessions_with_their_own_clocks_are_not_copies(tmp_path: Path) -> None:
    """Control: both sessions start 5 s in, as separate recordings do; same instants, other
    readings (an all-NaN dropout row on both sides proves nothing either)."""
    raw = tmp_path / "raw"
    protocol = write_recording(raw / "Protocol" / "subject101.dat", [(1, 60)])
    optional = write_recording(raw / "Optional" / "subject101.dat", [(9, 60)], seed=1)
    for path in (protocol, optional):
        lines = path.read_text().splitlines()
        tokens = lines[3].split(" ")
        lines[3] = " ".join(tokens[:3] + ["NaN"] * 51)
        path.write_text("\n".join(lines) + "\n")
    shards = _run(raw, tmp_path / "out")
    assert {s["activity"]: s["rows"] for s in shards} == {1: 60, 9: 60}


@pytest.mark.parametrize("other", ["subject0101.dat", "subject101.dat.gz"])
def test_one_subject_under_two_names_stops_naming_both(tmp_path: Path, other: str) -> None:
    raw = tmp_path / "raw"
    canonical = write_recording(raw / "Protocol" / "subject101.dat", [(1, 30)])
    duplicate = write_recording(raw / "Protocol" / other, [(4, 30)], seed=3, start=100.0)
    with pytest.raises(HarfusionError) as info:
        _run(raw, tmp_path / "out")
    names = sorted([canonical, duplicate])
    assert str(info.value) == (
        f"{names[0]} and {names[1]}: subject 101 twice in {raw / 'Protocol'}; keep one"
    )


def test_a_lone_non_canonical_name_is_an_error(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    path = write_recording(raw / "Protocol" / "subject0102.dat", [(1, 30)])
    with pytest.raises(HarfusionError, match=rf"^{path}: rename it subject102\.dat"):
        _run(raw, tmp_path / "out")


def test_only_the_session_folders_are_read_and_skips_are_said(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A backup folder (raw/backup/Protocol/, Protocol/old/) used to be merged into subject 101;
    `.dat.gz` is read; `.DAT`, a README and other names are skipped with the reason."""
    raw = tmp_path / "raw"
    write_recording(raw / "Protocol" / "subject101.dat", [(1, 40)])
    write_recording(raw / "backup" / "Protocol" / "subject101.dat", [(1, 40)], seed=5)
    write_recording(raw / "Protocol" / "old" / "subject101.dat", [(1, 40)], seed=6)
    write_recording(raw / "Protocol" / "subject103.DAT", [(1, 40)], seed=7)
    (raw / "Protocol" / "README").write_text("notes\n")
    packed = write_recording(tmp_path / "subject102.dat", [(4, 30)], seed=8)
    (raw / "Optional").mkdir()
    (raw / "Optional" / "subject102.dat.gz").write_bytes(gzip.compress(packed.read_bytes()))
    shards = _run(raw, tmp_path / "out")
    assert {(s["subject"], s["activity"]): s["rows"] for s in shards} == {
        (101, 1): 40,
        (102, 4): 30,
    }
    table = pacsv.read_csv(tmp_path / "out" / "subject_102" / "activity_4.csv")
    assert set(table.column("session").to_pylist()) == {"Optional"}
    skipped = capsys.readouterr().err
    assert (
        f"preprocess: skipped {raw / 'Protocol' / 'README'}: not named subject<id>.dat" in skipped
    )
    assert f"skipped {raw / 'Protocol' / 'subject103.DAT'}: " in skipped
    assert "(names are case-sensitive)" in skipped
    assert f"skipped {raw / 'Protocol' / 'old'}: a folder" in skipped
    assert "backup" not in skipped


def test_a_subject_without_labelled_rows_is_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = tmp_path / "raw"
    write_recording(raw / "Protocol" / "subject101.dat", [(1, 40)])
    write_recording(raw / "Protocol" / "subject102.dat", [(0, 40)], seed=2)
    shards = _run(raw, tmp_path / "out")
    assert {s["subject"] for s in shards} == {101}
    assert "warning: subject 102 has no labelled rows" in capsys.readouterr().err


def test_a_tiny_max_shard_mb_writes_no_empty_part(tmp_path: Path) -> None:
    """0.0001 MB asked for more parts than rows: header-only parts broke tensorize."""
    raw = tmp_path / "raw"
    write_recording(raw / "Protocol" / "subject101.dat", [(4, 30)])
    shards = _run(raw, tmp_path / "out", max_shard_mb=0.0001)
    assert [s["rows"] for s in shards] == [1] * 30
