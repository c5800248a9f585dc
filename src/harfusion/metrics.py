"""Classification scores that the deep model's evaluation and the forest baseline share, so the
two `metrics.json` files mean the same thing."""

from __future__ import annotations

from torch import Tensor
from torchmetrics.functional.classification import multiclass_stat_scores


def classification_metrics(logits: Tensor, labels: Tensor, class_names: list[str]) -> dict:
    """Accuracy and F1 over the activities present in `labels`: one missing from the test split
    has no F1 to average. `logits` may be any per-class scores (log-probabilities too). Counted
    with torchmetrics rather than scikit-learn, whose import added about 0.5 s to evaluate's
    start-up (benchmarks/startup.py)."""
    predicted = logits.argmax(dim=1)
    counts = multiclass_stat_scores(predicted, labels, len(class_names), average=None)
    tp, fp, _, fn, support = counts.double().unbind(dim=1)
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
