"""Leave-one-subject-out: one DVC experiment per held-out test subject (and seed), validation on
the next subject, then pooled out-of-fold macro F1 and the mean ± std over folds.

    harfusion loso [--config fusion-hybrid] [--subjects 101,102,...] [--seeds K]
                   [--ensemble K] [-j N] [--shard I/N] [--push]

Shard splits let one subject's other activities into training; only whole held-out subjects say
how a model does on a person it has never seen, which is what a wearable has to do.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harfusion import layout
from harfusion.atomic import atomic_path, write_text
from harfusion.data.description import Description, load_description
from harfusion.data.recordings import find_recordings, read_recording
from harfusion.errors import HarfusionError
from harfusion.experiments import interrupts, options, runner
from harfusion.experiments.ablations import (
    Config,
    Run,
    check_runs,
    command_overrides,
    dataset_modalities,
    expand,
    load_ablations,
)
from harfusion.experiments.comparison import baseline_score, reads_synthetic, summarize
from harfusion.experiments.dvc_client import (
    BASELINE_CONFUSION,
    BASELINE_WINDOWS,
    CONFUSION,
    METRICS,
    PREDICTIONS,
    SCORES,
    Experiment,
    read_json,
    read_output,
)
from harfusion.params import EvaluateParams, Params, load_params


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


def _predictions(text: str) -> tuple[list[str], list[str]]:
    rows = list(csv.DictReader(io.StringIO(text)))
    return [row["actual"] for row in rows], [row["predicted"] for row in rows]


@dataclass
class FoldOutputs:
    """What a finished fold's experiment left: test predictions of both models, windows per
    class and split (the baseline stage counts them), and the deep model's logits per window
    with its scores (the class order and the calibration its model file applies)."""

    deep: str
    baseline: str | None = None
    windows: dict[str, dict[str, int]] | None = None
    predictions: str | None = None
    scores: dict[str, Any] | None = None


def read_fold(rev: str) -> FoldOutputs | None:
    deep = read_output(CONFUSION, rev)
    if deep is None:
        return None
    windows = read_output(BASELINE_WINDOWS, rev)
    return FoldOutputs(
        deep,
        read_output(BASELINE_CONFUSION, rev),
        json.loads(windows) if windows else None,
        read_output(PREDICTIONS, rev),
        read_json(SCORES, rev),
    )


def macro_f1_scores(
    actual: list[str], predicted: list[str], learnable: list[str]
) -> tuple[float, float | None, dict[str, float]]:
    """(macro F1 over the classes in `actual`, over the learnable ones among them, per class):
    every window counts; the learnable average takes only those classes' F1."""
    from sklearn.metrics import f1_score  # 1.5 s to import: not for `--help`

    classes = sorted(set(actual) | set(predicted))
    scores = f1_score(actual, predicted, labels=classes, average=None, zero_division=0)
    f1 = {c: float(v) for c, v in zip(classes, scores, strict=True) if c in set(actual)}
    chosen = [f1[c] for c in learnable if c in f1]
    return float(np.mean(list(f1.values()))), float(np.mean(chosen)) if chosen else None, f1


def _pooled(predictions: dict[Any, tuple[list[str], list[str]]], learnable: list[str]) -> dict:
    """Pooled macro F1 (all classes, learnable ones) and per-class F1 for each seed, then
    mean ± std over seeds."""
    overall: list[float] = []
    over_learnable: list[float] = []
    per_class: dict[str, list[float]] = {}
    for actual, predicted in predictions.values():
        every, chosen, f1 = macro_f1_scores(actual, predicted, learnable)
        overall.append(every)
        if chosen is not None:
            over_learnable.append(chosen)
        for c, value in f1.items():
            per_class.setdefault(c, []).append(value)
    return {
        "f1_macro": summarize(overall),
        "f1_macro_learnable": summarize(over_learnable) if over_learnable else None,
        "per_class_f1": {c: summarize(values) for c, values in sorted(per_class.items())},
    }


