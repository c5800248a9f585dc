"""Committed clones of the working tree with tiny params, where the `harfusion` command runs DVC's
experiment queue for real; and the one swept clone the sweep and scale-out tests share."""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
import yaml

from tests.helpers import SMOKE, merge

ROOT = Path(__file__).resolve().parents[1]
E2E = ["fusion-early", "fusion-hybrid", "single-heart_rate"]
BROKEN = {"title": "Broken", "axis": "x", "configs": {"chunk-huge": {"chunk_size": 100000}}}
HARFUSION = [sys.executable, "-m", "harfusion"]


@functools.cache
def _working_tree() -> dict[str, tuple[bytes, int]]:
    """The working tree's files (uncommitted changes included; DVC outputs under data/, models/
    and reports/ left out) as they are when the session first needs them, with their modes: every
    clone of one session gets the same code, even while someone edits the tree meanwhile."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return {
        name: (source.read_bytes(), source.stat().st_mode)
        for name in filter(None, listed.split("\0"))
        if name.split("/")[0] not in {"data", "models", "reports"}
        and (source := ROOT / name).is_file()
    }


def copy_working_tree(clone: Path) -> None:
    """Bring uncommitted source changes into the clone, so the test checks the code as it is;
    on a clean checkout this changes nothing."""
    for name, (content, mode) in _working_tree().items():
        (clone / name).parent.mkdir(parents=True, exist_ok=True)
        (clone / name).write_bytes(content)
        (clone / name).chmod(mode)


def harfusion(clone: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`harfusion ...` in the clone with this test's interpreter (building the clone its own venv
    with `uv run`, as test_pipeline.py does, would add a minute or two)."""
    return subprocess.run(
        [*HARFUSION, *args],
        cwd=clone,
        env=env(clone),
        capture_output=True,
        text=True,
        timeout=900,
    )


def tiny_clone(target: Path, ablations_extra: dict | None = None) -> Path:
    """A clone of the working tree with SMOKE params, committed (DVC's queue needs a commit)."""
    if shutil.which("git") is None:
        pytest.skip("needs git")
    subprocess.run(["git", "clone", "-q", str(ROOT), str(target)], check=True)
    copy_working_tree(target)
    params = yaml.safe_load((target / "params.yaml").read_text())
    (target / "params.yaml").write_text(yaml.safe_dump(merge(params, SMOKE), sort_keys=False))
    if ablations_extra:
        ablations = yaml.safe_load((target / "ablations.yaml").read_text())
        ablations["groups"] |= ablations_extra
        (target / "ablations.yaml").write_text(yaml.safe_dump(ablations, sort_keys=False))
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "add", "-A"], cwd=target, check=True)
    subprocess.run([*git, "commit", "-qm", "tiny"], cwd=target, check=True)
    return target


def env(clone: Path) -> dict[str, str]:
    """The clone's source, and this venv first on PATH: the queue workers' stages run `python`."""
    return os.environ | {
        "PYTHONPATH": str(clone / "src"),
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]),
    }


def kill_queue_workers(clone: Path) -> int:
    """SIGKILL every DVC queue worker of `clone` and its process group (the trainings it runs),
    as a crash would."""
    killed = 0
    for process in psutil.process_iter(["cmdline", "cwd"]):
        command, cwd = " ".join(process.info["cmdline"] or []), process.info["cwd"]
        if "queue-worker" in command and cwd == str(clone):
            with contextlib.suppress(ProcessLookupError, psutil.NoSuchProcess):
                os.killpg(os.getpgid(process.pid), signal.SIGKILL)
                killed += 1
    return killed


def end_processes_in(folder: Path) -> None:
    """SIGKILL the process groups of every process working in `folder` or below (queue workers,
    the trainings they run), so a test leaves nothing running behind it."""
    for process in psutil.process_iter(["cwd"]):
        cwd = process.info["cwd"]
        if cwd and (cwd == str(folder) or cwd.startswith(f"{folder}/")):
            with contextlib.suppress(ProcessLookupError, psutil.NoSuchProcess, PermissionError):
                group = os.getpgid(process.pid)
                if group != os.getpgrp():  # never this test's own group
                    os.killpg(group, signal.SIGKILL)


@pytest.fixture(scope="session")
def swept(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess]:
    """A clone with tiny params where the sweep ran three configurations and a broken one, on one
    machine, then the comparison and the report."""
    clone = tiny_clone(tmp_path_factory.mktemp("sweep") / "harfusion", {"broken": BROKEN})
    only = ",".join([*E2E, "broken"])
    result = harfusion(clone, "sweep", "--only", only, "-j", "1", "--poll", "5")
    for command in ("compare", "report"):
        done = harfusion(clone, command)
        assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
    return clone, result
