"""Run planned experiments through DVC's experiment queue, for the sweep and LOSO alike: queue,
start workers, watch them, report failures; on one machine or as one shard of several.

Each experiment becomes `dvc exp run --queue -n NAME -S ...`; `dvc queue start -j N` runs them.
With a default DVC remote, experiments are queued with `--pull`: a stage that already ran anywhere
with the same deps and params (the remote's run-cache) is restored, not run again. `--push` sends
every finished experiment to a git remote, its outputs and the run-cache to the DVC remote.

Stopped by a signal at any moment, the command leaves the workspace as it was (`interrupts`,
`workspace`), says what it queued and how to stop what goes on in the background, and exits with
128 + the signal's number.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from harfusion import layout
from harfusion.errors import HarfusionError
from harfusion.experiments import dvc_queue, interrupts, options, workspace
from harfusion.experiments.ablations import Run
from harfusion.experiments.dvc_client import FINAL, Experiment, dvc, show
from harfusion.experiments.dvc_log import restored_stages
from harfusion.experiments.remotes import default_dvc_remote, push
from harfusion.experiments.shards import Shard
from harfusion.experiments.watchdog import Watchdog
from harfusion.threads import usable_cores

# Past a few workers, one training's data loading and evaluation contend for memory bandwidth
# more than another worker gains.
MAX_DEFAULT_JOBS = 4
TRAINING = "train"  # the stage whose restoring from the run-cache saves a training


def default_jobs(runs: int) -> int:
    """One single-threaded worker per core, at most MAX_DEFAULT_JOBS and one per run."""
    return max(1, min(usable_cores(), MAX_DEFAULT_JOBS, runs))


def worker_env(jobs: int) -> dict[str, str]:
    """Split the cores between the workers: N trainings with N threads each oversubscribe."""
    env = dict(os.environ)
    if jobs > 1 and "OMP_NUM_THREADS" not in env:
        env["OMP_NUM_THREADS"] = str(max(1, usable_cores() // jobs))
    return env


def queue_args(run: Run, pull: bool) -> list[str]:
    """`dvc exp run` arguments; `--pull` restores stages from the DVC remote's run-cache."""
    return ["exp", "run", "--queue", *(["--pull"] if pull else []), "-n", run.name, *run.set_args()]


