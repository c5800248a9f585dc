"""Which folds LOSO runs: the subjects, one fold per test subject (validated on the next one) and
seed, and which activities a fold cannot learn because only held-out subjects hold them. Shared
by `harfusion loso` and `harfusion gather loso`, which must plan the very same experiments."""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harfusion import layout
from harfusion.data.description import Description, load_description
from harfusion.data.recordings import find_recordings, read_recording
from harfusion.errors import HarfusionError
from harfusion.experiments import options, runner
from harfusion.experiments.ablations import (
    Config,
    Run,
    check_runs,
    command_overrides,
    dataset_modalities,
    expand,
    load_ablations,
)
from harfusion.experiments.loso.render import join
from harfusion.params import Params, load_params


def subjects_of(params: Params, chosen: list[int] | None) -> list[int]:
    """`--subjects`, or the synthetic set's subjects when the pipeline reads synthetic data."""
    if chosen:
        subjects = chosen
    elif params.data.raw_dir == params.data.synthetic.out_dir:
        subjects = params.data.synthetic.subjects
    else:
        raise HarfusionError("--subjects: name the subjects of your data set, e.g. 101,102,103")
    if len(set(subjects)) < 3:
        raise HarfusionError(f"--subjects: need at least 3 (train, val, test), got {subjects}")
    return sorted(set(subjects))


def folds(
    config: Config, subjects: list[int], seeds: int, extra: dict[str, Any] | None = None
) -> list[Run]:
    """One run per test subject (and seed, named as the sweep names them); the next subject in
    the list validates. The fold's split wins over `extra`."""
    fold_configs = [
        Config(
            f"loso-{config.name}-t{test}",
            config.group,
            config.overrides
            | (extra or {})
            | {
                "split.strategy": "subject",
                "split.test_subjects": [test],
                "split.val_subjects": [subjects[(index + 1) % len(subjects)]],
            },
        )
        for index, test in enumerate(subjects)
    ]
    return expand(fold_configs, seeds)


def activities_by_subject(params: Params) -> dict[int, dict[int, int]] | None:
    """Rows per labelled activity of each subject in `data.raw_dir`; None while the data does not
    exist yet (the synthetic set before its first `dvc repro`)."""
    description = load_description(params.data.dataset)
    try:
        recordings = find_recordings(params.data.raw_dir, description, params.preprocess.sessions)
    except HarfusionError:
        return None
    rows: dict[int, Counter[int]] = {}
    for recording in recordings:
        activities = read_recording(recording.path, description).labels
        rows.setdefault(recording.subject, Counter()).update(activities.tolist())
    return {
        subject: {a: n for a, n in sorted(counts.items()) if a not in description.labels.ignore}
        for subject, counts in sorted(rows.items())
    }


def untrainable(
    rows: dict[int, dict[int, int]], subjects: list[int], chunk_size: int, description: Description
) -> dict[str, list[int]]:
    """Activity name → the folds (test subjects) whose training subjects hold no full window of
    it: the model cannot learn it there. Training is every subject but the fold's test and
    validation subject, as `folds` plans them."""
    windows = {s: {a for a, n in counts.items() if n >= chunk_size} for s, counts in rows.items()}
    present = {a for counts in windows.values() for a in counts}
    missing: dict[str, list[int]] = {}
    for index, test in enumerate(subjects):
        held_out = {test, subjects[(index + 1) % len(subjects)]}
        trained = {a for s, acts in windows.items() if s not in held_out for a in acts}
        for activity in sorted(present - trained):
            missing.setdefault(description.activity_name(activity), []).append(test)
    return missing


def warn_untrainable(params: Params, subjects: list[int]) -> None:
    """Say before queueing which classes some folds cannot learn (a class one subject holds)."""
    rows = activities_by_subject(params)
    if rows is None:
        return
    description = load_description(params.data.dataset)
    for name, tests in untrainable(rows, subjects, params.chunk_size, description).items():
        print(
            f"loso: warning: {name!r} has no training window in the fold(s) testing "
            f"{join(tests)}; it is scored over all classes and left out of the learnable-class "
            "macro F1",
            file=sys.stderr,
        )


def add_plan_arguments(parse: argparse.ArgumentParser) -> None:
    """Which folds: shared by `harfusion loso` and `harfusion gather loso`."""
    parse.add_argument(
        "--config", help="an ablations.yaml configuration (default: params.yaml as it is)"
    )
    parse.add_argument(
        "--subjects",
        type=options.subject_ids,
        help="comma-separated subject ids (default: synthetic set's)",
    )
    parse.add_argument(
        "--folds",
        type=options.count(1, options.MAX_SUBJECT, "--folds"),
        help="run only the first K folds (a quick check); default: all",
    )
    options.add_run_options(
        parse,
        each="fold",
        seeds="seeds 1..K per fold",
        ablations="where --config is looked up",
    )
    parse.add_argument(
        "--out", type=Path, default=layout.LOSO, help="where loso.json and loso.md go"
    )


@dataclass(frozen=True)
class Plan:
    config: Config
    subjects: list[int]
    runs: list[Run]
    params: Params  # as the first fold will run, -S overrides included


def plan(args: argparse.Namespace) -> Plan:
    """The folds the options name, their params validated before anything is queued."""
    params = load_params(args.params)
    config = Config("base", "loso", {})
    if args.config:
        extra = command_overrides(args.set, args.ensemble)
        ablations = load_ablations(args.ablations, dataset_modalities(args.params, extra))
        config = ablations.config(args.config) or config
        if config.name != args.config:
            raise HarfusionError(f"--config: no configuration {args.config!r} in ablations")
    subjects = subjects_of(params, args.subjects)
    runner.check_folder(args.out, "--out")
    runs = folds(config, subjects, args.seeds, command_overrides(args.set, args.ensemble))
    if args.folds is not None:
        if not 1 <= args.folds <= len(subjects):
            raise HarfusionError(f"--folds: between 1 and {len(subjects)}, got {args.folds}")
        runs = runs[: args.folds * args.seeds]  # folds() lists a fold's seeds together
    return Plan(config, subjects, runs, check_runs(runs, args.params)[0])
