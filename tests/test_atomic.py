"""Outputs appear whole or not at all, and what a killed writer left behind is cleared."""

from pathlib import Path

import pytest

from harfusion.atomic import atomic_path, write_text
from harfusion.layout import TEMPORARIES


def test_failure_keeps_the_old_output_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "out"
    write_text(target, "old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_a_killed_writers_temporaries_are_removed_by_the_next_write(tmp_path: Path) -> None:
    """SIGKILL runs no `finally`: the stale sibling must not pile up run after run."""
    (tmp_path / ".shards.abc12_x9.tmp").mkdir()
    (tmp_path / ".shards.abc12_x9.tmp" / "part.csv").write_text("half")
    (tmp_path / ".shards.json.x.tmp").write_text("not ours: another target's name")
    with atomic_path(tmp_path / "shards") as tmp:
        tmp.mkdir()
        (tmp / "part.csv").write_text("whole")
    assert (tmp_path / "shards" / "part.csv").read_text() == "whole"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".shards.json.x.tmp", "shards"]


def test_in_a_project_outputs_are_built_in_its_temporaries_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """There the `tidy` stage finds what a killed writer left, even if no stage reruns."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / TEMPORARIES).mkdir()
    killed = tmp_path / TEMPORARIES / ".reports%eval.abc12_x9.tmp"
    killed.mkdir()
    other = tmp_path / TEMPORARIES / ".reports%baseline.abc12_x9.tmp"  # same name, other folder
    other.mkdir()
    with atomic_path(Path("reports") / "eval") as tmp:
        assert tmp.parent == tmp_path / TEMPORARIES and tmp.name.startswith(".reports%eval.")
        tmp.mkdir()
        (tmp / "metrics.json").write_text("{}")
    assert (tmp_path / "reports" / "eval" / "metrics.json").read_text() == "{}"
    assert [p.name for p in (tmp_path / "reports").iterdir()] == ["eval"]
    assert sorted((tmp_path / TEMPORARIES).iterdir()) == [other]
