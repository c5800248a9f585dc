"""Interrupt a real sweep or LOSO in a clone at a chosen moment and check what it left: shared
by tests/test_signals.py (a few trials) and scripts/stress_signals.py (many in a row).

A trial copies a committed tiny clone, makes uncommitted edits (one unstaged in params.yaml, one
staged in README.md), starts `harfusion sweep --only fusion` or `harfusion loso --folds 3` in a
session of its own, waits for the moment (DVC queueing an experiment, DVC starting the workers,
the command waiting), lets a random part of it pass, sends the signal, and compares the
workspace with git's own commands.
"""

from __future__ import annotations

import difflib
import os
import random
import re
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from tests.clones import HARFUSION, end_processes_in, env

# Each moment: what shows it has come, and how long it lasts at most here (the delay is drawn
# from 0 to that, so the signal lands anywhere in it).
MOMENTS = {
    "queueing": ("child:exp run --queue", 2.5),  # `dvc exp run --queue` runs, from its start
    "mid-stash": ("detached", 0.3),  # in it, DVC has detached HEAD and stashed the user's edits
    "starting": ("child:queue start", 1.5),  # `dvc queue start`
    "waiting": ("out:] queued: ", 3.0),  # polling `dvc exp show`
}
# How the signal comes: to the whole process group (Ctrl-C, a CI runner, `timeout -s INT`) or to
# the command's process alone (`kill PID`, a scheduler).
HOWS = {
    "SIGINT to the group": (signal.SIGINT, True),
    "SIGTERM to the group": (signal.SIGTERM, True),
    "SIGTERM to the process": (signal.SIGTERM, False),
}
# The commands that queue, each with three experiments.
COMMANDS = {
    "sweep": ["sweep", "--only", "fusion"],
    "loso": ["loso", "--folds", "3"],
}
# Not a signal one can catch: everything, DVC's own call included, dies on the spot.
KILL_ALL = "SIGKILL to all"
EXIT_WITHIN = 20.0  # seconds from the signal; one DVC call to finish plus start-up noise


@dataclass(frozen=True)
class Trial:
    command: str
    moment: str
    how: str
    delay: float
    exit_status: int | None
    seconds: float  # from the signal to the exit
    changed: dict[str, tuple[str, str]]  # what git shows differently: (before, after)
    stderr: str

    @property
    def problems(self) -> list[str]:
        signum, _ = HOWS[self.how]
        found = [f"{what} changed:\n{_diff(a, b)}" for what, (a, b) in self.changed.items()]
        if self.exit_status != 128 + signum:
            found.append(f"exit status {self.exit_status}, not {128 + signum}")
        if self.seconds > EXIT_WITHIN:
            found.append(f"exited {self.seconds:.1f} s after the signal")
        if "Traceback" in self.stderr:
            found.append("a traceback")
        if f"stopped by {signal.Signals(signum).name}" not in self.stderr:
            found.append("no line saying it stopped")
        if "nothing was queued" not in self.stderr and "dvc queue" not in self.stderr:
            found.append("queued experiments, but no word on how to run or stop them")
        return found

    def __str__(self) -> str:
        status = "ok" if not self.problems else "FAILED: " + "; ".join(self.problems)
        return (
            f"{self.command:5s} {self.moment:9s} {self.how:23s} +{self.delay:.2f} s: "
            f"exit {self.exit_status} after {self.seconds:.1f} s: {status}"
        )


def _diff(before: str, after: str, lines: int = 12) -> str:
    diff = difflib.unified_diff(before.splitlines(), after.splitlines(), "before", "after", n=0)
    return "\n".join(f"    {line}" for line in list(diff)[:lines])


def workspace_state(clone: Path) -> dict[str, str]:
    """The workspace as git shows it: what a signal must leave as it was."""

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=clone, capture_output=True, text=True).stdout

    return {
        "params.yaml": (clone / "params.yaml").read_text(),
        "git status": git("status", "--porcelain", "-uno"),
        "git diff": git("diff"),
        "git diff --cached": git("diff", "--cached"),
        "git stash list": git("stash", "list"),
        "HEAD": git("symbolic-ref", "-q", "HEAD") + git("rev-parse", "HEAD"),
    }


def edit(clone: Path) -> None:
    """A user's uncommitted work: an unstaged params edit and a staged README edit."""
    params = clone / "params.yaml"
    params.write_text(re.sub(r"(?m)^heads: \d+$", "heads: 2", params.read_text()))
    readme = clone / "README.md"
    readme.write_text(readme.read_text() + "\nA line of my own.\n")
    subprocess.run(["git", "add", "README.md"], cwd=clone, check=True)


def _reached(process: subprocess.Popen, sign: str, clone: Path, out: Path) -> bool:
    kind, _, text = sign.partition(":")
    if kind == "out":
        return text in out.read_text()
    if kind == "detached":
        return not (clone / ".git" / "HEAD").read_text().startswith("ref:")
    try:
        children = psutil.Process(process.pid).children(recursive=True)
        return any(text in " ".join(child.cmdline()) for child in children)
    except psutil.Error:
        return False


def _settle(clone: Path, timeout: float = 30) -> None:
    """Wait until no `dvc exp run` works in `clone` any more: a DVC call the signal reached may
    still be restoring the workspace after the sweep itself has gone."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        busy = False
        for process in psutil.process_iter(["cmdline", "cwd"]):
            command = " ".join(process.info["cmdline"] or [])
            busy |= process.info["cwd"] == str(clone) and "exp run" in command
        if not busy:
            return
        time.sleep(0.1)


def interrupt_once(
    base: Path, trial: Path, moment: str, how: str, rng: random.Random, command: str = "sweep"
) -> Trial:
    """One trial of `command` in a copy of `base` (a committed tiny clone) at `trial`."""
    shutil.copytree(base, trial, symlinks=True)
    edit(trial)
    before = workspace_state(trial)
    sign, longest = MOMENTS[moment]
    out, err = trial.parent / f"{trial.name}.out", trial.parent / f"{trial.name}.err"
    with out.open("w") as stdout, err.open("w") as stderr:
        process = subprocess.Popen(
            [*HARFUSION, *COMMANDS[command], "-j", "1", "--poll", "1"],
            cwd=trial,
            env=env(trial),
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,  # its own process group, as a shell's job is
        )
    try:
        deadline = time.monotonic() + 180
        while not _reached(process, sign, trial, out):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{command} never reached {moment!r}:\n{out.read_text()}")
            time.sleep(0.01)
        delay = 0.0 if how == KILL_ALL else rng.uniform(0, longest)
        time.sleep(delay)
        sent = time.monotonic()
        if how == KILL_ALL:
            os.killpg(process.pid, signal.SIGKILL)
            end_processes_in(trial)
        else:
            signum, group = HOWS[how]
            (os.killpg if group else os.kill)(process.pid, signum)
        try:
            status: int | None = process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            status = None
        seconds = time.monotonic() - sent
        _settle(trial)
        after = workspace_state(trial)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        end_processes_in(trial)  # the queue workers the command left running, as it says
    changed = {key: (before[key], after[key]) for key in before if before[key] != after[key]}
    if status is not None and status < 0:  # killed by the signal itself (no handler)
        status = 128 - status
    return Trial(command, moment, how, delay, status, seconds, changed, err.read_text())
