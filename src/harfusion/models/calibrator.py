"""The calibration map a model file carries: fitted by training on the validation split, applied
by evaluate, predict and the ONNX export alike, so all three give the same probabilities.

Today a temperature (Guo et al. 2017): softmax(logits / T), one T minimising validation NLL;
the argmax is unchanged. The model file names the method, so another map can take its place.

Which validation windows it is fitted on is `train.calibration`. On real leave-one-subject-out
(benchmarks/calibration_study.md) a temperature fitted on all of one validation subject's
windows made test ECE worse whenever that subject did an activity no training subject did: its
windows are wrong whatever the temperature, and the fit softens every prediction to pay for
them. Fitted on the windows of the classes that had training windows (`trained_classes`, the
default), it lowered test ECE in 6 of 6 folds. Fitted on one class only it sharpens without
bound (T 0.2 on a validation subject who did one activity, raising test ECE 0.169 → 0.208), so
below `MIN_CLASSES` it is not fitted.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import DataLoader

from harfusion.models.fusion import FusionModel

MIN_CLASSES = 2  # trained classes the validation windows must hold for a temperature
FITTED_ON = {
    "trained_classes": "the validation windows of classes that had training windows",
    "all_windows": "every validation window",
    "none": "nothing (train.calibration: none)",
}


def fit_temperature(logits: Tensor, labels: Tensor, max_iter: int = 100) -> float:
    """One temperature T minimising validation NLL of softmax(logits / T); argmax is unchanged."""
    log_t = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.LBFGS([log_t], lr=0.1, max_iter=max_iter, line_search_fn="strong_wolfe")
    logits = logits.detach().float()

    def closure() -> Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(logits / log_t.exp(), labels)
        loss.backward()
        return loss

    optimizer.step(closure)
    return float(log_t.detach().exp())


def trained_class_windows(labels: Tensor, train_counts: Tensor) -> Tensor:
    """Mask of the windows whose class had training windows (`train_counts`: per class)."""
    return train_counts.to(labels.device)[labels] > 0


def calibration_entry(logits: Tensor, labels: Tensor, train_counts: Tensor, how: str) -> dict:
    """The calibration entry of a model file from validation `logits` (of the model as it
    predicts: an ensemble's averaged prediction) and `labels`, fitted as `how` (a
    `train.calibration` value) says; `note` says why no temperature was fitted, if so."""
    chosen = torch.ones_like(labels, dtype=torch.bool)
    if how == "trained_classes":
        chosen = trained_class_windows(labels, train_counts)
    classes = len(labels[chosen].unique())
    note = None
    if how == "none":
        temperature = 1.0
    elif how == "trained_classes" and classes < MIN_CLASSES:
        temperature = 1.0
        note = (
            f"not fitted: the validation split holds {classes} class(es) that had training "
            f"windows, at least {MIN_CLASSES} needed (one class sharpens it without bound); "
            "temperature 1"
        )
    else:
        temperature = fit_temperature(logits[chosen], labels[chosen])
    entry = {
        "method": "temperature",
        "temperature": temperature,
        "fitted_on": FITTED_ON[how],
        "windows": int(chosen.sum()) if how != "none" else 0,
        "classes": classes if how != "none" else 0,
        "val_nll_before": float(F.cross_entropy(logits, labels)),
        "val_nll_after": float(F.cross_entropy(logits / temperature, labels)),
    }
    return entry | ({"note": note} if note else {})


@torch.no_grad()
def fit_calibration(model: FusionModel, loader: DataLoader, train_counts: Tensor, how: str) -> dict:
    """`calibration_entry` of `model`'s predictions on `loader`'s windows (the validation
    split)."""
    model.eval()
    batches = [(model(b["inputs"], b["mask"]).logits.float().cpu(), b["label"]) for b in loader]
    logits = torch.cat([logits for logits, _ in batches])
    labels = torch.cat([labels for _, labels in batches]).to(torch.long).cpu()
    return calibration_entry(logits, labels, train_counts.cpu(), how)


def calibrated(logits: Tensor, calibration: dict) -> Tensor:
    """`logits` (or log-probabilities) mapped by a model file's calibration entry."""
    return logits / calibration["temperature"]