def _classes(outputs: dict[str, FoldOutputs], runs: list[Run]) -> tuple[list[str], list[dict]]:
    """(learnable, excluded), among the classes some finished fold tested (the others are in no
    score): a class is learnable when every finished fold had training windows of it; an
    excluded one says in which folds it had none and which test subjects hold it."""
    test_subject = {run.name: run.overrides["split.test_subjects"][0] for run in runs}
    counted = {name: out.windows for name, out in outputs.items() if out.windows}
    classes = sorted(
        {c for windows in counted.values() for c, n in windows["test"].items() if n > 0}
    )
    learnable, excluded = [], []
    for cls in classes:
        without = sorted(
            {test_subject[n] for n, w in counted.items() if w["train"].get(cls, 0) == 0}
        )
        if not without:
            learnable.append(cls)
            continue
        holders = sorted({test_subject[n] for n, w in counted.items() if w["test"].get(cls, 0)})
        excluded.append(
            {
                "class": cls,
                "no_training_windows_in_folds": without,
                "test_subjects_with_it": holders,
                "why": f"no training window in the fold(s) testing {_join(without)}; of the "
                f"tested subjects only {_join(holders) or 'none'} hold(s) a window of it",
            }
        )
    return learnable, excluded


def _join(values: list[Any]) -> str:
    return ", ".join(map(str, values))


def summarize_folds(
    runs: list[Run], finished: dict[str, Experiment], outputs: dict[str, FoldOutputs]
) -> dict[str, Any]:
    """Per fold both models' scores; pooled macro F1 per seed over all folds' test windows (all
    classes and learnable ones); mean ± std over seeds and over folds."""
    rows: list[dict[str, Any]] = []
    pooled: dict[str, dict[Any, tuple[list[str], list[str]]]] = {"deep": {}, "baseline": {}}
    per_fold: dict[str, dict[str, tuple[list[str], list[str]]]] = {}
    done = [run for run in runs if run.name in outputs and run.name in finished]
    done = [run for run in done if finished[run.name].state == "success"]
    for run in done:
        experiment, out = finished[run.name], outputs[run.name]
        seed = run.overrides.get("seed", experiment.params.get("seed"))
        metrics = experiment.metrics[METRICS]
        row = {
            "experiment": run.name,
            "test_subject": run.overrides["split.test_subjects"][0],
            "val_subject": run.overrides["split.val_subjects"][0],
            "seed": seed,
            "accuracy": metrics["accuracy"],
            "f1_macro": metrics["f1_macro"],
            "baseline_f1_macro": baseline_score(experiment),
        }
        for model, text in (("deep", out.deep), ("baseline", out.baseline)):
            if text is None:
                continue
            actual, predicted = _predictions(text)
            per_fold.setdefault(run.name, {})[model] = (actual, predicted)
            if model == "deep":
                row["windows"] = len(actual)
            into = pooled[model].setdefault(seed, ([], []))
            into[0].extend(actual)
            into[1].extend(predicted)
        rows.append(row)
    if not rows:
        raise HarfusionError("no LOSO fold finished; nothing to summarize")
    learnable, excluded = _classes({r.name: outputs[r.name] for r in done}, done)
    for row in rows:  # per fold, over the learnable classes its test subject holds
        for model, key in (
            ("deep", "f1_macro_learnable"),
            ("baseline", "baseline_f1_macro_learnable"),
        ):
            if model in per_fold.get(row["experiment"], {}):
                row[key] = macro_f1_scores(*per_fold[row["experiment"]][model], learnable)[1]
    fold_baseline = [r["baseline_f1_macro"] for r in rows if r["baseline_f1_macro"] is not None]
    calibration = calibrate_folds(rows, {r.name: finished[r.name] for r in done}, outputs)
    return {
        "folds": rows,
        "learnable_classes": learnable,
        "excluded_classes": excluded,
        "pooled": {
            model: _pooled(predictions, learnable)
            for model, predictions in pooled.items()
            if predictions
        },
        "fold_f1_macro": summarize([row["f1_macro"] for row in rows]),
        "fold_accuracy": summarize([row["accuracy"] for row in rows]),
        "fold_baseline_f1_macro": summarize(fold_baseline) if fold_baseline else None,
        "worst_fold_f1_macro": min(row["f1_macro"] for row in rows),
        "worst_fold_baseline_f1_macro": min(fold_baseline) if fold_baseline else None,
        **_fold_learnable(rows, "f1_macro_learnable"),
        **_fold_learnable(rows, "baseline_f1_macro_learnable"),
        "missing": [run.name for run in runs if run.name not in {r["experiment"] for r in rows}],
        "calibration": calibration,
    }


