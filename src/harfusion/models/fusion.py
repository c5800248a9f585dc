"""Fusion models: `early`, `late` and `hybrid`, all driven by a modality-presence mask.

Every model takes `inputs` (modality -> [batch, time, channels]) and `mask` ([batch, M] bool,
columns in the order of the modalities it was built for) and first zeroes absent modalities
with `apply_mask`, so modality dropout and missing-modality evaluation are the same operation
for all three. Each puts dropout right before its classifier(s), which gives MC-dropout at
evaluation something to sample.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple

import torch
from torch import Tensor, nn

from harfusion.models.encoders import build_encoder
from harfusion.models.masking import apply_mask
from harfusion.params import ModelParams
from harfusion.registry import Registry


class FusionOutput(NamedTuple):
    logits: Tensor  # [batch, classes]; log-probabilities up to a constant
    attention: Tensor | None = None  # [batch, M, M], query x key, averaged over heads
    modality_weights: Tensor | None = None  # [batch, M], sums to 1 over present modalities


class Shape(NamedTuple):
    """What a fusion model is built for: per modality (in mask order) its input channels and
    its kind of signal, and the number of classes."""

    channels: Mapping[str, int]
    kinds: Mapping[str, str]
    classes: int

    @property
    def modalities(self) -> tuple[str, ...]:
        return tuple(self.channels)


def _classifier(embed_dim: int, num_classes: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.Dropout(dropout), nn.Linear(embed_dim, num_classes))


def _at_least_one(mask: Tensor) -> Tensor:
    """Treat a row with no modality present as all present, so softmaxes over present modalities
    stay finite; the callers decide what such a row outputs."""
    return mask | ~mask.any(dim=1, keepdim=True)


def _encoders(shape: Shape, model: ModelParams) -> nn.ModuleDict:
    return nn.ModuleDict(
        {m: build_encoder(shape.kinds[m], shape.channels[m], model) for m in shape.modalities}
    )


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
    tell an absent modality from one that reads zero; one encoder (motion's settings), one
    classifier."""

    def __init__(self, shape: Shape, model: ModelParams) -> None:
        super().__init__(shape.modalities)
        in_channels = sum(shape.channels.values()) + len(self.modalities)
        self.encoder = build_encoder("motion", in_channels, model)
        self.classifier = _classifier(model.embed_dim, shape.classes, model.dropout)

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

    def __init__(self, shape: Shape, model: ModelParams) -> None:
        super().__init__(shape.modalities)
        self.encoders = _encoders(shape, model)
        self.classifiers = nn.ModuleDict(
            {m: _classifier(model.embed_dim, shape.classes, model.dropout) for m in self.modalities}
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

    def __init__(self, shape: Shape, model: ModelParams, heads: int) -> None:
        super().__init__(shape.modalities)
        dim = model.embed_dim
        self.encoders = _encoders(shape, model)
        self.modality_type = nn.Parameter(torch.randn(len(self.modalities), dim) * 0.02)
        self.attention = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm = nn.LayerNorm(dim)
        self.score = nn.Linear(dim, 1, bias=False)  # softmax ignores a shared shift
        self.classifier = _classifier(dim, shape.classes, model.dropout)

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


# `params.fusion`'s choices: each builds its model from the shape, the model params and `heads`.
FUSIONS: Registry[Callable[[Shape, ModelParams, int], FusionModel]] = Registry(
    "fusion",
    {
        "early": lambda shape, model, heads: EarlyFusion(shape, model),
        "late": lambda shape, model, heads: LateFusion(shape, model),
        "hybrid": lambda shape, model, heads: HybridFusion(shape, model, heads),
    },
)


def build_model(fusion: str, shape: Shape, model: ModelParams, heads: int) -> FusionModel:
    """The fusion model named `fusion` for `shape` (its modalities' order is the mask's)."""
    build = FUSIONS[fusion]
    missing = [m for m in shape.modalities if m not in shape.kinds]
    if missing:
        raise ValueError(f"no kind of signal for modalities {missing}; got {dict(shape.kinds)}")
    if shape.classes < 2:
        raise ValueError(f"need at least 2 classes, got {shape.classes}")
    return build(shape, model, heads)
