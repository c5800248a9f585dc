"""The watchdog of a sweep or LOSO: dead queue workers restarted, runs orphaned by a dead worker
found and queued again once (then counted failed), the timeout; and, slow, the same against
DVC's real queue with workers killed by SIGKILL."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from dvc.repo import Repo
from dvc_task.proc.process import ProcessInfo

from harfusion.errors import HarfusionError
from harfusion.experiments import dvc_queue, runner, watchdog
from harfusion.experiments.dvc_client import Baseline, Experiment, project
from harfusion.experiments.dvc_queue import Task, process_running
from harfusion.experiments.watchdog import Watchdog
from tests.clones import HARFUSION, end_processes_in, env, kill_queue_workers, tiny_clone

# The queue as DVC's API reports it, with a task orphaned by a SIGKILLed worker.
TASKS = {
    "fusion-late": Task("be68c3e" + "0" * 33, "running"),
    "fusion-early": Task("57a6807" + "0" * 33, "success"),
    "fusion-hybrid": Task("1f2e3d4" + "0" * 33, "queued"),
}


def _dog(said: list[str], **kwargs) -> Watchdog:
    return Watchdog(say=said.append, start_workers=lambda: pytest.fail("restarted"), **kwargs)


def _workers(monkeypatch: pytest.MonkeyPatch, *live: int) -> None:
    counts = iter(live)
    monkeypatch.setattr(watchdog, "live_workers", lambda: next(counts))


def test_watchdog_restarts_dead_workers_a_bounded_number_of_times(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _workers(monkeypatch, 1, 0, 0, 0, 0)
    started: list[int] = []
    said: list[str] = []
    dog = Watchdog(say=said.append, start_workers=lambda: started.append(2), jobs=2, restarts=1)
    states = {"a": "success", "b": "queued", "c": "success"}
    dog.check(states, {}, 1.0)  # a live worker
    dog.check(states, {}, 2.0)  # none, once: it may still be registering
    assert started == []
    dog.check(states, {}, 3.0)  # none twice in a row: restart
    assert started == [2]
    assert said == ["no live queue worker while 1 experiment(s) wait; restarting 2 worker(s) (1/1)"]
    dog.check(states, {}, 4.0)
    with pytest.raises(HarfusionError, match="died 2 times; still queued: b"):
        dog.check(states, {}, 5.0)


def test_watchdog_timeout_names_what_did_not_finish(monkeypatch: pytest.MonkeyPatch) -> None:
    _workers(monkeypatch, 1, 1)
    dog = _dog([], timeout=60)
    states = {"a": "success", "b": "running", "c": "queued"}
    monkeypatch.setattr(watchdog, "process_running", lambda task: True)
    dog.check(states, {}, 59.0)
    with pytest.raises(HarfusionError, match="--timeout 60 s passed; not finished: b, c"):
        dog.check(states, {}, 61.0)


def _record(task: str, pid: int, returncode: int | None = None) -> None:
    """DVC's record of the process running a queue task, written by DVC's own process manager."""
    with project() as repo:
        processes = repo.experiments.celery_queue.proc
        (Path(processes.wdir) / task).mkdir(parents=True)
        processes[task] = ProcessInfo(pid, None, f"{task}.out", None, returncode)


def test_a_runs_process_is_alive_only_while_dvcs_record_and_the_system_agree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    subprocess.run(["git", "init", "-q"], check=True)
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], check=True)
    # a stand-in whose command line names dvc, as `dvc exp exec-run` does
    executor = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "dvc"])
    other = subprocess.Popen(["sleep", "60"])
    try:
        _record("a" * 40, executor.pid)
        _record("b" * 40, executor.pid, returncode=0)  # its worker saw it end
        _record("c" * 40, other.pid)  # the pid now belongs to another program
        assert process_running("a" * 40)
        assert not process_running("b" * 40)
        assert not process_running("c" * 40)
        assert not process_running("d" * 40)  # no record yet: DVC still prepares its workspace
        assert not process_running(None)
        executor.kill()
        executor.wait()
        assert not process_running("a" * 40)  # killed with its worker: the record never learnt
    finally:
        for process in (executor, other):
            process.kill()
            process.wait()
    monkeypatch.chdir(tmp_path.parent)  # no DVC project: not known to be gone
    assert process_running("a" * 40)


def _orphan_dog(
    monkeypatch: pytest.MonkeyPatch, said: list[str], kill_answers: list[int], requeue
) -> tuple[Watchdog, list[tuple[str, ...]]]:
    """A watchdog over a queue whose runs have no process; `dvc queue kill` answers in turn."""
    killed: list[tuple[str, ...]] = []
    answers = iter(kill_answers)

    def fake_dvc(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        killed.append(args)
        return subprocess.CompletedProcess(args, next(answers), "", "")

    monkeypatch.setattr(watchdog, "dvc", fake_dvc)
    monkeypatch.setattr(watchdog, "process_running", lambda task: False)
    _workers(monkeypatch, *[1] * 20)
    return _dog(said, requeue=requeue, grace=30.0), killed


def test_a_run_whose_worker_died_is_queued_again_once_then_counted_failed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    said: list[str] = []
    requeued: list[str] = []
    dog, killed = _orphan_dog(monkeypatch, said, [0, 0], lambda name: requeued.append(name))
    running = {"a": "running", "b": "success"}
    dog.check(running, {"a": "abc1234"}, 0.0)
    dog.check(running, {"a": "abc1234"}, 29.0)  # gone for less than the grace: a worker may
    assert killed == [] and requeued == []  # still be copying its results back
    dog.check(running, {"a": "abc1234"}, 31.0)
    assert killed == [("queue", "kill", "a")] and requeued == ["a"]
    assert said == [
        "a: its queue worker died while it ran (no process for 31 s); queueing it again (once)"
    ]
    dog.check({"a": "queued", "b": "success"}, {}, 40.0)
    dog.check(running, {"a": "fedcba9"}, 50.0)
    dog.check(running, {"a": "fedcba9"}, 85.0)  # dead again: no third try
    assert requeued == ["a"] and len(killed) == 2
    assert (
        said[-1] == "a: its queue worker died while it ran (no process for 35 s); counted as failed"
    )
    assert dog.lost == {"a": "its queue worker died while it ran, twice"}


def test_a_run_a_live_worker_still_holds_is_not_orphaned(monkeypatch: pytest.MonkeyPatch) -> None:
    said: list[str] = []
    dog, killed = _orphan_dog(monkeypatch, said, [1, 0], lambda name: pytest.fail("requeued"))
    dog.requeue = None  # as with --wait-only: no requeueing
    running = {"a": "running"}
    dog.check(running, {}, 0.0)
    dog.check(running, {}, 31.0)  # DVC refuses: a live worker reports the task active
    assert killed == [("queue", "kill", "a")] and said == [] and dog.lost == {}
    dog.check(running, {}, 60.0)  # the grace starts again from the refusal
    assert len(killed) == 1
    dog.check(running, {}, 62.0)
    assert said == [
        "a: its queue worker died while it ran (no process for 31 s); counted as failed"
    ]
    assert dog.lost == {"a": "its queue worker died while it ran"}


def test_an_orphan_that_cannot_be_queued_again_fails_with_the_reason(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    said: list[str] = []
    dog, _ = _orphan_dog(monkeypatch, said, [0], lambda name: "the workspace changed")
    dog.check({"a": "running"}, {}, 0.0)
    dog.check({"a": "running"}, {}, 30.0)
    assert said[-1] == "a: not queued again: the workspace changed; counted as failed"
    assert dog.lost == {
        "a": "its queue worker died while it ran; not queued again: the workspace changed"
    }


def _runner() -> runner.Runner:
    return runner.Runner("loso", {}, jobs=1)


def test_wait_follows_queue_status_while_exp_show_fails(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A worker killed while it prepares leaves a temporary workspace without `.dvc`, and every
    `dvc exp show` fails on it until the task is killed; the watchdog must still see the task."""
    answers = iter([HarfusionError("`dvc exp show` exited with 255:\nERROR: no '.dvc'")])
    finished = Baseline("c" * 40, None, {}, [Experiment("fusion-late", "f" * 40, "failed")])

    def show(attempts: int) -> Baseline:
        answer = next(answers, finished)
        if isinstance(answer, Exception):
            raise answer
        return answer

    seen: list[tuple[dict, dict]] = []
    monkeypatch.setattr(runner, "show", show)
    monkeypatch.setattr(dvc_queue, "tasks", lambda: TASKS)
    dog = _dog([])
    monkeypatch.setattr(dog, "check", lambda states, tasks, elapsed: seen.append((states, tasks)))
    result = _runner().wait(["fusion-late"], poll=0.01, watchdog=dog)
    assert seen == [({"fusion-late": "running"}, {"fusion-late": TASKS["fusion-late"].rev})]
    assert result["fusion-late"].state == "failed"
    out = capsys.readouterr()
    assert "loso: `dvc exp show` fails (ERROR: no '.dvc'); following `dvc queue status`" in out.err
    assert "loso: [  0:00] running: fusion-late (0/1 done)" in out.out
    assert "loso: [  0:00] failed: fusion-late (1/1 done)" in out.out


