"""Several trained members of one architecture as one model: their mean probability.

A model file holds a list of members (one today); averaging the probabilities of independently
trained members is what keeps calibration best under a shift of people (Ovadia et al. 2019).
One member is the member itself, output for output.
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
        log_probs = torch.stack([out.logits.log_softmax(dim=-1) for out in outputs])
        return FusionOutput(
            torch.logsumexp(log_probs, dim=0) - math.log(len(outputs)),
            _mean([out.attention for out in outputs]),
            _mean([out.modality_weights for out in outputs]),
        )


def _mean(tensors: list[Tensor | None]) -> Tensor | None:
    return None if any(t is None for t in tensors) else torch.stack(tensors).mean(dim=0)  # ty: ignore[invalid-argument-type]
