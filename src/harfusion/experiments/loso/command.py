"""Leave-one-subject-out: one DVC experiment per held-out test subject (and seed), validation on
the next subject, then pooled out-of-fold macro F1 and the mean ± std over folds.

    harfusion loso [--config fusion-hybrid] [--subjects 101,102,...] [--seeds K]
                   [--ensemble K] [-j N] [--shard I/N] [--push]

Shard splits let one subject's other activities into training; only whole held-out subjects say
how a model does on a person it has never seen, which is what a wearable has to do.
"""

from __future__ import annotations

import argparse

from harfusion.experiments import interrupts, runner
from harfusion.experiments.ablations import command_overrides
from harfusion.experiments.dvc_client import Experiment
from harfusion.experiments.loso import render
from harfusion.experiments.loso.outputs import read_folds
from harfusion.experiments.loso.plan import Plan, add_plan_arguments, plan, warn_untrainable
from harfusion.experiments.loso.scores import summarize_folds
from harfusion.params import Params


def write_summary(args: argparse.Namespace, planned: Plan, finished: dict[str, Experiment]) -> None:
    """Write loso.json and loso.md from the finished folds' experiments and print the table."""
    summary = summarize_folds(planned.runs, finished, read_folds(finished))
    ran = next(finished[r["experiment"]] for r in summary["folds"]).params
    ran_with = Params.model_validate(ran) if ran else planned.params
    overrides = planned.config.overrides | command_overrides(args.set, args.ensemble)
    summary["protocol"] = {
        "data_source": render.data_source(ran_with),
        "raw_dir": ran_with.data.raw_dir,
        "test_subjects": planned.subjects,
        "seeds": sorted({row["seed"] for row in summary["folds"]}),
        "config": planned.config.name,
        "overrides": overrides,
    }
    text = render.markdown(summary, planned.config, ran_with, overrides)
    render.write(args.out, summary, f"Leave-one-subject-out: {planned.config.name}", text)
    print(text)


def add_arguments(parse: argparse.ArgumentParser) -> None:
    add_plan_arguments(parse)
    runner.add_arguments(parse)


def run(args: argparse.Namespace) -> int:
    with interrupts.handled("loso"):
        planned = plan(args)
        warn_untrainable(planned.params, planned.subjects)
        outcome = runner.execute(planned.runs, args, who="loso")
        if outcome is None:
            return 0
        if args.shard is not None and args.shard.count > 1:
            print(
                f"loso: shard {args.shard} done; once every shard has pushed, `harfusion gather "
                "loso` with this command's other options summarizes all folds"
            )
        else:
            write_summary(args, planned, outcome.finished)
        return 1 if outcome.failed else 0