def calibrate_folds(
    rows: list[dict[str, Any]], finished: dict[str, Experiment], outputs: dict[str, FoldOutputs]
) -> dict[str, Any] | None:
    """Add each fold's ece/nll/brier before and after calibration (and the temperature, and its
    test windows of classes it had no training window of) to its row; return the pooled
    out-of-fold figures and the per-fold mean, or None when no fold left its predictions (an
    experiment of an older harfusion)."""
    from harfusion.experiments import loso_calibration as calibration  # torch

    folds = []
    bins = EvaluateParams().ece_bins
    for row in rows:
        out = outputs[row["experiment"]]
        if out.predictions is None or out.scores is None or "calibration" not in out.scores:
            continue
        bins = finished[row["experiment"]].params.get("evaluate", {}).get("ece_bins", bins)
        fold = calibration.fold_windows(
            row["test_subject"],
            row["seed"],
            out.predictions,
            out.scores["class_names"],
            out.scores["calibration"],
        )
        row |= {"temperature": out.scores["calibration"]["temperature"], **fold.scores(bins)}
        if out.windows:
            trained = out.windows["train"]
            row["untrained_windows"] = sum(
                trained.get(fold.classes[label], 0) == 0 for label in fold.labels.tolist()
            )
        folds.append(fold)
    if not folds:
        return None
    keys = [f"{m}_{when}" for m in calibration.METRICS for when in ("before", "after")]
    scored = [row for row in rows if "ece_before" in row]
    by_subject: dict[int, list[dict[str, Any]]] = {}
    for row in scored:
        by_subject.setdefault(row["test_subject"], []).append(row)
    lower = {
        metric: sum(
            np.mean([r[f"{metric}_after"] for r in fold_rows])
            < np.mean([r[f"{metric}_before"] for r in fold_rows])
            for fold_rows in by_subject.values()
        )
        for metric in calibration.METRICS
    }
    return {
        "bins": bins,
        "pooled": calibration.pooled_calibration(folds, bins),
        "fold_mean": {key: float(np.mean([row[key] for row in scored])) for key in keys},
        "folds_lower_after": {metric: int(n) for metric, n in lower.items()},
        "folds": len(by_subject),
        "reliability": calibration.reliability_by_fold(folds, bins),
    }


def _fold_learnable(rows: list[dict[str, Any]], key: str) -> dict[str, Any]:
    """Mean ± std and worst over folds of a per-fold learnable-class score."""
    values = [row[key] for row in rows if row.get(key) is not None]
    return {
        f"fold_{key}": summarize(values) if values else None,
        f"worst_fold_{key}": min(values) if values else None,
    }


def _mean_std(entry: dict[str, Any] | None) -> str:
    if entry is None:
        return "–"
    std = f" ± {entry['std']:.3f}" if entry["std"] is not None else ""
    return f"{entry['mean']:.3f}{std} (n={entry['n']})"


