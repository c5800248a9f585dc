"""Classification scores that the deep model's evaluation, the forest baseline and `harfusion
predict` share, so their F1 means one thing. NumPy only: predict on an ONNX model imports no
torch, and scikit-learn's or torchmetrics' imports would add 0.5-1 s to every start-up."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike


def classification_metrics(logits: ArrayLike, labels: ArrayLike, class_names: list[str]) -> dict:
    """Accuracy and F1 over the activities present in `labels`: one missing from the test split
    has no F1 to average. `logits` may be any per-class scores (log-probabilities or
    probabilities too; torch tensors on the CPU as well). Counted from one confusion matrix."""
    predicted = np.asarray(logits).argmax(axis=1)
    labels = np.asarray(labels).astype(np.int64)
    classes = len(class_names)
    confusion = np.bincount(labels * classes + predicted, minlength=classes**2)
    confusion = confusion.reshape(classes, classes).astype(np.float64)  # [actual, predicted]
    tp = confusion.diagonal()
    fp, fn, support = confusion.sum(axis=0) - tp, confusion.sum(axis=1) - tp, confusion.sum(axis=1)
    present = support > 0
    f1 = (2 * tp / np.maximum(2 * tp + fp + fn, 1))[present]
    weights = support[present]
    return {
        "accuracy": float((predicted == labels).mean()),
        "f1_macro": float(f1.mean()),
        "f1_weighted": float((f1 * weights).sum() / weights.sum()),
        "per_class_f1": {
            class_names[c]: float(f)
            for c, f in zip(np.flatnonzero(present).tolist(), f1.tolist(), strict=True)
        },
    }


def macro_f1_over(per_class_f1: dict[str, float], classes: list[str]) -> float | None:
    """Macro F1 over those of `classes` that have an F1 (present in the test split); None if
    none does. With `classes` the ones that had training windows, this is the score of what the
    model could learn at all."""
    scores = [per_class_f1[c] for c in classes if c in per_class_f1]
    return sum(scores) / len(scores) if scores else None
