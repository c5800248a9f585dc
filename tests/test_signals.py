"""A sweep or LOSO stopped by a signal at any moment leaves the user's workspace as it was, says
what it queued and how to stop it, and exits within seconds; what a SIGKILL in the middle of
DVC's queueing leaves is found by the next run, which says how to restore it.

The fast tests drive the pieces (signal deferral, the workspace snapshot and its restore
commands) in-process and in scratch git repositories; the slow ones interrupt real sweeps in
clones (tests/interrupting.py; scripts/stress_signals.py repeats them 20 times).
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from harfusion import layout
from harfusion.errors import HarfusionError
from harfusion.experiments import interrupts, runner, workspace
from harfusion.experiments.workspace import Snapshot, check_no_leftovers, held_by_dvc, what_differs
from tests.clones import end_processes_in, harfusion, tiny_clone
from tests.interrupting import (
    COMMANDS,
    HOWS,
    KILL_ALL,
    MOMENTS,
    interrupt_once,
    workspace_state,
)

# --- deferring signals over a DVC call -------------------------------------------------------


def _signal_soon(signum: int, after: float = 0.2) -> threading.Timer:
    timer = threading.Timer(after, os.kill, (os.getpid(), signum))
    timer.start()
    return timer


def test_a_signal_during_a_deferred_call_waits_for_its_end(
    capsys: pytest.CaptureFixture[str],
) -> None:
    finished = []
    with pytest.raises(SystemExit) as stopped, interrupts.handled("loso"):
        with interrupts.deferred("`dvc exp run --queue` of x"):
            _signal_soon(signal.SIGTERM)
            # a child in its own session, as DVC runs: it finishes although the signal came
            subprocess.run([sys.executable, "-c", "import time; time.sleep(0.6)"], check=True)
            finished.append(True)
        pytest.fail("the noted signal was not raised when the call ended")
    assert finished == [True] and stopped.value.code == 143
    err = capsys.readouterr().err
    assert "loso: SIGTERM: stopping once `dvc exp run --queue` of x has finished" in err
    assert "loso: stopped by SIGTERM" in err and "Traceback" not in err


def test_outside_a_deferred_call_a_signal_stops_at_once_without_a_traceback(
    capsys: pytest.CaptureFixture[str],
) -> None:
    started = time.monotonic()
    with pytest.raises(SystemExit) as stopped, interrupts.handled("sweep"):
        _signal_soon(signal.SIGINT, 0.1)
        time.sleep(5)
    assert stopped.value.code == 130 and time.monotonic() - started < 2
    assert capsys.readouterr().err == "sweep: stopped by SIGINT\n"


def test_the_previous_handlers_come_back() -> None:
    before = {s: signal.getsignal(s) for s in interrupts.SIGNALS}
    with interrupts.handled("sweep"):
        assert all(signal.getsignal(s) is not before[s] for s in interrupts.SIGNALS)
    assert {s: signal.getsignal(s) for s in interrupts.SIGNALS} == before


def test_an_error_of_the_deferred_call_itself_wins() -> None:
    with (
        pytest.raises(HarfusionError, match="dvc failed"),
        interrupts.handled("sweep"),
        interrupts.deferred("a call"),
    ):
        os.kill(os.getpid(), signal.SIGTERM)
        raise HarfusionError("dvc failed")


# --- the workspace while DVC holds it, and what a SIGKILL leaves -------------------------------


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A committed project with a user's uncommitted work: params.yaml edited, README staged."""
    repo = tmp_path / "project"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    (repo / "params.yaml").write_text("fusion: hybrid\nheads: 4\n")
    (repo / "README.md").write_text("# project\n")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "start")
    (repo / "params.yaml").write_text("fusion: hybrid\nheads: 2\n")
    (repo / "README.md").write_text("# project\nmine\n")
    _git(repo, "add", "README.md")
    monkeypatch.chdir(repo)
    return repo


