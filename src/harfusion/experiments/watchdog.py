"""What a sweep or LOSO does while DVC's queue stalls, so that it ends on its own.

DVC's queue workers can die (kombu's filesystem broker fails now and then; a SIGKILL, the OOM
killer). Two things are then left that DVC never resolves by itself:
- tasks queued with no worker to run them: the workers are restarted, a bounded number of times;
- a task shown as running whose worker died with it (DVC learns that a task ended only from its
  worker, so it stays `Running` for ever). The process that ran it is gone: DVC records it (its
  pid, and its exit status once its worker saw it end; `dvc_queue.process_running`). Gone for
  `ORPHAN_GRACE` seconds, the task is handed to `dvc queue kill`, which marks it failed only when
  no live worker holds it (DVC's own check), then queued once more; a second death counts as a
  failure, said in the summary and the exit status.
And after `--timeout` seconds, everything unfinished is named and the command gives up.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from harfusion.errors import HarfusionError
from harfusion.experiments.dvc_client import dvc
from harfusion.experiments.dvc_queue import live_workers, process_running

# Between a training's process ending and its worker marking the task done lie seconds (DVC
# copies the results back); a task whose process has been gone for this long has lost its worker.
ORPHAN_GRACE = 30.0


@dataclass
class Watchdog:
    say: Callable[[str], None]  # a line from the command that waits
    start_workers: Callable[[], None]
    # Queue an orphaned experiment again; returns why it cannot, or None once it is queued.
    requeue: Callable[[str], str | None] | None = None
    jobs: int = 1
    restarts: int = 3
    timeout: float | None = None
    grace: float = ORPHAN_GRACE
    restarted: int = 0
    idle_polls: int = 0
    gone_since: dict[str, float] = field(default_factory=dict)  # running, process gone since
    requeued: set[str] = field(default_factory=set)
    lost: dict[str, str] = field(default_factory=dict)  # failed because its worker died: why

    def check(self, states: dict[str, str], tasks: dict[str, str], elapsed: float) -> None:
        """`states`: name → queued | running | success | failed; `tasks`: name → its queue task
        (stash commit or its prefix), where known; `elapsed`: seconds since waiting began."""
        unfinished = [name for name, state in states.items() if state not in {"success", "failed"}]
        if self.timeout is not None and elapsed > self.timeout and unfinished:
            raise HarfusionError(
                f"--timeout {self.timeout:g} s passed; not finished: {', '.join(unfinished)} "
                "(`dvc queue status` shows them; `dvc queue kill` stops them)"
            )
        self.check_orphans(states, tasks, elapsed)
        self.check_workers([name for name in unfinished if states[name] == "queued"])

    def check_orphans(self, states: dict[str, str], tasks: dict[str, str], now: float) -> None:
        for name, state in states.items():
            if state != "running" or process_running(tasks.get(name)):
                self.gone_since.pop(name, None)
                continue
            since = self.gone_since.setdefault(name, now)
            if now - since < self.grace:
                continue
            # DVC marks it failed only if no live worker still holds it; else it is not lost.
            if dvc("queue", "kill", name, check=False).returncode != 0:
                self.gone_since[name] = now
                continue
            del self.gone_since[name]
            self.orphaned(name, now - since)

    def orphaned(self, name: str, gone: float) -> None:
        lost = f"{name}: its queue worker died while it ran (no process for {gone:.0f} s)"
        if name in self.requeued or self.requeue is None:
            self.lost[name] = "its queue worker died while it ran" + (
                ", twice" if name in self.requeued else ""
            )
            self.say(f"{lost}; counted as failed")
            return
        self.say(f"{lost}; queueing it again (once)")
        why_not = self.requeue(name)
        if why_not is not None:
            self.lost[name] = f"its queue worker died while it ran; not queued again: {why_not}"
            self.say(f"{name}: not queued again: {why_not}; counted as failed")
            return
        self.requeued.add(name)

    def check_workers(self, waiting: list[str]) -> None:
        # a worker takes a moment to register after `dvc queue start`: two polls in a row
        none = bool(waiting) and live_workers() == 0
        self.idle_polls = self.idle_polls + 1 if none else 0
        if self.idle_polls < 2:
            return
        if self.restarted >= self.restarts:
            raise HarfusionError(
                f"the queue workers died {self.restarted + 1} times; still queued: "
                f"{', '.join(waiting)} (their logs: .dvc/tmp/exps/celery/*.out)"
            )
        self.restarted += 1
        self.idle_polls = 0
        self.say(
            f"no live queue worker while {len(waiting)} experiment(s) wait; restarting "
            f"{self.jobs} worker(s) ({self.restarted}/{self.restarts})"
        )
        self.start_workers()