@dataclass
class Runner:
    """One command's experiments on their way through the queue; `who` (the command: sweep or
    loso) is how its lines begin."""

    who: str
    runs: dict[str, Run]
    jobs: int
    pull: bool = False
    queued: list[str] = field(default_factory=list)  # by this command, in order
    started: bool = False
    states: dict[str, str] = field(default_factory=dict)  # as the last poll saw them
    queued_from: workspace.Snapshot | None = None  # the workspace as the runs were queued
    blind: bool = False  # `dvc exp show` fails; `dvc queue status` stands in

    def say(self, text: str, err: bool = False) -> None:
        print(f"{self.who}: {text}", file=sys.stderr if err else sys.stdout, flush=True)

    def queue(self) -> None:
        """Queue every run; earlier finished experiments of the same names on this commit go
        first."""
        earlier = show().named(set(self.runs))
        busy = sorted(name for name, exp in earlier.items() if exp.state not in FINAL)
        if busy:
            raise HarfusionError(
                f"{busy} already queued or running; wait, or `dvc queue kill` them"
            )
        if earlier:
            self.say(f"replacing the earlier results of {sorted(earlier)}")
            with interrupts.deferred("`dvc exp remove`"):
                dvc("exp", "remove", *sorted(earlier), start_new_session=True)
        self.queued_from = workspace.Snapshot.take()
        for run in self.runs.values():
            self.queue_one(run)

    def queue_one(self, run: Run) -> None:
        what = f"`dvc exp run --queue` of {run.name}"
        with interrupts.deferred(what), workspace.held_by_dvc(self.who, what):
            dvc(*queue_args(run, self.pull), start_new_session=True)
            self.queued.append(run.name)  # before a signal noted meanwhile takes effect
        self.say(f"queued {run.name} ({shlex.join(run.set_args())})")

    def start(self) -> None:
        # The workers outlive this call and inherit its stdout: a pipe would block until they
        # exit. Its own session: a signal to this command's group reaches neither it nor them.
        with interrupts.deferred("`dvc queue start`"), tempfile.TemporaryFile("w+") as out:
            result = subprocess.run(
                [sys.executable, "-m", "dvc", "queue", "start", "-j", str(self.jobs)],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=worker_env(self.jobs),
                start_new_session=True,
            )
            out.seek(0)
            message = out.read().strip()
            self.started |= result.returncode == 0
        if result.returncode != 0:
            raise HarfusionError(f"`dvc queue start -j {self.jobs}` failed:\n{message}")
        self.say(message)

    def requeue(self, name: str) -> str | None:
        """Queue `name` once more after its worker died; why not, or None once it is queued."""
        if self.queued_from is None:
            return "an earlier command queued it, from a workspace this one cannot check"
        if workspace.Snapshot.take() != self.queued_from:
            return "the workspace changed since it was queued, so it would run other params"
        with interrupts.deferred("`dvc exp remove`"):
            dvc("exp", "remove", name, start_new_session=True)
        self.queue_one(self.runs[name])
        self.start()
        return None

    def observe(self, names: list[str]) -> tuple[dict[str, str], dict[str, str], dict | None]:
        """(state and queue task of each name, `exp show`'s experiments or None when it fails:
        then the queue's own record says the states until it works again)."""
        try:
            current = show(attempts=2).named(set(names))
        except HarfusionError as exc:
            tasks = dvc_queue.tasks()
            if not tasks:
                raise
            if not self.blind:
                reason = str(exc).splitlines()[-1]
                self.say(f"`dvc exp show` fails ({reason}); following `dvc queue status`", err=True)
            self.blind = True
            known = {name: tasks[name] for name in names if name in tasks}
            states = {
                n: known[n].state if n in known else self.states.get(n, "queued") for n in names
            }
            return states, {name: task.rev for name, task in known.items()}, None
        self.blind = False
        # An experiment that vanished (removed by hand) will never finish: count it as failed.
        states = {name: current[name].state if name in current else "failed" for name in names}
        return states, {name: exp.rev for name, exp in current.items()}, current

    def wait(self, names: list[str], poll: float, watchdog: Watchdog) -> dict[str, Experiment]:
        """Poll until every named experiment succeeded or failed; print changes."""
        started = time.monotonic()
        while True:
            now, tasks, current = self.observe(names)
            changed: dict[str, list[str]] = {}
            for name in names:
                if self.states.get(name) != now[name]:
                    changed.setdefault(now[name], []).append(name)
            self.states = now
            elapsed = time.monotonic() - started
            minutes, seconds = divmod(int(elapsed), 60)
            done = sum(state in FINAL for state in now.values())
            for state, which in changed.items():
                self.say(
                    f"[{minutes:3d}:{seconds:02d}] {state}: {', '.join(which)} "
                    f"({done}/{len(names)} done)"
                )
            if done == len(names) and current is not None:
                return current
            watchdog.check(now, tasks, elapsed)
            time.sleep(poll)

    def stopped(self, signal_name: str, planned: int) -> None:
        """What a signal leaves behind: what was queued, what goes on without this command,
        and how to stop it."""
        if not self.queued:
            self.say(f"stopped by {signal_name}; nothing was queued", err=True)
            return
        queued = " ".join(self.queued)
        if not self.started:
            self.say(
                f"stopped by {signal_name}; queued {len(self.queued)} of {planned}: {queued}; "
                f"no worker runs them. Run them: `dvc queue start -j {self.jobs}`; drop them: "
                f"`dvc queue remove {queued}`",
                err=True,
            )
            return
        running = [n for n in self.queued if self.states.get(n) == "running"]
        waiting = [n for n in self.queued if self.states.get(n, "queued") == "queued"]
        done = [n for n in self.queued if self.states.get(n) in FINAL]
        self.say(
            f"stopped by {signal_name}; DVC's queue workers go on in the background with what "
            f"this command queued (running: {' '.join(running) or '-'}; queued: "
            f"{' '.join(waiting) or '-'}; finished: {' '.join(done) or '-'}).\n"
            "  Wait for them again: the same command with --wait-only; watch: `dvc queue status`"
            "\n  Stop them: `"
            + " && ".join(
                [f"dvc queue remove {' '.join(waiting)}"] * bool(waiting)
                + [f"dvc queue kill {' '.join(running)}"] * bool(running)
                + ["dvc queue stop"]
            )
            + "`",
            err=True,
        )


