"""Outputs appear whole or not at all, and what a killed writer left behind is cleared."""

from pathlib import Path

import pytest

from harfusion.atomic import atomic_path, write_text


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
