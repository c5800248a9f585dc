"""Every read of DVC besides `dvc exp show --json`, held to the installed DVC in a tiny committed
project: the queue through DVC's Python API (task states, live workers, the record of a task's
process) and the one line of DVC's wording that harfusion parses (a stage restored from the
run-cache). A DVC upgrade that changes any of them fails here, not in a sweep."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from harfusion.errors import HarfusionError
from harfusion.experiments import dvc_queue
from harfusion.experiments.dvc_log import restored_stages
from harfusion.experiments.dvc_queue import Task
from harfusion.experiments.remotes import default_dvc_remote
from tests.clones import end_processes_in, env

DVC = [sys.executable, "-m", "dvc"]
GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
WRITE = "python -c \"import shutil; shutil.copy('params.yaml', 'out.txt')\""


def _project(root: Path, cmd: str) -> Path:
    """A committed git + DVC project of one stage, `count`, that runs `cmd` with params `x`."""
    root.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    subprocess.run([*DVC, "init", "-q"], cwd=root, check=True)
    (root / "params.yaml").write_text("x: 1\n")
    stage = {"cmd": cmd, "params": ["x"], "outs": ["out.txt"]}
    (root / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"count": stage}}))
    subprocess.run([*GIT, "add", "-A"], cwd=root, check=True)
    subprocess.run([*GIT, "commit", "-qm", "start"], cwd=root, check=True)
    return root


def _dvc(project: Path, *args: str) -> str:
    result = subprocess.run([*DVC, *args], cwd=project, env=env(project), capture_output=True)
    output = (result.stdout + result.stderr).decode()
    assert result.returncode == 0, output
    return output


def test_a_stage_restored_from_the_run_cache_is_read_in_dvcs_words(tmp_path: Path) -> None:
    project = _project(tmp_path / "project", WRITE)
    ran = _dvc(project, "repro")
    assert "Running stage 'count'" in ran and restored_stages(ran) == []
    (project / "dvc.lock").unlink()  # the run-cache still has the stage's outputs
    again = _dvc(project, "repro")
    assert restored_stages(again) == ["count"], again


def test_a_queued_task_and_no_worker_as_dvcs_api_reports_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = _project(tmp_path / "project", WRITE)
    monkeypatch.chdir(project)
    assert dvc_queue.tasks() == {}
    _dvc(project, "exp", "run", "--queue", "-n", "one", "-S", "x=2")
    stash = subprocess.run(
        ["git", "rev-parse", "refs/exps/celery/stash"], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert dvc_queue.tasks() == {"one": Task(stash, "queued")}
    assert dvc_queue.live_workers() == 0
    assert not dvc_queue.process_running(stash)  # no worker, so no process
    assert default_dvc_remote() is None
    _dvc(project, "remote", "add", "-d", "storage", str(tmp_path / "storage"))
    assert default_dvc_remote() == "storage"
    monkeypatch.chdir(tmp_path)  # no project: nothing can be read
    assert dvc_queue.tasks() is None and dvc_queue.live_workers() is None
    assert default_dvc_remote() is None


def test_a_task_state_dvc_never_had_is_refused_not_waited_on() -> None:
    assert [dvc_queue.state(status) for status in dvc_queue.STATES] == [
        "queued",
        "running",
        "success",
        "failed",
    ]
    with pytest.raises(HarfusionError, match=r"DVC's queue reports a task 'Paused', none of "):
        dvc_queue.state("Paused")


def _until(what: str, check: Callable[[], bool], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout:g} s: {what}")
        time.sleep(0.3)


@pytest.mark.slow
def test_tasks_a_worker_runs_as_dvcs_api_reports_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One task that runs until the test releases it, one that fails: queued, running with a
    live process and a live worker, then success and failed."""
    release = tmp_path / "release"
    wait = (
        "python -c \"import os, sys, time, yaml; x = yaml.safe_load(open('params.yaml'))['x']; "
        f"[time.sleep(0.1) for _ in iter(lambda: os.path.exists({str(release)!r}), True)]; "
        "open('out.txt', 'w').write(str(x)); sys.exit(x == 3)\""
    )
    project = _project(tmp_path / "project", wait)
    monkeypatch.chdir(project)
    _dvc(project, "exp", "run", "--queue", "-n", "held", "-S", "x=2")
    _dvc(project, "exp", "run", "--queue", "-n", "failing", "-S", "x=3")
    try:
        # the worker outlives `queue start` and inherits its output: a file, never a pipe
        with (tmp_path / "start.log").open("w") as out:
            subprocess.run(
                [*DVC, "queue", "start", "-j", "1"],
                cwd=project,
                env=env(project),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                check=True,
            )

        def state(name: str) -> str | None:
            tasks = dvc_queue.tasks() or {}
            return tasks[name].state if name in tasks else None

        _until("held runs", lambda: state("held") == "running")
        held = (dvc_queue.tasks() or {})["held"].rev
        _until("its process is seen", lambda: dvc_queue.process_running(held))
        _until("the worker answers", lambda: dvc_queue.live_workers() == 1)
        assert state("failing") == "queued"
        release.touch()
        _until("held succeeds", lambda: state("held") == "success")
        assert not dvc_queue.process_running(held)  # ended: DVC recorded its exit status
        _until("failing fails", lambda: state("failing") == "failed")
    finally:
        end_processes_in(project)
