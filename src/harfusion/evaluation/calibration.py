"""Calibration scores: ECE / MCE, NLL, Brier and reliability bins (the map itself, fitted by
training and carried by the model file, is `models.calibrator`)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def expected_calibration_error(probs: Tensor, labels: Tensor, bins: int) -> float:
    """ECE over equal-width confidence bins (top-label), as in Guo et al. 2017: the window-weighted
    gap of the reliability diagram's own bins, so the figure and the number cannot disagree."""
    confidence, accuracy, count = _binned(probs, labels, bins)
    return float(((confidence - accuracy).abs() * count).sum() / count.sum())


def maximum_calibration_error(probs: Tensor, labels: Tensor, bins: int) -> float:
    confidence, accuracy, count = _binned(probs, labels, bins)
    return float((confidence - accuracy).abs()[count > 0].max())


def brier_score(probs: Tensor, labels: Tensor) -> float:
    """Multiclass Brier score: mean over windows of the squared error summed over classes."""
    onehot = F.one_hot(labels, probs.shape[1]).to(probs.dtype)
    return float(((probs - onehot) ** 2).sum(dim=1).mean())


def negative_log_likelihood(logits: Tensor, labels: Tensor) -> float:
    return float(F.cross_entropy(logits, labels))


def reliability_bins(probs: Tensor, labels: Tensor, bins: int) -> dict[str, list[float]]:
    """Per confidence bin: mean confidence, accuracy and window count (for the diagram)."""
    confidence, accuracy, count = _binned(probs, labels, bins)
    return {
        "lower": [i / bins for i in range(bins)],
        "confidence": confidence.tolist(),
        "accuracy": accuracy.tolist(),
        "count": count.long().tolist(),
    }


def _binned(probs: Tensor, labels: Tensor, bins: int) -> tuple[Tensor, Tensor, Tensor]:
    """Mean top-label confidence, accuracy and window count per bin [i/bins, (i+1)/bins); an
    empty bin has 0 for both means. Counted here rather than with torchmetrics, whose import
    (it pulls in scipy.signal) cost the forest baseline's stage about 1.8 s of its start-up."""
    confidence, predicted = probs.max(dim=1)
    correct = (predicted == labels).to(probs.dtype)
    index = torch.clamp((confidence * bins).long(), max=bins - 1)
    count = torch.bincount(index, minlength=bins).to(probs.dtype)
    safe = count.clamp(min=1)
    return (
        torch.bincount(index, confidence, bins) / safe,
        torch.bincount(index, correct, bins) / safe,
        count,
    )


def calibration_summary(logits: Tensor, labels: Tensor, bins: int) -> dict[str, float]:
    probs = logits.softmax(dim=1)
    return {
        "nll": negative_log_likelihood(logits, labels),
        "brier": brier_score(probs, labels),
        "ece": expected_calibration_error(probs, labels, bins),
        "mce": maximum_calibration_error(probs, labels, bins),
    }
