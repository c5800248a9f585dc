"""Several trained members of one architecture as one model: their mean probability.

A model file holds a list of members (`train.ensemble` of them, each trained with its own seed);
averaging the probabilities of independently trained members is what keeps calibration best
under a shift of people (Ovadia et al. 2019), and on real leave-one-subject-out three members
lifted the worst fold × seed run from 0.34 to 0.69 (benchmarks/calibration_study.md). One member
is the member itself, output for output.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn

from harfusion.models.fusion import FusionModel, FusionOutput


class Ensemble(FusionModel):
    def __init__(self, members: Sequence[FusionModel]) -> None:
        super().__init__(members[0].modalities)
        self.members = nn.ModuleList(members)

    def forward(self, inputs: Mapping[str, Tensor], mask: Tensor) -> FusionOutput:
        """Each member masks its own inputs; the logits are the log of the mean probability,
        so a softmax, a temperature or an NLL applies to them as to one model's."""
        if len(self.members) == 1:
            return self.members[0](inputs, mask)
        outputs = [member(inputs, mask) for member in self.members]
        return FusionOutput(
            mean_probability([out.logits for out in outputs]),
            _mean([out.attention for out in outputs]),
            _mean([out.modality_weights for out in outputs]),
        )


def mean_probability(member_logits: Sequence[Tensor]) -> Tensor:
    """The members' mean probability as logits (its log), over the last dimension."""
    if not member_logits:
        raise ValueError("an ensemble needs at least one member")
    log_probs = torch.stack([logits.log_softmax(dim=-1) for logits in member_logits])
    return torch.logsumexp(log_probs, dim=0) - math.log(len(member_logits))


def _mean(tensors: list[Tensor | None]) -> Tensor | None:
    return None if any(t is None for t in tensors) else torch.stack(tensors).mean(dim=0)  # ty: ignore[invalid-argument-type]
