"""Interrupt a real `harfusion sweep --only fusion` or `harfusion loso --folds 3` (in turn) many
times in a row (default 20) and check each time that the workspace (params.yaml, every tracked
file, the index, `git stash`, HEAD) is exactly as it was, that the command exited within seconds
with 128 + the signal's number and no traceback, and that it said what it queued and how to stop
it.

    uv run python scripts/stress_signals.py [--trials 20] [--seed N]

Trials cycle through every moment (DVC queueing an experiment, DVC holding the stash, DVC
starting the workers, the sweep waiting) and every way the signal comes (SIGINT or SIGTERM to the
process group, SIGTERM to the process), each at a random point of its moment. Each runs in a copy
of one committed tiny clone; the queue workers a stopped sweep leaves running are killed after
the trial. Exits 1 if any trial failed. About 15 s a trial on 2 cores.
"""

from __future__ import annotations

import argparse
import itertools
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' helpers

from tests.clones import tiny_clone
from tests.interrupting import COMMANDS, HOWS, MOMENTS, interrupt_once


def main() -> int:
    parse = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parse.add_argument("--trials", type=int, default=20)
    parse.add_argument("--seed", type=int, default=random.randrange(10**6))
    args = parse.parse_args()
    rng = random.Random(args.seed)
    cases = itertools.cycle(itertools.product(MOMENTS, HOWS))
    print(f"seed {args.seed}", flush=True)
    failed = 0
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="stress-signals-") as scratch:
        base = tiny_clone(Path(scratch) / "base")
        for number in range(1, args.trials + 1):
            moment, how = next(cases)
            command = list(COMMANDS)[number % len(COMMANDS)]
            folder = Path(scratch) / f"trial{number}"
            trial = interrupt_once(base, folder, moment, how, rng, command)
            print(f"{number:3d}. {trial}", flush=True)
            if trial.problems:
                failed += 1
                print(trial.stderr, flush=True)
    passed = args.trials - failed
    took = time.monotonic() - started
    print(f"{passed} of {args.trials} passed in {took:.0f} s (seed {args.seed})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
