"""DVC's experiment queue as its Python API reports it: each task's state, the live workers, and
whether the process that runs a task is alive.

`dvc queue status` prints the first two as a table and a sentence, with no JSON form; these are
the calls it makes, so nothing here depends on DVC's wording. tests/test_dvc_reads.py holds them
to the installed DVC. The queue is read while DVC's workers change it (and its broker fails now
and then): a read that fails says "not known now" (None), and the next poll asks again.
"""

from __future__ import annotations

import contextlib
from collections.abc import Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import psutil

from harfusion.errors import HarfusionError
from harfusion.experiments.dvc_client import project

if TYPE_CHECKING:
    from dvc.repo.experiments.queue.celery import LocalCeleryQueue

# DVC's task states (`status()`), as the runner names an experiment's.
STATES = {"Queued": "queued", "Running": "running", "Success": "success", "Failed": "failed"}


@dataclass(frozen=True)
class Task:
    rev: str  # its stash commit: what DVC's process record and `exp show` call it
    state: str  # queued | running | success | failed


@contextlib.contextmanager
def _queue() -> Generator[LocalCeleryQueue]:
    with project() as repo:
        yield repo.experiments.celery_queue


def tasks() -> dict[str, Task] | None:
    """Each named task of the queue by its experiment's name; None when it cannot be read now.
    Unlike `dvc exp show`, this answers even while a dead worker's half-made temporary workspace
    makes `exp show` fail."""
    try:
        with _queue() as queue:
            entries = queue.status()
    except Exception:  # any failure of a read while workers change the queue: ask again later
        return None
    return {
        entry["name"]: Task(entry["rev"], state(entry["status"]))
        for entry in entries
        if entry.get("name")
    }


def state(status: str) -> str:
    """A task's state in the runner's words; a state DVC never had refused, since the runner
    would wait on it for ever (neither queued, running nor finished)."""
    try:
        return STATES[status]
    except KeyError:
        raise HarfusionError(
            f"DVC's queue reports a task {status!r}, none of {', '.join(STATES)}: "
            "a DVC this version of harfusion does not know"
        ) from None


def live_workers() -> int | None:
    """Queue workers that answer (busy or idle); None when the queue cannot be asked now."""
    try:
        with _queue() as queue:
            return len(queue.worker_status())
    except Exception:  # as in `tasks`
        return None


def process_running(task: str | None) -> bool:
    """Whether the process that runs queue task `task` (its stash commit) is alive by DVC's
    record of it. False before it started (DVC prepares a temporary workspace first), after it
    ended, and when its pid now belongs to another program; True when the record cannot be read
    now (not known to be gone: the watchdog kills what is gone)."""
    if not task:
        return False
    try:
        with _queue() as queue:
            info = queue.proc.get(task)
    except Exception:  # as in `tasks`
        return True
    if info is None or info.returncode is not None:
        return False
    try:
        process = psutil.Process(info.pid)
        return process.status() != psutil.STATUS_ZOMBIE and any(
            "dvc" in part for part in process.cmdline()
        )
    except psutil.Error:
        return False
