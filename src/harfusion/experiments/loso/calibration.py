"""Calibration across people, from the windows LOSO's folds predicted: per fold ECE, NLL and
Brier before and after the model file's calibration (what evaluate reports, from its
`predictions.csv`), and the same pooled over every fold's test windows with bootstrap
intervals. Apart from the F1 scores because it needs torch, which `harfusion loso --help` and
the queue do not.

A fold tests one person on 46-89 windows (real PAMAP2), so one fold's ECE is noisy; pooled
out-of-fold figures are the headline, and their 95% intervals come from resampling windows
within each fold (the same resample for every seed and for before / after, so a change is
paired), as benchmarks/calibration_study.md measured them.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from harfusion.evaluation.calibration import calibration_summary, reliability_bins
from harfusion.experiments.dvc_client import Experiment
from harfusion.experiments.loso.outputs import FoldOutputs
from harfusion.models.calibrator import calibrated
from harfusion.params import EvaluateParams

METRICS = ("ece", "nll", "brier")
BOOTSTRAP = 1000  # resamples for the pooled intervals
BOOTSTRAP_SEED = 0  # loso.json is the same for the same folds


@dataclass
class FoldWindows:
    """One fold's test windows as log-probabilities before and after calibration, over
    `classes` (the model's class names, in output order)."""

    test_subject: int
    seed: int
    classes: list[str]
    labels: Tensor  # [N] index into classes
    before: Tensor  # [N, K] log-probabilities
    after: Tensor

    def scores(self, bins: int) -> dict[str, float]:
        """ece_before ... brier_after, as evaluate computes them."""
        before = calibration_summary(self.before, self.labels, bins)
        after = calibration_summary(self.after, self.labels, bins)
        return {
            f"{m}_{when}": s[m]
            for m in METRICS
            for when, s in (("before", before), ("after", after))
        }

    def aligned(self, classes: list[str]) -> FoldWindows:
        """The same windows over `classes` (a superset of ours); a class this model lacks has
        probability 0."""
        if classes == self.classes:
            return self
        index = torch.tensor([self.classes.index(c) if c in self.classes else -1 for c in classes])

        def widen(log_probs: Tensor) -> Tensor:
            wide = torch.full((len(log_probs), len(classes)), float("-inf"))
            wide[:, index >= 0] = log_probs[:, index[index >= 0]]
            return wide

        labels = torch.tensor([classes.index(self.classes[i]) for i in self.labels.tolist()])
        return FoldWindows(
            self.test_subject, self.seed, classes, labels, widen(self.before), widen(self.after)
        )


def fold_windows(
    test_subject: int, seed: int, predictions: str, class_names: list[str], calibration: dict
) -> FoldWindows:
    """The test windows of an evaluate `predictions.csv` (its text), whose logit columns follow
    `class_names`, calibrated by the model file's `calibration` entry."""
    rows = [row for row in csv.DictReader(io.StringIO(predictions)) if row["split"] == "test"]
    columns = [f"logit_{name.replace(' ', '_')}" for name in class_names]
    logits = torch.tensor([[float(row[c]) for c in columns] for row in rows], dtype=torch.float32)
    logits = logits.reshape(len(rows), len(class_names))
    labels = torch.tensor([class_names.index(row["actual"]) for row in rows], dtype=torch.long)
    return FoldWindows(
        test_subject,
        seed,
        list(class_names),
        labels,
        logits.log_softmax(dim=1),
        calibrated(logits, calibration).log_softmax(dim=1),
    )


def _pool(folds: Sequence[FoldWindows], picks: dict[int, np.ndarray] | None) -> FoldWindows:
    """The folds' windows (each fold's `picks` of them, by test subject) as one fold."""
    chosen = [
        (f, torch.from_numpy(picks[f.test_subject]) if picks else torch.arange(len(f.labels)))
        for f in folds
    ]
    return FoldWindows(
        0,
        folds[0].seed,
        folds[0].classes,
        torch.cat([f.labels[i] for f, i in chosen]),
        torch.cat([f.before[i] for f, i in chosen]),
        torch.cat([f.after[i] for f, i in chosen]),
    )


def pooled_calibration(folds: Sequence[FoldWindows], bins: int) -> dict:
    """Pooled out-of-fold scores: per seed all its folds' test windows at once, the mean over
    seeds, with 95% bootstrap intervals of each score and of its change by calibration."""
    classes = list(dict.fromkeys(c for fold in folds for c in fold.classes))
    by_seed: dict[int, list[FoldWindows]] = {}
    for fold in folds:
        by_seed.setdefault(fold.seed, []).append(fold.aligned(classes))
    sizes = {f.test_subject: len(f.labels) for f in folds}
    if any(len(f.labels) != sizes[f.test_subject] for f in folds):
        sizes = {}  # seeds saw different windows of a subject: no shared resample

    def mean_scores(picks: dict[int, np.ndarray] | None) -> dict[str, float]:
        values = [_pool(seed_folds, picks).scores(bins) for seed_folds in by_seed.values()]
        return {key: float(np.mean([v[key] for v in values])) for key in values[0]}

    point = mean_scores(None)
    resampled: list[dict[str, float]] = []
    if sizes:
        rng = np.random.default_rng(BOOTSTRAP_SEED)
        for _ in range(BOOTSTRAP):
            picks = {subject: rng.integers(0, n, n) for subject, n in sorted(sizes.items())}
            resampled.append(mean_scores(picks))
    pooled: dict[str, dict] = {}
    for metric in METRICS:
        for name in (f"{metric}_before", f"{metric}_after", f"{metric}_change"):
            if name.endswith("change"):
                value = point[f"{metric}_after"] - point[f"{metric}_before"]
                samples = [r[f"{metric}_after"] - r[f"{metric}_before"] for r in resampled]
            else:
                value, samples = point[name], [r[name] for r in resampled]
            interval = [float(v) for v in np.percentile(samples, [2.5, 97.5])] if samples else None
            pooled[name] = {"value": value, "ci95": interval}
    return {
        "seeds": sorted(by_seed),
        "windows": int(np.mean([sum(len(f.labels) for f in fs) for fs in by_seed.values()])),
        "bootstrap": BOOTSTRAP if resampled else 0,
        **pooled,
    }


ALL_FOLDS = "all folds"


def reliability_by_fold(folds: Sequence[FoldWindows], bins: int) -> dict[str, dict]:
    """Per test subject (every seed's windows together), and over all folds (`ALL_FOLDS`): the
    reliability bins before and after calibration."""
    classes = list(dict.fromkeys(c for fold in folds for c in fold.classes))
    groups: dict[str, list[FoldWindows]] = {}
    for fold in sorted(folds, key=lambda f: (f.test_subject, f.seed)):
        groups.setdefault(str(fold.test_subject), []).append(fold.aligned(classes))
    groups[ALL_FOLDS] = [f.aligned(classes) for f in folds]
    figures = {}
    for subject, members in groups.items():
        pooled = _pool(members, None)
        figures[subject] = {
            when: reliability_bins(log_probs.exp(), pooled.labels, bins)
            for when, log_probs in (("before", pooled.before), ("after", pooled.after))
        }
    return figures


def calibrate_folds(
    rows: list[dict[str, Any]], finished: dict[str, Experiment], outputs: dict[str, FoldOutputs]
) -> dict[str, Any] | None:
    """Add each fold's ece/nll/brier before and after calibration (and the temperature, and its
    test windows of classes it had no training window of) to its row; return the pooled
    out-of-fold figures and the per-fold mean, or None when no fold left its predictions (an
    experiment of an older harfusion)."""
    folds = []
    bins = EvaluateParams().ece_bins
    for row in rows:
        out = outputs[row["experiment"]]
        if out.predictions is None or out.scores is None or "calibration" not in out.scores:
            continue
        bins = finished[row["experiment"]].params.get("evaluate", {}).get("ece_bins", bins)
        fold = fold_windows(
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
    keys = [f"{m}_{when}" for m in METRICS for when in ("before", "after")]
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
        for metric in METRICS
    }
    return {
        "bins": bins,
        "pooled": pooled_calibration(folds, bins),
        "fold_mean": {key: float(np.mean([row[key] for row in scored])) for key in keys},
        "folds_lower_after": {metric: int(n) for metric, n in lower.items()},
        "folds": len(by_subject),
        "reliability": reliability_by_fold(folds, bins),
    }
