"""Run the ablation configurations (ablations.yaml) as DVC experiments through the queue.

    harfusion sweep [--only GROUP|NAME,...] [--seeds K] [--ensemble K] [-S key=value ...]
                    [-j N] [--shard I/N] [--push]

Every configuration (or the selected ones, once per seed) becomes `dvc exp run --queue -n NAME
-S ...`. Exits non-zero when any experiment failed, after saving the failed tasks' logs and
printing where they are.
"""

from __future__ import annotations

import argparse

from harfusion.experiments import interrupts, options, runner
from harfusion.experiments.ablations import (
    Run,
    check_runs,
    command_overrides,
    dataset_modalities,
    expand,
    load_ablations,
)


def add_plan_arguments(parse: argparse.ArgumentParser) -> None:
    """What to run: shared by `harfusion sweep` and `harfusion gather sweep`."""
    parse.add_argument(
        "--only",
        action="append",
        help="comma-separated groups or configuration names (default: all), e.g. fusion,heads-8",
    )
    options.add_run_options(
        parse,
        each="experiment",
        seeds="run each configuration with seeds 1..K (names *-sK)",
        ablations="the configurations' file",
    )


def plan(args: argparse.Namespace) -> list[Run]:
    """The experiments the options name, their params validated before anything is queued."""
    only = [item for value in args.only or [] for item in value.split(",") if item]
    extra = command_overrides(args.set, args.ensemble)
    ablations = load_ablations(args.ablations, dataset_modalities(args.params, extra))
    runs = expand(ablations.select(only), args.seeds, extra)
    check_runs(runs, args.params)
    return runs


def add_arguments(parse: argparse.ArgumentParser) -> None:
    add_plan_arguments(parse)
    runner.add_arguments(parse)


def run(args: argparse.Namespace) -> int:
    with interrupts.handled("sweep"):
        outcome = runner.execute(plan(args), args, who="sweep")
    return 1 if outcome and outcome.failed else 0
