"""Run planned experiments through DVC's experiment queue, for the sweep and LOSO alike: queue,
start workers, watch them, report failures; on one machine or as one shard of several.

Each experiment becomes `dvc exp run --queue -n NAME -S ...`; `dvc queue start -j N` runs them.
With a default DVC remote, experiments are queued with `--pull`: a stage that already ran anywhere
with the same deps and params (the remote's run-cache) is restored, not run again. `--push` sends
every finished experiment to a git remote, its outputs and the run-cache to the DVC remote.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from harfusion import layout
from harfusion.errors import HarfusionError
from harfusion.experiments.ablations import Run
from harfusion.experiments.dvc_client import FINAL, Experiment, dvc, show
from harfusion.experiments.remotes import default_dvc_remote, push
from harfusion.experiments.shards import Shard
from harfusion.threads import usable_cores

# Past a few workers, one training's data loading and evaluation contend for memory bandwidth
# more than another worker gains.
MAX_DEFAULT_JOBS = 4
TRAINING = "train"  # the stage whose restoring from the run-cache saves a training
RESTORED = re.compile(r"^Stage '([^']+)' is cached - skipping run", re.MULTILINE)


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


def queue(runs: list[Run], pull: bool = False) -> None:
    """Queue every run; earlier finished experiments of the same names on this commit go first."""
    earlier = show().named({run.name for run in runs})
    busy = sorted(name for name, exp in earlier.items() if exp.state not in FINAL)
    if busy:
        raise HarfusionError(f"{busy} already queued or running; wait, or `dvc queue kill` them")
    if earlier:
        print(f"sweep: replacing the earlier results of {sorted(earlier)}")
        dvc("exp", "remove", *sorted(earlier))
    for run in runs:
        dvc(*queue_args(run, pull))
        print(f"sweep: queued {run.name} ({shlex.join(run.set_args())})", flush=True)


def start(jobs: int) -> None:
    # The workers outlive this call and inherit its stdout: a pipe would block until they exit.
    with tempfile.TemporaryFile("w+") as out:
        result = subprocess.run(
            [sys.executable, "-m", "dvc", "queue", "start", "-j", str(jobs)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=worker_env(jobs),
        )
        out.seek(0)
        message = out.read().strip()
    if result.returncode != 0:
        raise HarfusionError(f"`dvc queue start -j {jobs}` failed:\n{message}")
    print(f"sweep: {message}", flush=True)


def live_workers() -> int | None:
    """Queue workers alive (active + idle) as `dvc queue status` counts them; None if unsaid."""
    text = dvc("queue", "status", check=False).stdout
    match = re.search(r"Worker status: (\d+) active, (\d+) idle", text)
    return int(match[1]) + int(match[2]) if match else None


@dataclass
class Watchdog:
    """What `wait` does when the queue stalls: DVC's workers can die (kombu's filesystem broker
    fails now and then), leaving tasks queued for ever; restart them a bounded number of times,
    and give up after `timeout` seconds overall."""

    jobs: int = 1
    restarts: int = 3
    timeout: float | None = None
    restarted: int = 0
    idle_polls: int = 0

    def check(self, states: dict[str, str], elapsed: float) -> None:
        unfinished = [name for name, state in states.items() if state not in FINAL]
        if self.timeout is not None and elapsed > self.timeout and unfinished:
            raise HarfusionError(
                f"--timeout {self.timeout:g} s passed; not finished: {', '.join(unfinished)} "
                "(`dvc queue status` shows them; `dvc queue kill` stops them)"
            )
        waiting = [name for name in unfinished if states[name] == "queued"]
        # a worker takes a moment to register after `dvc queue start`: two polls in a row
        self.idle_polls = self.idle_polls + 1 if waiting and live_workers() == 0 else 0
        if self.idle_polls < 2:
            return
        if self.restarted >= self.restarts:
            raise HarfusionError(
                f"the queue workers died {self.restarted + 1} times; still queued: "
                f"{', '.join(waiting)} (their logs: .dvc/tmp/exps/celery/*.out)"
            )
        self.restarted += 1
        self.idle_polls = 0
        print(
            f"sweep: no live queue worker while {len(waiting)} experiment(s) wait; restarting "
            f"{self.jobs} worker(s) ({self.restarted}/{self.restarts})",
            flush=True,
        )
        start(self.jobs)


def wait(names: list[str], poll: float, watchdog: Watchdog | None = None) -> dict[str, Experiment]:
    """Poll `dvc exp show` until every named experiment succeeded or failed; print changes."""
    watchdog = watchdog or Watchdog()
    started = time.monotonic()
    states: dict[str, str] = {}
    while True:
        current = show().named(set(names))
        # An experiment that vanished (removed by hand) will never finish: count it as failed.
        now = {name: current[name].state if name in current else "failed" for name in names}
        changed: dict[str, list[str]] = {}
        for name in names:
            if states.get(name) != now[name]:
                changed.setdefault(now[name], []).append(name)
        states = now
        elapsed = time.monotonic() - started
        minutes, seconds = divmod(int(elapsed), 60)
        done = sum(state in FINAL for state in states.values())
        for state, which in changed.items():
            print(
                f"sweep: [{minutes:3d}:{seconds:02d}] {state}: {', '.join(which)} "
                f"({done}/{len(names)} done)",
                flush=True,
            )
        if done == len(names):
            return current
        watchdog.check(states, elapsed)
        time.sleep(poll)


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


def report_failures(names: list[str], finished: dict[str, Experiment], log_dir: Path) -> int:
    """Print each failed experiment with its log path and last lines; return how many failed."""
    failed = [name for name in names if name not in finished or finished[name].state == "failed"]
    if not failed:
        print(f"sweep: all {len(names)} experiments succeeded")
        return 0
    print(f"sweep: {len(failed)} of {len(names)} experiments failed:", file=sys.stderr)
    for name in failed:
        path = save_log(name, log_dir)
        dvc_log = finished[name].log if name in finished else None
        print(
            f"  {name}: log {path}" + (f" (DVC's: {dvc_log})" if dvc_log else ""), file=sys.stderr
        )
        tail = [line for line in path.read_text().splitlines() if line.strip()][-3:]
        for line in tail:
            print(f"      {line}", file=sys.stderr)
    return len(failed)


def restored_stages(log: str) -> list[str]:
    """The stages DVC restored from the run-cache instead of running, as its log says."""
    return RESTORED.findall(log)


def report_restored(names: list[str], finished: dict[str, Experiment]) -> list[str]:
    """Say which succeeded experiments took their training from the run-cache; return them."""
    succeeded = [name for name in names if name in finished and finished[name].state == "success"]
    restored = []
    for name in succeeded:
        stages = restored_stages(task_log(name, finished[name]))
        if TRAINING in stages:
            restored.append(name)
            print(f"sweep: {name}: restored from the run-cache, not run: {', '.join(stages)}")
    print(
        f"sweep: {len(restored)} of {len(succeeded)} trainings restored from the run-cache "
        f"(stage '{TRAINING}' not run)",
        flush=True,
    )
    return restored


def add_arguments(parse: argparse.ArgumentParser) -> None:
    """The options of every command that runs experiments through the queue."""
    parse.add_argument(
        "-j", "--jobs", type=int, help="queue workers (default: one per core, at most 4)"
    )
    parse.add_argument("--poll", type=float, default=10.0, help="seconds between status checks")
    parse.add_argument(
        "--timeout", type=float, help="give up (exit 1) after this many seconds of waiting"
    )
    parse.add_argument(
        "--restarts",
        type=int,
        default=3,
        help="restart dead queue workers at most this many times (default 3)",
    )
    parse.add_argument(
        "--logs", type=Path, default=layout.SWEEP_LOGS, help="where failed tasks' logs go"
    )
    parse.add_argument(
        "--shard",
        metavar="I/N",
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


def watchdog(args: argparse.Namespace, jobs: int) -> Watchdog:
    if args.timeout is not None and args.timeout <= 0:
        raise HarfusionError(f"--timeout must be positive, got {args.timeout:g}")
    if args.restarts < 0:
        raise HarfusionError(f"--restarts must be at least 0, got {args.restarts}")
    return Watchdog(jobs=jobs, restarts=args.restarts, timeout=args.timeout)


@dataclass(frozen=True)
class Outcome:
    runs: list[Run]  # the runs of this machine (its shard)
    finished: dict[str, Experiment]
    failed: int
    restored: list[str]


def execute(runs: list[Run], args: argparse.Namespace) -> Outcome | None:
    """Run `runs` (this machine's shard of them) as `args` say; None after a dry run."""
    shard = Shard.parse(args.shard) if args.shard else None
    if shard is not None:
        total, runs = len(runs), shard.take(runs)
        print(f"sweep: shard {shard}: {len(runs)} of {total} experiments", flush=True)
    jobs = args.jobs if args.jobs is not None else default_jobs(len(runs))
    if jobs < 1:
        raise HarfusionError(f"-j must be at least 1, got {jobs}")
    storage = default_dvc_remote()
    if args.push and storage is None:
        raise HarfusionError(
            "--push: no default DVC remote to send outputs and run-cache to; add one with "
            "`dvc remote add -d <name> <url>`"
        )
    names = [run.name for run in runs]
    if args.dry_run:
        for run in runs:
            print(shlex.join(["dvc", *queue_args(run, storage is not None)]))
        print(f"dvc queue start -j {jobs}")
        if args.push and names:
            print(shlex.join(["dvc", "exp", "push", "--run-cache", args.git_remote, *names]))
        return None
    if not runs:
        return Outcome(runs, {}, 0, [])
    if not args.wait_only:
        if storage is not None:
            print(f"sweep: stages that already ran anywhere come from DVC remote {storage!r}")
        queue(runs, pull=storage is not None)
        start(jobs)
    finished = wait(names, args.poll, watchdog(args, jobs))
    failed = report_failures(names, finished, args.logs)
    restored = report_restored(names, finished)
    if args.push:
        succeeded = [n for n in names if n in finished and finished[n].state == "success"]
        push(succeeded, args.git_remote, storage)
    return Outcome(runs, finished, failed, restored)