def _dvc_step(repo: Path, step: str) -> None:
    """One step of `dvc exp run --queue` as DVC takes them (queue/base.py `_stash_exp`)."""
    if step == "stash":  # stash_workspace(): a plain `git stash`
        _git(repo, "stash", "push", "-q")
    elif step == "detach":  # detach_head()
        _git(repo, "checkout", "-q", "--detach")
    elif step == "apply":  # the user's changes back, the experiment's params on them, staged
        _git(repo, "stash", "apply", "-q", "--index")
        (repo / "params.yaml").write_text("fusion: late\nheads: 2\n")
        _git(repo, "add", "params.yaml")
    elif step == "queue entry":  # pygit2 stashes into refs/stash, then moves it to DVC's ref
        commit = _git(repo, "stash", "create").strip()
        _git(repo, "stash", "store", "-m", f"dvc-exp:{commit}:{commit}:fusion-late", commit)
        _git(repo, "reset", "-q", "--hard")
    elif step == "drop queue entry":
        _git(repo, "stash", "drop", "-q")
    elif step == "reattach":
        _git(repo, "checkout", "-q", "main")
    elif step == "pop":
        _git(repo, "stash", "pop", "-q", "--index")


STEPS = ["stash", "detach", "apply", "queue entry", "drop queue entry", "reattach", "pop"]


@pytest.mark.parametrize("killed_after", range(len(STEPS)))
def test_the_restore_command_brings_back_the_workspace_a_kill_left(
    repo: Path, killed_after: int
) -> None:
    """DVC killed after each of its steps in turn: the one-line message names what differs and
    its command restores HEAD, every file, the index and `git stash` exactly."""
    before = Snapshot.take()
    for step in STEPS[: killed_after + 1]:
        _dvc_step(repo, step)
    differs = what_differs(before, Snapshot.take())
    if STEPS[killed_after] == "pop":  # DVC finished: nothing to restore
        assert differs is None
        return
    assert differs is not None and "\n" not in differs
    assert "your uncommitted changes are in stash@{" in differs
    if killed_after in (1, 2, 3):
        assert "HEAD detached from main" in differs
    command = re.search(r"restore with `([^`]+)`", differs)
    assert command, differs
    subprocess.run(command[1], shell=True, cwd=repo, check=True, capture_output=True)
    assert Snapshot.take() == before, differs


def test_with_no_uncommitted_work_a_reset_restores(repo: Path) -> None:
    _git(repo, "reset", "-q", "--hard")
    before = Snapshot.take()
    _dvc_step(repo, "detach")
    (repo / "params.yaml").write_text("fusion: late\nheads: 4\n")
    _git(repo, "add", "params.yaml")
    differs = what_differs(before, Snapshot.take())
    assert differs == (
        "changed params.yaml, HEAD detached from main; "
        "restore with `git reset --hard && git checkout main`"
    )


def test_a_moved_head_is_not_restored_by_guesswork(repo: Path) -> None:
    before = Snapshot.take()
    _git(repo, "commit", "-qam", "the user went on")
    differs = what_differs(before, Snapshot.take())
    assert differs is not None and "restore with" not in differs and "git stash list" in differs


def test_the_next_run_refuses_a_workspace_a_killed_queueing_left(repo: Path) -> None:
    before = workspace_state(repo)
    with (
        pytest.raises(HarfusionError, match="left your workspace changed"),
        held_by_dvc("sweep", "`dvc exp run --queue` of fusion-late"),
    ):
        _dvc_step(repo, "stash")
        _dvc_step(repo, "detach")  # ... and here a SIGKILL, as far as the note knows
    note = json.loads(layout.QUEUEING_NOTE.read_text())
    assert note["command"] == "sweep" and note["queueing"].endswith("of fusion-late")
    with pytest.raises(HarfusionError) as refused:
        check_no_leftovers()
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith(
        "an earlier `harfusion sweep` was killed while `dvc exp run --queue` of fusion-late"
    )
    assert (
        "restore with `git reset --hard && git checkout main && git stash pop --index`" in message
    )
    assert f"delete {layout.QUEUEING_NOTE}" in message
    command = re.search(r"restore with `([^`]+)`", message)
    assert command is not None
    subprocess.run(command[1], shell=True, check=True)
    assert workspace_state(repo) == before
    check_no_leftovers()  # restored: the note goes, silently
    assert not layout.QUEUEING_NOTE.exists()


def test_a_note_of_a_queueing_that_changed_nothing_goes_silently(repo: Path) -> None:
    with held_by_dvc("loso", "a call"):
        pass
    assert not layout.QUEUEING_NOTE.exists()
    layout.QUEUEING_NOTE.parent.mkdir(parents=True, exist_ok=True)
    layout.QUEUEING_NOTE.write_text('{"command": "sw')  # cut short by the kill itself
    check_no_leftovers()
    assert not layout.QUEUEING_NOTE.exists()