def report_failures(
    names: list[str],
    finished: dict[str, Experiment],
    log_dir: Path,
    lost: dict[str, str] | None = None,
    who: str = "sweep",
) -> int:
    """Print each failed experiment with its log path and last lines (and why, when its worker
    died under it); return how many failed."""
    lost = lost or {}
    failed = [name for name in names if name not in finished or finished[name].state == "failed"]
    if not failed:
        print(f"{who}: all {len(names)} experiments succeeded")
        return 0
    print(f"{who}: {len(failed)} of {len(names)} experiments failed:", file=sys.stderr)
    for name in failed:
        path = save_log(name, log_dir)
        dvc_log = finished[name].log if name in finished else None
        print(
            f"  {name}: log {path}"
            + (f" (DVC's: {dvc_log})" if dvc_log else "")
            + (f": {lost[name]}" if name in lost else ""),
            file=sys.stderr,
        )
        tail = [line for line in path.read_text().splitlines() if line.strip()][-3:]
        for line in tail:
            print(f"      {line}", file=sys.stderr)
    return len(failed)


def task_log(name: str, experiment: Experiment | None) -> str:
    """The queue task's log: DVC's file when `exp show` names it, else `dvc queue logs`."""
    if experiment is not None and experiment.log and Path(experiment.log).is_file():
        return Path(experiment.log).read_text(errors="replace")
    result = dvc("queue", "logs", name, check=False)
    return result.stdout + result.stderr


def save_log(name: str, log_dir: Path) -> Path:
    """Keep a failed task's log beside the reports (DVC's copy goes with `dvc exp remove`)."""
    result = dvc("queue", "logs", name, check=False)
    path = log_dir / f"{name}.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(result.stdout + result.stderr)
    return path


def report_restored(
    names: list[str], finished: dict[str, Experiment], who: str = "sweep"
) -> list[str]:
    """Say which succeeded experiments took their training from the run-cache; return them."""
    succeeded = [name for name in names if name in finished and finished[name].state == "success"]
    restored = []
    for name in succeeded:
        stages = restored_stages(task_log(name, finished[name]))
        if TRAINING in stages:
            restored.append(name)
            print(f"{who}: {name}: restored from the run-cache, not run: {', '.join(stages)}")
    print(
        f"{who}: {len(restored)} of {len(succeeded)} trainings restored from the run-cache "
        f"(stage '{TRAINING}' not run)",
        flush=True,
    )
    return restored


