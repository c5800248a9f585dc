"""Calibration that transfers across people: a temperature fitted only on the validation windows
of classes the model was trained on, and the probability average of an ensemble.

On real leave-one-subject-out (benchmarks/calibration_study.md), a temperature fitted on all of
one validation subject's windows made test ECE worse whenever that subject held an activity no
training subject did: its windows are wrong whatever the temperature, and the fit softens every
prediction to pay for them. Fitted on the other windows, the temperature varied little from
person to person and lowered test ECE in 6 of 6 folds (3 seeds); fitting it on several people
(cross-fitted out-of-fold predictions of the training subjects) did no better.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from harfusion.evaluation.calibration import fit_temperature


def trained_class_windows(labels: Tensor, train_counts: Tensor) -> Tensor:
    """Mask of the windows whose class had training windows (`train_counts`: windows per class
    in the training split)."""
    return train_counts.to(labels.device)[labels] > 0


def fit_known_class_temperature(logits: Tensor, labels: Tensor, train_counts: Tensor) -> float:
    """The temperature minimising NLL over the validation windows of trained classes; 1.0 (no
    change) when there are none."""
    known = trained_class_windows(labels, train_counts)
    if not bool(known.any()):
        return 1.0
    return fit_temperature(logits[known], labels[known])


def average_probabilities(member_logits: Sequence[Tensor]) -> Tensor:
    """An ensemble's prediction as logits: the log of its members' mean probability, so softmax
    of the result is the average, and a temperature or NLL applies to it as to one model's."""
    if not member_logits:
        raise ValueError("an ensemble needs at least one member")
    stacked = torch.stack([logits.float().log_softmax(dim=-1) for logits in member_logits])
    return stacked.logsumexp(dim=0) - math.log(len(member_logits))
