"""Run the ablation sweep through DVC's experiment queue: queue, start workers, wait, report.

    python -m harfusion.sweep [--only GROUP|NAME,...] [-j N] [--seeds K] [-S key=value ...]

Every configuration of ablations.yaml (or the selected ones) becomes `dvc exp run --queue -n NAME
-S ...`; `dvc queue start -j N` runs them. Exits non-zero when any experiment failed, after saving
the failed tasks' logs and printing where they are.
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

from harfusion.ablations import Run, check_runs, expand, load_ablations, parse_set
from harfusion.errors import HarfusionError
from harfusion.experiments import FINAL, Experiment, dvc, show
from harfusion.threads import usable_cores

# Past a few workers, one training's data loading and evaluation contend for memory bandwidth
# more than another worker gains.
MAX_DEFAULT_JOBS = 4
LOG_DIR = Path("reports/sweep/logs")


def default_jobs(runs: int) -> int:
    """One single-threaded worker per core, at most MAX_DEFAULT_JOBS and one per run."""
    return max(1, min(usable_cores(), MAX_DEFAULT_JOBS, runs))


def worker_env(jobs: int) -> dict[str, str]:
    """Split the cores between the workers: N trainings with N threads each oversubscribe."""
    env = dict(os.environ)
    if jobs > 1 and "OMP_NUM_THREADS" not in env:
        env["OMP_NUM_THREADS"] = str(max(1, usable_cores() // jobs))
    return env


def queue(runs: list[Run]) -> None:
    """Queue every run; earlier finished experiments of the same names on this commit go first."""
    earlier = show().named({run.name for run in runs})
    busy = sorted(name for name, exp in earlier.items() if exp.state not in FINAL)
    if busy:
        raise HarfusionError(f"{busy} already queued or running; wait, or `dvc queue kill` them")
    if earlier:
        print(f"sweep: replacing the earlier results of {sorted(earlier)}")
        dvc("exp", "remove", *sorted(earlier))
    for run in runs:
        dvc("exp", "run", "--queue", "-n", run.name, *run.set_args())
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


def add_watchdog_options(parse: argparse.ArgumentParser) -> None:
    parse.add_argument(
        "--timeout", type=float, help="give up (exit 1) after this many seconds of waiting"
    )
    parse.add_argument(
        "--restarts",
        type=int,
        default=3,
        help="restart dead queue workers at most this many times (default 3)",
    )


def watchdog(args: argparse.Namespace, jobs: int) -> Watchdog:
    if args.timeout is not None and args.timeout <= 0:
        raise HarfusionError(f"--timeout must be positive, got {args.timeout:g}")
    if args.restarts < 0:
        raise HarfusionError(f"--restarts must be at least 0, got {args.restarts}")
    return Watchdog(jobs=jobs, restarts=args.restarts, timeout=args.timeout)


def parser() -> argparse.ArgumentParser:
    parse = argparse.ArgumentParser(
        prog="python -m harfusion.sweep",
        description="Queue the ablation configurations as DVC experiments and run them.",
    )
    parse.add_argument(
        "--only",
        action="append",
        help="comma-separated groups or configuration names (default: all), e.g. fusion,heads-8",
    )
    parse.add_argument(
        "-j", "--jobs", type=int, help="queue workers (default: one per core, at most 4)"
    )
    parse.add_argument(
        "--seeds", type=int, default=1, help="run each configuration with seeds 1..K (names *-sK)"
    )
    parse.add_argument(
        "-S",
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra override for every experiment, as `dvc exp run -S`",
    )
    parse.add_argument("--ablations", type=Path, default=Path("ablations.yaml"))
    parse.add_argument("--params", type=Path, default=Path("params.yaml"))
    parse.add_argument("--poll", type=float, default=10.0, help="seconds between status checks")
    add_watchdog_options(parse)
    parse.add_argument("--logs", type=Path, default=LOG_DIR, help="where failed tasks' logs go")
    parse.add_argument("--dry-run", action="store_true", help="print the DVC commands only")
    parse.add_argument(
        "--wait-only",
        action="store_true",
        help="queue and start nothing: wait for these experiments (after an interrupted sweep)",
    )
    return parse


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        only = [item for value in args.only or [] for item in value.split(",") if item]
        runs = expand(load_ablations(args.ablations).select(only), args.seeds, parse_set(args.set))
        check_runs(runs, args.params)
        jobs = args.jobs if args.jobs is not None else default_jobs(len(runs))
        if jobs < 1:
            raise HarfusionError(f"-j must be at least 1, got {jobs}")
        if args.dry_run:
            for run in runs:
                print(shlex.join(["dvc", "exp", "run", "--queue", "-n", run.name, *run.set_args()]))
            print(f"dvc queue start -j {jobs}")
            return 0
        if not args.wait_only:
            queue(runs)
            start(jobs)
        names = [run.name for run in runs]
        finished = wait(names, args.poll, watchdog(args, jobs))
        return 1 if report_failures(names, finished, args.logs) else 0
    except HarfusionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