def add_arguments(parse: argparse.ArgumentParser) -> None:
    """The options of every command that runs experiments through the queue."""
    parse.add_argument(
        "-j",
        "--jobs",
        type=options.count(1, options.MAX_JOBS, "-j"),
        help="queue workers (default: one per core, at most 4)",
    )
    parse.add_argument(
        "--poll",
        type=options.seconds(options.MAX_POLL, "--poll"),
        default=10.0,
        help="seconds between status checks (default 10)",
    )
    parse.add_argument(
        "--timeout",
        type=options.seconds(float(2**31), "--timeout"),
        help="give up (exit 1) after this many seconds of waiting",
    )
    parse.add_argument(
        "--restarts",
        type=options.count(0, options.MAX_RESTARTS, "--restarts"),
        default=3,
        help="restart dead queue workers at most this many times (default 3)",
    )
    parse.add_argument(
        "--logs", type=Path, default=layout.SWEEP_LOGS, help="where failed tasks' logs go"
    )
    parse.add_argument(
        "--shard",
        metavar="I/N",
        type=Shard.argument,
        help="run only the I-th of N disjoint slices of the experiments (one per machine)",
    )
    parse.add_argument(
        "--push",
        action="store_true",
        help="`dvc exp push --run-cache` every finished experiment (needs a default DVC remote)",
    )
    parse.add_argument(
        "--git-remote", default="origin", help="the git remote --push sends experiments to"
    )
    parse.add_argument("--dry-run", action="store_true", help="print the DVC commands only")
    parse.add_argument(
        "--wait-only",
        action="store_true",
        help="queue and start nothing: wait for these experiments (after an interrupted run)",
    )


@dataclass(frozen=True)
class Outcome:
    runs: list[Run]  # the runs of this machine (its shard)
    finished: dict[str, Experiment]
    failed: int
    restored: list[str]


def check_folder(path: Path, option: str) -> None:
    """Before anything is queued: an output folder that cannot be one fails now, not at the end."""
    existing = next((p for p in (path, *path.parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():
        raise HarfusionError(f"{option} {path}: {existing} is a file, not a folder")


def execute(runs: list[Run], args: argparse.Namespace, who: str) -> Outcome | None:
    """Run `runs` (this machine's shard of them) as `args` say; None after a dry run. `who` is
    the command (sweep, loso) its lines speak as."""
    shard: Shard | None = args.shard
    if shard is not None:
        total, runs = len(runs), shard.take(runs)
        print(f"{who}: shard {shard}: {len(runs)} of {total} experiments", flush=True)
    jobs = args.jobs if args.jobs is not None else default_jobs(len(runs))
    check_folder(args.logs, "--logs")
    runner = Runner(who, {run.name: run for run in runs}, jobs)
    with interrupts.handled(who):
        try:
            return _execute(runner, args)
        except interrupts.Interrupted as exc:
            runner.stopped(exc.name, len(runs))
            raise SystemExit(exc.exit_status) from None


def _execute(runner: Runner, args: argparse.Namespace) -> Outcome | None:
    names = list(runner.runs)
    workspace.check_no_leftovers()  # what a queueing killed by SIGKILL left
    storage = default_dvc_remote()
    if args.push and storage is None:
        raise HarfusionError(
            "--push: no default DVC remote to send outputs and run-cache to; add one with "
            "`dvc remote add -d <name> <url>`"
        )
    runner.pull = storage is not None
    if args.dry_run:
        for run in runner.runs.values():
            print(shlex.join(["dvc", *queue_args(run, runner.pull)]))
        print(f"dvc queue start -j {runner.jobs}")
        if args.push and names:
            print(shlex.join(["dvc", "exp", "push", "--run-cache", args.git_remote, *names]))
        return None
    if not names:
        return Outcome([], {}, 0, [])
    if not args.wait_only:
        if storage is not None:
            runner.say(f"stages that already ran anywhere come from DVC remote {storage!r}")
        runner.queue()
        runner.start()
    watchdog = Watchdog(
        say=runner.say,
        start_workers=runner.start,
        requeue=runner.requeue,
        jobs=runner.jobs,
        restarts=args.restarts,
        timeout=args.timeout,
    )
    finished = runner.wait(names, args.poll, watchdog)
    failed = report_failures(names, finished, args.logs, watchdog.lost, runner.who)
    restored = report_restored(names, finished, runner.who)
    if args.push:
        succeeded = [n for n in names if n in finished and finished[n].state == "success"]
        pushed = push(succeeded, args.git_remote, storage)
        if pushed:
            runner.say(pushed)
    return Outcome(list(runner.runs.values()), finished, failed, restored)
