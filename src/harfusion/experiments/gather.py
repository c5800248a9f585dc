"""Gather a sweep or LOSO whose shards ran on other machines, then summarize it as if it ran here.

    harfusion gather sweep [the sweep's --only/--seeds/-S] [--git-remote origin]
    harfusion gather loso  [the LOSO command's --config/--subjects/--seeds/--folds/-S]

Plans the same experiments as the command that ran the shards, `dvc exp pull`s those the git
remote holds for this commit, fetches from the DVC remote only what the summaries read (metrics,
split summary, confusion data; not models or tensors), then writes the comparison and report (or
the LOSO summary). Names the experiments the remote lacks, and exits 1 when any is missing.
"""

from __future__ import annotations

import argparse

from harfusion import layout
from harfusion.errors import HarfusionError
from harfusion.experiments import sweep
from harfusion.experiments.ablations import Run
from harfusion.experiments.comparison import compare
from harfusion.experiments.dvc_client import Experiment, show
from harfusion.experiments.loso import plan as loso_plan
from harfusion.experiments.loso.command import write_summary
from harfusion.experiments.remotes import fetch_summary_inputs, pull
from harfusion.experiments.report import write_report


def add_arguments(parse: argparse.ArgumentParser) -> None:
    kinds = parse.add_subparsers(dest="kind", required=True, metavar="{sweep,loso}")
    for name, module, summarize in (("sweep", sweep, _sweep), ("loso", loso_plan, _loso)):
        kind = kinds.add_parser(name, help=f"the experiments `harfusion {name}` plans")
        module.add_plan_arguments(kind)
        kind.add_argument(
            "--git-remote", default="origin", help="the git remote the shards pushed to"
        )
        kind.set_defaults(summarize=summarize)


def gathered(runs: list[Run], git_remote: str) -> tuple[dict[str, Experiment], list[str]]:
    """The planned experiments pulled from the remotes, and the names the git remote lacks."""
    names = [run.name for run in runs]
    missing = pull(names, git_remote)
    finished = show().named(set(names) - set(missing))
    fetch_summary_inputs([exp for exp in finished.values() if exp.state == "success"])
    return finished, missing


def _sweep(args: argparse.Namespace) -> list[str]:
    finished, missing = gathered(sweep.plan(args), args.git_remote)
    if not finished:
        raise HarfusionError(f"none of the planned experiments is on {args.git_remote!r}")
    compare(args.ablations, layout.COMPARISON)
    write_report(layout.COMPARISON, layout.REPORT, layout.LOSO / layout.LOSO_MARKDOWN)
    return missing


def _loso(args: argparse.Namespace) -> list[str]:
    planned = loso_plan.plan(args)
    finished, missing = gathered(planned.runs, args.git_remote)
    write_summary(args, planned, finished)
    return missing


def run(args: argparse.Namespace) -> int:
    """Pull, summarize; 1 when the git remote lacks any planned experiment."""
    return 1 if args.summarize(args) else 0
