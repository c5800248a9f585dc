"""Outputs appear whole or not at all, what a killed writer left behind is cleared, and two
writers of one output at once never touch each other's temporaries."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harfusion.atomic import abandoned, atomic_path, write_text
from harfusion.layout import TEMPORARIES
from tests.clones import env, tiny_clone

ROOT = Path(__file__).resolve().parents[1]


def _dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", ""])
    child.wait()
    return child.pid


def test_failure_keeps_the_old_output_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "out"
    write_text(target, "old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_temporaries_of_dead_writers_go_and_a_live_writers_stay(tmp_path: Path) -> None:
    """SIGKILL runs no `finally`: a dead writer's temporary must not pile up run after run; a
    live one's (another `harfusion compare` writing the same output) must not be deleted."""
    dead, live = _dead_pid(), os.getppid()  # our parent outlives this test
    (tmp_path / f".shards.{dead}.abc12_x9.tmp").mkdir()
    (tmp_path / f".shards.{dead}.abc12_x9.tmp" / "part.csv").write_text("half")
    (tmp_path / f".shards.{dead}.zz_12345.old.tmp").mkdir()  # mid-swap of a folder
    (tmp_path / f".shards.{live}.abc12_x9.tmp").write_text("still being written")
    (tmp_path / f".shards.json.{dead}.abc12_x9.tmp").write_text("not ours: another target")
    assert [p.name for p in abandoned(tmp_path, "shards")] == [
        f".shards.{dead}.abc12_x9.tmp",
        f".shards.{dead}.zz_12345.old.tmp",
    ]
    with atomic_path(tmp_path / "shards") as tmp:
        assert tmp.name.startswith(f".shards.{os.getpid()}.")
        tmp.mkdir()
        (tmp / "part.csv").write_text("whole")
    assert (tmp_path / "shards" / "part.csv").read_text() == "whole"
    assert {p.name for p in tmp_path.iterdir()} == {
        f".shards.json.{dead}.abc12_x9.tmp",
        f".shards.{live}.abc12_x9.tmp",
        "shards",
    }


WRITER = """
import sys
from harfusion.atomic import atomic_path
for i in range(int(sys.argv[1])):
    with atomic_path("out") as tmp:
        tmp.mkdir()
        (tmp / "f").write_text(sys.argv[2])
"""


def test_two_writers_of_one_output_at_once(tmp_path: Path) -> None:
    """Two `harfusion compare` at once: each deleted the other's temporary (one shared name), or
    found the output folder gone between its two renames; now both finish, and the output is
    whole, one writer's."""
    (tmp_path / TEMPORARIES).mkdir()
    env = os.environ | {"PYTHONPATH": str(ROOT / "src")}
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, "300", name],
            cwd=tmp_path,
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("a", "b")
    ]
    for writer in writers:
        _, err = writer.communicate(timeout=300)
        assert writer.returncode == 0, err
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["f"]
    assert (tmp_path / "out" / "f").read_text() in {"a", "b"}
    assert list((tmp_path / TEMPORARIES).iterdir()) == []


def test_in_a_project_outputs_are_built_in_its_temporaries_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """There the `tidy` stage finds what a killed writer left, even if no stage reruns."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / TEMPORARIES).mkdir()
    dead = _dead_pid()
    killed = tmp_path / TEMPORARIES / f".reports%eval.{dead}.abc12_x9.tmp"
    killed.mkdir()
    other = tmp_path / TEMPORARIES / f".reports%baseline.{dead}.abc12_x9.tmp"  # other folder
    other.mkdir()
    with atomic_path(Path("reports") / "eval") as tmp:
        assert tmp.parent == tmp_path / TEMPORARIES and tmp.name.startswith(".reports%eval.")
        tmp.mkdir()
        (tmp / "metrics.json").write_text("{}")
    assert (tmp_path / "reports" / "eval" / "metrics.json").read_text() == "{}"
    assert [p.name for p in (tmp_path / "reports").iterdir()] == ["eval"]
    assert sorted((tmp_path / TEMPORARIES).iterdir()) == [other]


def test_dvc_restores_the_temporaries_folder_without_litter_or_after_deletion(
    tmp_path: Path,
) -> None:
    """The folder is the `tidy` stage's output: litter left by a killed stage changes it, and
    DVC restores it as recorded; deleted, it is restored too (as tidy's dependency, a deleted
    folder made the next `dvc repro` fail)."""
    clone = tiny_clone(tmp_path / "harfusion")
    folder = clone / TEMPORARIES

    def repro() -> str:
        done = subprocess.run(
            [sys.executable, "-m", "dvc", "repro", "tidy"],
            cwd=clone,
            env=env(clone),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout + done.stderr

    assert "Running stage 'tidy'" in repro()
    assert [p.name for p in folder.iterdir()] == ["README"]
    litter = folder / f".data%processed.{_dead_pid()}.abc12_x9.tmp"
    litter.mkdir()
    (litter / "activity_1.csv").write_text("half")
    assert "Stage 'tidy' is cached" in repro()
    assert [p.name for p in folder.iterdir()] == ["README"]
    shutil.rmtree(folder)
    assert "Stage 'tidy' is cached" in repro()
    assert [p.name for p in folder.iterdir()] == ["README"]
    assert "didn't change" in repro()
    status = subprocess.run(
        ["git", "status", "--porcelain"], cwd=clone, capture_output=True, text=True, check=True
    )
    changed = [line.split()[-1] for line in status.stdout.splitlines()]
    assert set(changed) <= {"dvc.lock"}, status.stdout  # .tmp ignored, .gitignore untouched