def test_wait_gives_up_after_the_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    stuck = Baseline("c" * 40, None, {}, [Experiment("a", "a" * 40, "queued")])
    monkeypatch.setattr(runner, "show", lambda attempts: stuck)
    _workers(monkeypatch, *[1] * 100)
    with pytest.raises(HarfusionError, match="not finished: a"):
        _runner().wait(["a"], poll=0.01, watchdog=_dog([], timeout=0.05))


def test_a_run_lost_with_its_worker_is_reported_with_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(
        runner, "dvc", lambda *args, check: subprocess.CompletedProcess(args, 0, "log\n", "")
    )
    finished = {"a": Experiment("a", "a" * 40, "failed")}
    lost = {"a": "its queue worker died while it ran, twice"}
    assert runner.report_failures(["a"], finished, tmp_path, lost, "loso") == 1
    err = capsys.readouterr().err
    assert "loso: 1 of 1 experiments failed:" in err
    assert f"  a: log {tmp_path / 'a.log'}: its queue worker died while it ran, twice" in err


# --- the real queue, workers killed ----------------------------------------------------------


def _sweep(clone: Path) -> subprocess.Popen[str]:
    argv = ["sweep", "--only", "fusion-early", "-j", "1", "--poll", "2", "--timeout", "600"]
    return subprocess.Popen(
        [*HARFUSION, *argv],
        cwd=clone,
        env=env(clone),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def _training(clone: Path, timeout: float = 300) -> None:
    """Wait until a queue task of `clone` runs its train stage (its log says so)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with Repo(str(clone)) as repo:
            logs = [info.stdout for _, info in repo.experiments.celery_queue.proc.processes()]
        if any("Running stage 'train'" in Path(log).read_text(errors="replace") for log in logs):
            return
        time.sleep(0.5)
    pytest.fail(f"no training started in {clone} within {timeout:g} s")


@pytest.mark.slow
def test_a_sweep_outlives_its_workers_dying_while_tasks_wait_and_while_one_trains(
    tmp_path: Path,
) -> None:
    """Two deaths in one real sweep (one clone, one pipeline run more than a sweep needs):
    the workers SIGKILLed right after `dvc queue start` leave the task queued with no live
    worker, and the watchdog restarts them instead of polling for ever; the restarted worker
    (and the training it runs) SIGKILLed in the middle of the training leaves DVC showing the
    task as running for ever, and the sweep notices within its grace, has DVC mark the task
    failed, queues it once more, and ends with it done."""
    clone = tiny_clone(tmp_path / "harfusion")
    sweep_run = _sweep(clone)
    assert sweep_run.stdout is not None
    try:
        lines = []
        for line in sweep_run.stdout:
            lines.append(line)
            if "new experiments task queue worker" in line:
                break
        assert kill_queue_workers(clone) >= 1, "".join(lines)
        for line in sweep_run.stdout:
            lines.append(line)
            if "restarting 1 worker(s)" in line:
                break
        _training(clone)
        killed_at = time.monotonic()
        assert kill_queue_workers(clone) >= 1, "".join(lines)
        rest, _ = sweep_run.communicate(timeout=900)
        took = time.monotonic() - killed_at
    finally:
        end_processes_in(clone)
    output = "".join(lines) + rest
    assert sweep_run.returncode == 0, output
    assert "no live queue worker while 1 experiment(s) wait; restarting 1 worker(s) (1/3)" in output
    assert re.search(
        r"sweep: fusion-early: its queue worker died while it ran \(no process for \d+ s\); "
        r"queueing it again \(once\)",
        output,
    ), output
    assert "sweep: all 1 experiments succeeded" in output
    assert took < 600, output
