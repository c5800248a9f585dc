"""LOSO's scores: per fold both models' macro F1, and pooled out-of-fold macro F1 (every fold's
test windows at once, per seed) over all classes and over the learnable ones.

Pooling windows, not averaging fold scores, because a fold tests one person on a few classes:
its macro F1 swings with which classes that person did. A class is learnable when every
finished fold had training windows of it; one that some fold never saw in training would only
measure that it cannot be guessed."""

from __future__ import annotations

from typing import Any

from harfusion.errors import HarfusionError
from harfusion.evaluation.metrics import f1_per_class, macro_f1
from harfusion.experiments.ablations import Run
from harfusion.experiments.comparison import baseline_score, summarize
from harfusion.experiments.dvc_client import METRICS, Experiment
from harfusion.experiments.loso.outputs import FoldOutputs, confusion_rows
from harfusion.experiments.loso.render import join


def _pooled(predictions: dict[Any, tuple[list[str], list[str]]], learnable: list[str]) -> dict:
    """Pooled macro F1 (all classes, learnable ones) and per-class F1 for each seed, then
    mean ± std over seeds."""
    overall: list[float] = []
    over_learnable: list[float] = []
    per_class: dict[str, list[float]] = {}
    for actual, predicted in predictions.values():
        f1 = f1_per_class(actual, predicted)
        every = macro_f1(f1)
        overall.append(float("nan") if every is None else every)  # nan: no window at all
        chosen = macro_f1(f1, learnable)
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
                "why": f"no training window in the fold(s) testing {join(without)}; of the "
                f"tested subjects only {join(holders) or 'none'} hold(s) a window of it",
            }
        )
    return learnable, excluded


def summarize_folds(
    runs: list[Run], finished: dict[str, Experiment], outputs: dict[str, FoldOutputs]
) -> dict[str, Any]:
    """Per fold both models' scores; pooled macro F1 per seed over all folds' test windows (all
    classes and learnable ones); mean ± std over seeds and over folds."""
    from harfusion.experiments.loso.calibration import calibrate_folds  # torch: not for `--help`

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
            actual, predicted = confusion_rows(text)
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
                f1 = f1_per_class(*per_fold[row["experiment"]][model])
                row[key] = macro_f1(f1, learnable)
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


def _fold_learnable(rows: list[dict[str, Any]], key: str) -> dict[str, Any]:
    """Mean ± std and worst over folds of a per-fold learnable-class score."""
    values = [row[key] for row in rows if row.get(key) is not None]
    return {
        f"fold_{key}": summarize(values) if values else None,
        f"worst_fold_{key}": min(values) if values else None,
    }
