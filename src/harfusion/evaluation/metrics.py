"""Classification scores, the one definition of F1 that evaluation, training's validation, the
forest baseline, LOSO and `harfusion predict` share, so that their macro F1 means one thing.

Which classes a macro F1 averages: those with windows to find, the classes that occur in the
true labels. A class only predicted has no windows, so it has no F1 and is left out, not
averaged as 0 (as torchmetrics' macro average would); a class that occurs but is never
predicted right scores 0. Among those, the caller picks: all of them (`f1_macro`) or the
learnable ones, which had training windows (`f1_macro_learnable`); LOSO reports both.

Counted in NumPy and held to scikit-learn's `f1_score(labels=<the classes in the labels>,
zero_division=0)`, bit for bit, by tests/test_macro_f1.py: importing scikit-learn takes
1.1-1.4 s, half as long again as `harfusion predict` takes for an hour's recording on ONNX
Runtime (benchmarks/README.md), and torchmetrics needs torch, which predict on ONNX never loads.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
from numpy.typing import ArrayLike


def f1_per_class(actual: ArrayLike, predicted: ArrayLike) -> dict[Any, float]:
    """F1 of each class that occurs in `actual`, keyed by its label (index or name), in sorted
    order: 2 TP / (windows of it + windows predicted as it)."""
    actual, predicted = np.asarray(actual), np.asarray(predicted)
    classes, codes = np.unique(np.concatenate([actual, predicted]), return_inverse=True)
    truth, guess = codes[: len(actual)], codes[len(actual) :]
    hits = np.bincount(truth[truth == guess], minlength=len(classes))
    windows = np.bincount(truth, minlength=len(classes))
    present = windows > 0
    f1 = 2 * hits[present] / (windows + np.bincount(guess, minlength=len(classes)))[present]
    return {label.item(): float(v) for label, v in zip(classes[present], f1, strict=True)}


def macro_f1(per_class: Mapping[Any, float], over: Iterable[Any] | None = None) -> float | None:
    """The mean of `per_class` (as `f1_per_class` gives it) over the classes of `over` that it
    holds, all of them by default; None when it holds none of them. With `over` the classes
    that had training windows, this is the score of what the model could learn at all."""
    chosen = per_class if over is None else [c for c in over if c in per_class]
    scores = [per_class[c] for c in chosen]
    return float(np.mean(scores)) if scores else None


def classification_metrics(logits: ArrayLike, labels: ArrayLike, class_names: list[str]) -> dict:
    """Accuracy, macro and support-weighted F1 over the activities present in `labels`, and
    per-class F1 by name. `logits` may be any per-class scores (log-probabilities or
    probabilities too; torch tensors on the CPU as well)."""
    predicted = np.asarray(logits).argmax(axis=1)
    labels = np.asarray(labels).astype(np.int64)
    per_class = f1_per_class(labels, predicted)
    support = np.bincount(labels)[list(per_class)] if per_class else None
    return {
        "accuracy": float((predicted == labels).mean()),
        "f1_macro": macro_f1(per_class),
        "f1_weighted": float(np.average(list(per_class.values()), weights=support))
        if per_class
        else None,
        "per_class_f1": {class_names[c]: f1 for c, f1 in per_class.items()},
    }