def test_stash_messages_are_read_as_git_keeps_them(repo: Path) -> None:
    _git(repo, "stash", "push", "-q", "-m", "mine: with: colons")
    (stash,) = Snapshot.take().stash
    assert stash[1] == "On main: mine: with: colons"
    assert workspace.DVC_STASH_MESSAGE == "dvc-exp:"


# --- real sweeps, interrupted ------------------------------------------------------------------

SEED = int(os.environ.get("HARFUSION_SIGNAL_SEED", random.randrange(10**6)))


@pytest.fixture(scope="module")
def base_clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_clone(tmp_path_factory.mktemp("signals") / "base")


# The case (SIGTERM to the group while DVC holds the stash), Ctrl-C there, and one drawn
# at random from every command, moment and way; the 20-trial run is scripts/stress_signals.py.
_rng = random.Random(SEED)
TRIALS = [
    ("sweep", "mid-stash", "SIGTERM to the group"),
    ("sweep", "mid-stash", "SIGINT to the group"),
    (
        _rng.choice(list(COMMANDS)),
        _rng.choice([m for m in MOMENTS if m != "mid-stash"]),
        _rng.choice(list(HOWS)),
    ),
]


@pytest.mark.slow
@pytest.mark.parametrize(("command", "moment", "how"), TRIALS)
def test_a_signal_leaves_the_workspace_as_it_was(
    base_clone: Path, tmp_path: Path, command: str, moment: str, how: str
) -> None:
    trial = interrupt_once(
        base_clone, tmp_path / "trial", moment, how, random.Random(SEED), command
    )
    assert not trial.problems, f"{trial} (HARFUSION_SIGNAL_SEED={SEED})\n{trial.stderr}"


@pytest.mark.slow
def test_after_a_sigkill_mid_queueing_the_next_sweep_says_how_to_restore(
    base_clone: Path, tmp_path: Path
) -> None:
    """SIGKILL to the sweep and to DVC's queueing call while DVC holds the stash (what a power
    cut or the OOM killer does): the next sweep refuses in one line, and its command restores."""
    clone = tmp_path / "clone"
    trial = interrupt_once(base_clone, clone, "mid-stash", KILL_ALL, random.Random(SEED))
    assert trial.changed, f"the kill came too late to leave anything: {trial}"
    before = {key: was for key, (was, _) in trial.changed.items()}
    refused = harfusion(clone, "sweep", "--only", "fusion", "--dry-run")
    assert refused.returncode == 1 and refused.stdout == "", refused.stderr
    (line,) = refused.stderr.splitlines()
    assert line.startswith("error: an earlier `harfusion sweep` was killed while"), line
    command = re.search(r"restore with `([^`]+)`", line)
    assert command, line
    subprocess.run(command[1], shell=True, cwd=clone, check=True, capture_output=True)
    after = workspace_state(clone)
    assert {key: after[key] for key in before} == before
    again = harfusion(clone, "sweep", "--only", "fusion", "--dry-run")
    assert again.returncode == 0, again.stderr
    end_processes_in(clone)


def test_a_stopped_command_says_what_it_queued_what_goes_on_and_how_to_stop_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The three things a stop can leave: nothing, queued runs no worker takes, or workers
    going on; each line names the runs and the DVC commands that run or stop them."""
    run = runner.Runner("sweep", {}, jobs=2)
    run.stopped("SIGINT", 3)
    assert capsys.readouterr().err == "sweep: stopped by SIGINT; nothing was queued\n"

    run.queued = ["fusion-early", "fusion-late"]
    run.stopped("SIGTERM", 3)
    err = capsys.readouterr().err
    assert "queued 2 of 3: fusion-early fusion-late; no worker runs them" in err
    assert "`dvc queue start -j 2`" in err and "`dvc queue remove fusion-early fusion-late`" in err

    run.queued.append("fusion-hybrid")
    run.started = True
    run.states = {"fusion-early": "success", "fusion-late": "running"}
    run.stopped("SIGHUP", 3)
    err = capsys.readouterr().err
    assert err.startswith("sweep: stopped by SIGHUP; DVC's queue workers go on in the background")
    assert "running: fusion-late; queued: fusion-hybrid; finished: fusion-early" in err
    assert "--wait-only" in err
    assert "`dvc queue remove fusion-hybrid && dvc queue kill fusion-late && dvc queue stop`" in err
