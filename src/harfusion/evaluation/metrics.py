"""Classification scores that the deep model's evaluation and the forest baseline share, so the
two `metrics.json` files mean the same thing."""

from __future__ import annotations

import torch
from torch import Tensor


def classification_metrics(logits: Tensor, labels: Tensor, class_names: list[str]) -> dict:
    """Accuracy and F1 over the activities present in `labels`: one missing from the test split
    has no F1 to average. `logits` may be any per-class scores (log-probabilities too). Counted
    from one confusion matrix rather than with scikit-learn or torchmetrics, whose imports add
    about 0.5 s to evaluate's start-up (benchmarks/startup.py) and 1.8 s to the baseline's."""
    predicted = logits.argmax(dim=1)
    classes = len(class_names)
    confusion = torch.bincount(labels * classes + predicted, minlength=classes**2)
    confusion = confusion.reshape(classes, classes).double()  # [actual, predicted]
    tp = confusion.diagonal()
    fp, fn, support = confusion.sum(dim=0) - tp, confusion.sum(dim=1) - tp, confusion.sum(dim=1)
    present = support > 0
    f1 = (2 * tp / (2 * tp + fp + fn))[present]
    weights = support[present]
    return {
        "accuracy": float((predicted == labels).double().mean()),
        "f1_macro": float(f1.mean()),
        "f1_weighted": float((f1 * weights).sum() / weights.sum()),
        "per_class_f1": {
            class_names[c]: f
            for c, f in zip(present.nonzero()[:, 0].tolist(), f1.tolist(), strict=True)
        },
    }


def macro_f1_over(per_class_f1: dict[str, float], classes: list[str]) -> float | None:
    """Macro F1 over those of `classes` that have an F1 (present in the test split); None if
    none does. With `classes` the ones that had training windows, this is the score of what the
    model could learn at all."""
    scores = [per_class_f1[c] for c in classes if c in per_class_f1]
    return sum(scores) / len(scores) if scores else None