def _score(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def data_source(params: Params) -> str:
    data = params.data
    name = load_description(data.dataset).name
    if reads_synthetic(params.model_dump()):
        return (
            f"synthetic {name} (generator seed {data.synthetic.seed}, "
            f"{data.synthetic.seconds_per_activity:g} s per activity and subject)"
        )
    return f"{name} recordings in `{data.raw_dir}`"


def _overrides(overrides: dict[str, Any]) -> str:
    return ", ".join(f"`{key}={json.dumps(value)}`" for key, value in overrides.items()) or "none"


def markdown(
    summary: dict[str, Any], config: Config, params: Params, overrides: dict[str, Any]
) -> str:
    """`params`: as the folds' experiments ran them; `overrides`: the configuration's and `-S`'s
    (the fold's split aside)."""
    subjects = sorted({row["test_subject"] for row in summary["folds"]})
    seeds = sorted({row["seed"] for row in summary["folds"]})
    pooled = summary["pooled"]
    deep, baseline = pooled.get("deep"), pooled.get("baseline")
    learnable = summary["learnable_classes"]
    lines = [
        f"# Leave-one-subject-out: {config.name}",
        "",
        f"- **Data source:** {data_source(params)}",
        "- **Split:** `subject`: each fold tests one subject and validates on the next in the "
        "list; all other subjects train",
        f"- **Test subjects:** {_join(subjects)}",
        f"- **Seeds:** {_join(seeds)} (each fold once per seed); **overrides:** "
        f"{_overrides(overrides)}",
        f"- **Window:** {params.chunk_size} steps; fusion {params.fusion}; modalities "
        f"{_join(list(load_description(params.data.dataset).select(params.modalities)))}",
        "",
        "| pooled out-of-fold macro F1 (mean ± std over seeds) | deep model | baseline "
        f"({params.baseline.model}) |",
        "|---|---:|---:|",
        f"| all classes | {_mean_std(deep and deep['f1_macro'])} "
        f"| {_mean_std(baseline and baseline['f1_macro'])} |",
        f"| learnable classes ({_join(learnable) or 'none'}) "
        f"| {_mean_std(deep and deep['f1_macro_learnable'])} "
        f"| {_mean_std(baseline and baseline['f1_macro_learnable'])} |",
        f"| per fold | {_mean_std(summary['fold_f1_macro'])} "
        f"| {_mean_std(summary['fold_baseline_f1_macro'])} |",
        f"| worst fold | {_score(summary['worst_fold_f1_macro'])} "
        f"| {_score(summary['worst_fold_baseline_f1_macro'])} |",
        f"| per fold, learnable classes | {_mean_std(summary['fold_f1_macro_learnable'])} "
        f"| {_mean_std(summary['fold_baseline_f1_macro_learnable'])} |",
        f"| worst fold, learnable classes | {_score(summary['worst_fold_f1_macro_learnable'])} "
        f"| {_score(summary['worst_fold_baseline_f1_macro_learnable'])} |",
        "",
    ]
    lines += [f"![Macro F1 per fold, both models]({layout.LOSO_FOLDS_PLOT})", ""]
    if summary["excluded_classes"]:
        lines.append("Excluded from the learnable-class score (still in the all-class score):")
        lines += [f"- **{e['class']}**: {e['why']}" for e in summary["excluded_classes"]]
        lines.append("")
    classes = sorted(
        set(deep["per_class_f1"] if deep else {})
        | set(baseline["per_class_f1"] if baseline else {})
    )
    lines += [
        "| class | learnable | pooled F1, deep | pooled F1, baseline |",
        "|---|---|---:|---:|",
    ]
    lines += [
        f"| {c} | {'yes' if c in learnable else 'no'} "
        f"| {_mean_std(deep and deep['per_class_f1'].get(c))} "
        f"| {_mean_std(baseline and baseline['per_class_f1'].get(c))} |"
        for c in classes
    ]
    lines += [
        "",
        "| test subject | val subject | seed | windows | accuracy | macro F1 | baseline macro F1 "
        "| margin |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r['test_subject']} | {r['val_subject']} | {r['seed']} | {r.get('windows', '–')} "
        f"| {r['accuracy']:.3f} | {r['f1_macro']:.3f} | {_score(r['baseline_f1_macro'])} "
        f"| {_margin(r['f1_macro'], r['baseline_f1_macro'])} |"
        for r in summary["folds"]
    ]
    if summary["missing"]:
        lines += ["", f"Not finished: {', '.join(summary['missing'])}"]
    if summary.get("calibration"):
        lines += ["", *calibration_markdown(summary)]
    return "\n".join(lines) + "\n"


def _interval(entry: dict[str, Any], sign: str = "") -> str:
    value = f"{entry['value']:{sign}.3f}"
    if entry["ci95"] is None:
        return value
    low, high = entry["ci95"]
    return f"{value} [{low:{sign}.3f}, {high:{sign}.3f}]"


def calibration_markdown(summary: dict[str, Any]) -> list[str]:
    """Pooled out-of-fold calibration with its intervals, then per fold with the mean."""
    calibration = summary["calibration"]
    pooled = calibration["pooled"]
    names = {"ece": "ECE", "nll": "NLL", "brier": "Brier"}
    lines = [
        "## Calibration across people",
        "",
        f"Test windows' ECE ({calibration['bins']} bins), NLL and Brier score before and after "
        "each fold's calibration (its model file's temperature, fitted by training on the "
        "validation subject). Pooled: every fold's test windows at once per seed, the mean "
        f"over seeds ({_join(pooled['seeds'])}); 95% intervals from {pooled['bootstrap']} "
        "bootstrap resamples of the windows within each fold.",
        "",
        "| pooled out-of-fold | before | after | change |",
        "|---|---:|---:|---:|",
    ]
    lines += [
        f"| {label} | {_interval(pooled[f'{key}_before'])} | {_interval(pooled[f'{key}_after'])} "
        f"| {_interval(pooled[f'{key}_change'], '+')} |"
        for key, label in names.items()
    ]
    lower = calibration["folds_lower_after"]
    lines += [
        "",
        f"Lower after calibration, per fold (mean over seeds): ECE in {lower['ece']} of "
        f"{calibration['folds']} folds, NLL in {lower['nll']}, Brier in {lower['brier']}.",
        "",
        "| test subject | val subject | seed | windows | of untrained classes | temperature "
        "| ECE before | ECE after | NLL before | NLL after | Brier before | Brier after |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    keys = [f"{m}_{when}" for m in names for when in ("before", "after")]
    for row in summary["folds"]:
        if "ece_before" in row:
            lines.append(
                f"| {row['test_subject']} | {row['val_subject']} | {row['seed']} "
                f"| {row.get('windows', '–')} | {row.get('untrained_windows', '–')} "
                f"| {row['temperature']:.3f} | "
                + " | ".join(f"{row[key]:.3f}" for key in keys)
                + " |"
            )
    mean = calibration["fold_mean"]
    lines += [
        "| **mean** | | | | | | " + " | ".join(f"**{mean[key]:.3f}**" for key in keys) + " |",
        "",
        f"![Reliability per fold, before and after calibration]({layout.LOSO_CALIBRATION_PLOT})",
        "",
    ]
    return lines


def _margin(deep: float, baseline: float | None) -> str:
    return "–" if baseline is None else f"{deep - baseline:+.3f}"


def warn_untrainable(params: Params, subjects: list[int]) -> None:
    """Say before queueing which classes some folds cannot learn (a class one subject holds)."""
    rows = activities_by_subject(params)
    if rows is None:
        return
    description = load_description(params.data.dataset)
    for name, tests in untrainable(rows, subjects, params.chunk_size, description).items():
        print(
            f"loso: warning: {name!r} has no training window in the fold(s) testing "
            f"{_join(tests)}; it is scored over all classes and left out of the learnable-class "
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
        "--seeds",
        type=options.count(1, options.MAX_SEEDS, "--seeds"),
        default=1,
        help="seeds 1..K per fold",
    )
    parse.add_argument(
        "--folds",
        type=options.count(1, options.MAX_SUBJECT, "--folds"),
        help="run only the first K folds (a quick check); default: all",
    )
    parse.add_argument(
        "-S",
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra override for every fold, as `dvc exp run -S`",
    )
    options.add_ensemble(parse)
    parse.add_argument(
        "--ablations", type=Path, default=layout.ABLATIONS, help="where --config is looked up"
    )
    parse.add_argument(
        "--params", type=Path, default=layout.PARAMS, help="the params the overrides apply to"
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


def write_summary(args: argparse.Namespace, planned: Plan, finished: dict[str, Experiment]) -> None:
    """Write loso.json and loso.md from the finished folds' experiments and print the table."""
    outputs = {
        name: out
        for name, exp in finished.items()
        if exp.state == "success" and (out := read_fold(exp.rev)) is not None
    }
    summary = summarize_folds(planned.runs, finished, outputs)
    ran = next(finished[r["experiment"]] for r in summary["folds"]).params
    ran_with = Params.model_validate(ran) if ran else planned.params
    overrides = planned.config.overrides | command_overrides(args.set, args.ensemble)
    summary["protocol"] = {
        "data_source": data_source(ran_with),
        "raw_dir": ran_with.data.raw_dir,
        "test_subjects": planned.subjects,
        "seeds": sorted({row["seed"] for row in summary["folds"]}),
        "config": planned.config.name,
        "overrides": overrides,
    }
    text = markdown(summary, planned.config, ran_with, overrides)
    write_text(args.out / layout.LOSO_JSON, json.dumps(summary, indent=2) + "\n")
    from harfusion.experiments.comparison_plots import loso_folds  # matplotlib

    with atomic_path(args.out / layout.LOSO_FOLDS_PLOT) as tmp:
        loso_folds(summary["folds"], f"Leave-one-subject-out: {planned.config.name}", tmp)
    if summary["calibration"]:
        from harfusion.experiments.comparison_plots import loso_reliability

        with atomic_path(args.out / layout.LOSO_CALIBRATION_PLOT) as tmp:
            loso_reliability(summary, f"Leave-one-subject-out: {planned.config.name}", tmp)
    write_text(args.out / layout.LOSO_MARKDOWN, text)
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
