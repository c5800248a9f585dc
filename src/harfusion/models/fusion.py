"""Fusion models: `early`, `late` and `hybrid`, all driven by a modality-presence mask.

Every model takes `inputs` (modality -> [batch, time, channels]) and `mask` ([batch, M] bool,
columns in `params.modalities` order) and first zeroes absent modalities with `apply_mask`, so
modality dropout and missing-modality evaluation are the same operation for all three. Each puts
dropout right before its classifier(s), which gives MC-dropout at evaluation something to sample.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple

import torch
from torch import Tensor, nn

from harfusion.data.pamap2 import modality_columns
from harfusion.models.encoders import build_encoder
from harfusion.models.masking import apply_mask
from harfusion.params import ModelParams, Params
from harfusion.registry import Registry


class FusionOutput(NamedTuple):
    logits: Tensor  # [batch, classes]; log-probabilities up to a constant
    attention: Tensor | None = None  # [batch, M, M], query x key, averaged over heads
    modality_weights: Tensor | None = None  # [batch, M], sums to 1 over present modalities


def channels_for(params: Params) -> dict[str, int]:
    """Input channels per modality, from the same column selection the dataset uses."""
    return {
        modality: len(modality_columns(modality, params.dataset.channel_groups))
        for modality in params.modalities
    }


def _classifier(embed_dim: int, num_classes: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.Dropout(dropout), nn.Linear(embed_dim, num_classes))


def _at_least_one(mask: Tensor) -> Tensor:
    """Treat a row with no modality present as all present, so softmaxes over present modalities
    stay finite; the callers decide what such a row outputs."""
    return mask | ~mask.any(dim=1, keepdim=True)


class FusionModel(nn.Module):
    """Shared entry point: validate and mask the inputs, then let the subclass fuse them."""

    def __init__(self, modalities: Sequence[str]) -> None:
        super().__init__()
        self.modalities = tuple(modalities)

    def forward(self, inputs: Mapping[str, Tensor], mask: Tensor) -> FusionOutput:
        return self.fuse(apply_mask(inputs, mask, self.modalities), mask)

    def fuse(self, inputs: Mapping[str, Tensor], mask: Tensor) -> FusionOutput:
        raise NotImplementedError


class EarlyFusion(FusionModel):
    """All channels concatenated, plus the mask as constant channels so the single encoder can
    tell an absent modality from one that reads zero; one encoder (IMU settings), one classifier."""

    def __init__(
        self, modalities: Sequence[str], channels: Mapping[str, int], model: ModelParams, k: int
    ) -> None:
        super().__init__(modalities)
        in_channels = sum(channels[m] for m in self.modalities) + len(self.modalities)
        self.encoder = build_encoder("early", in_channels, model)
        self.classifier = _classifier(model.embed_dim, k, model.dropout)

    def fuse(self, inputs: Mapping[str, Tensor], mask: Tensor) -> FusionOutput:
        features = [inputs[m] for m in self.modalities]
        batch, steps = features[0].shape[:2]
        presence = mask.to(features[0].dtype).unsqueeze(1).expand(batch, steps, -1)
        stacked = torch.cat([*features, presence], dim=-1)
        return FusionOutput(self.classifier(self.encoder(stacked)))


class LateFusion(FusionModel):
    """One encoder + classifier per modality; class probabilities averaged over present ones.

    The logits returned are the log of that mixture, so cross-entropy on them is the mixture's
    NLL. A row with no modality present gets uniform probabilities."""

    def __init__(
        self, modalities: Sequence[str], channels: Mapping[str, int], model: ModelParams, k: int
    ) -> None:
        super().__init__(modalities)
        self.encoders = nn.ModuleDict(
            {m: build_encoder(m, channels[m], model) for m in self.modalities}
        )
        self.classifiers = nn.ModuleDict(
            {m: _classifier(model.embed_dim, k, model.dropout) for m in self.modalities}
        )

    def fuse(self, inputs: Mapping[str, Tensor], mask: Tensor) -> FusionOutput:
        log_probs = torch.stack(
            [
                torch.log_softmax(self.classifiers[m](self.encoders[m](inputs[m])), dim=-1)
                for m in self.modalities
            ],
            dim=1,
        )  # [batch, M, classes]
        present = _at_least_one(mask)
        # log(mean over present of p) = logsumexp over present of log p - log(count)
        kept = log_probs.masked_fill(~present.unsqueeze(-1), float("-inf"))
        count = present.sum(dim=1, keepdim=True).to(log_probs.dtype)
        mixture = torch.logsumexp(kept, dim=1) - count.log()
        uniform = torch.full_like(mixture, -math.log(mixture.shape[-1]))
        logits = torch.where(mask.any(dim=1, keepdim=True), mixture, uniform)
        weights = mask.to(logits.dtype)
        return FusionOutput(
            logits, modality_weights=weights / weights.sum(1, keepdim=True).clamp(1)
        )


class HybridFusion(FusionModel):
    """Per-modality embeddings attend to each other across modalities, then a learned weighting
    pools the present ones.

    Absent modalities are masked as attention keys and get zero pooling weight, so they influence
    nothing. A row with none present is treated as all present (finite output, no NaN softmax).
    """

    def __init__(
        self,
        modalities: Sequence[str],
        channels: Mapping[str, int],
        model: ModelParams,
        k: int,
        heads: int,
    ) -> None:
        super().__init__(modalities)
        dim = model.embed_dim
        self.encoders = nn.ModuleDict(
            {m: build_encoder(m, channels[m], model) for m in self.modalities}
        )
        self.modality_type = nn.Parameter(torch.randn(len(self.modalities), dim) * 0.02)
        self.attention = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm = nn.LayerNorm(dim)
        self.score = nn.Linear(dim, 1, bias=False)  # softmax ignores a shared shift
        self.classifier = _classifier(dim, k, model.dropout)

    def fuse(self, inputs: Mapping[str, Tensor], mask: Tensor) -> FusionOutput:
        tokens = torch.stack([self.encoders[m](inputs[m]) for m in self.modalities], dim=1)
        tokens = tokens + self.modality_type
        present = _at_least_one(mask)
        attended, attention = self.attention(
            tokens, tokens, tokens, key_padding_mask=~present, average_attn_weights=True
        )
        tokens = self.norm(tokens + attended)
        scores = self.score(tokens).squeeze(-1).masked_fill(~present, float("-inf"))
        weights = torch.softmax(scores, dim=1)  # [batch, M]; exactly 0 for absent modalities
        fused = (weights.unsqueeze(-1) * tokens).sum(dim=1)
        return FusionOutput(self.classifier(fused), attention, weights)


# `params.fusion`'s choices: each builds its model from the params, the channels per modality
# and the number of classes.
FUSIONS: Registry[Callable[[Params, Mapping[str, int], int], FusionModel]] = Registry(
    "fusion",
    {
        "early": lambda p, channels, k: EarlyFusion(p.modalities, channels, p.model, k),
        "late": lambda p, channels, k: LateFusion(p.modalities, channels, p.model, k),
        "hybrid": lambda p, channels, k: HybridFusion(p.modalities, channels, p.model, k, p.heads),
    },
)


def build_model(params: Params, channels: Mapping[str, int], num_classes: int) -> FusionModel:
    """The fusion model named by `params.fusion` over `params.modalities` (mask column order)."""
    build = FUSIONS[params.fusion]
    missing = [m for m in params.modalities if m not in channels]
    if missing:
        raise ValueError(f"no channel count for modalities {missing}; got {dict(channels)}")
    if num_classes < 2:
        raise ValueError(f"need at least 2 classes, got {num_classes}")
    return build(params, channels, num_classes)
