"""Per-modality sequence encoders: [batch, time, channels] windows -> [batch, embed_dim].

A 1024-step window is far too long for anything sequential on a 2-core CPU (a GRU over the raw
steps trains at single-digit windows per second), so every encoder first shortens it with a
strided 1-D conv front end (x32 with the default strides) and only then pools: mean+max (`cnn`),
a bidirectional GRU (`cnn_gru`), or a transformer-encoder layer with attention pooling
(`cnn_attention`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from harfusion.params import ModelParams
from harfusion.registry import Registry

# `model.norm`'s choices, built from a layer's channel count.
NORMS: Registry[Callable[[int], nn.Module]] = Registry(
    "norm",
    {
        "batch": nn.BatchNorm1d,
        "group": lambda channels: nn.GroupNorm(math.gcd(8, channels), channels),
    },
)


def _conv_front(
    in_channels: int,
    channels: Sequence[int],
    strides: Sequence[int],
    norm: Callable[[int], nn.Module],
) -> nn.Sequential:
    """Strided Conv1d+norm+GELU layers; kernel 2s+1 overlaps neighbouring strides, and padding s
    makes each layer's output exactly ceil(T / s) steps long."""
    layers: list[nn.Module] = []
    for out_channels, stride in zip(channels, strides, strict=True):
        layers += [
            nn.Conv1d(
                in_channels, out_channels, 2 * stride + 1, stride, padding=stride, bias=False
            ),
            norm(out_channels),
            nn.GELU(),
        ]
        in_channels = out_channels
    return nn.Sequential(*layers)


def _projection(in_features: int, embed_dim: int) -> nn.Sequential:
    """Linear+LayerNorm+GELU, so every pooling stage hands fusion embeddings on the same scale."""
    return nn.Sequential(nn.Linear(in_features, embed_dim), nn.LayerNorm(embed_dim), nn.GELU())


class MeanMaxPool(nn.Module):
    """Mean (overall level, posture) and max (peaks, impacts) over the downsampled steps."""

    def __init__(self, channels: int, embed_dim: int) -> None:
        super().__init__()
        self.project = _projection(2 * channels, embed_dim)

    def forward(self, steps: Tensor) -> Tensor:
        return self.project(torch.cat([steps.mean(dim=1), steps.amax(dim=1)], dim=-1))


class GRUPool(nn.Module):
    """A bidirectional GRU over the downsampled steps; its two final states summarise the window."""

    def __init__(self, channels: int, embed_dim: int) -> None:
        super().__init__()
        self.gru = nn.GRU(channels, embed_dim, batch_first=True, bidirectional=True)
        self.project = _projection(2 * embed_dim, embed_dim)

    def forward(self, steps: Tensor) -> Tensor:
        _, final = self.gru(steps)  # final: [2 directions, batch, embed_dim]
        return self.project(torch.cat([final[0], final[1]], dim=-1))


def _sinusoidal_positions(
    length: int, dim: int, device: torch.device, dtype: torch.dtype
) -> Tensor:
    """Fixed positions, so one model serves every chunk_size without a learned length limit."""
    position = torch.arange(length, device=device, dtype=torch.float32).unsqueeze(1)
    frequency = torch.exp(
        torch.arange(0, dim, 2, device=device, dtype=torch.float32) * (-math.log(10_000.0) / dim)
    )
    table = torch.zeros(length, dim, device=device)
    table[:, 0::2] = torch.sin(position * frequency)
    table[:, 1::2] = torch.cos(position * frequency[: dim // 2])
    return table.to(dtype)


class AttentionPool(nn.Module):
    """One pre-norm transformer-encoder layer over the steps, then learned attention pooling."""

    def __init__(self, channels: int, embed_dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.embed = nn.Linear(channels, embed_dim)
        self.layer = nn.TransformerEncoderLayer(
            embed_dim,
            heads,
            dim_feedforward=2 * embed_dim,
            dropout=dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.score = nn.Linear(embed_dim, 1, bias=False)  # softmax ignores a shared shift
        self.project = _projection(embed_dim, embed_dim)

    def forward(self, steps: Tensor) -> Tensor:
        tokens = self.embed(steps)
        tokens = tokens + _sinusoidal_positions(
            tokens.shape[1], tokens.shape[2], tokens.device, tokens.dtype
        )
        tokens = self.layer(tokens)
        weights = torch.softmax(self.score(tokens), dim=1)  # [batch, steps, 1]
        return self.project((weights * tokens).sum(dim=1))


# `model.encoder`'s choices: the pooling stage after the conv front end, built from the front
# end's width, the embedding size, the attention heads and the dropout.
ENCODERS: Registry[Callable[[int, int, int, float], nn.Module]] = Registry(
    "encoder",
    {
        "cnn": lambda width, embed_dim, heads, dropout: MeanMaxPool(width, embed_dim),
        "cnn_gru": lambda width, embed_dim, heads, dropout: GRUPool(width, embed_dim),
        "cnn_attention": AttentionPool,
    },
)


class SequenceEncoder(nn.Module):
    """Conv front end + pooling stage: [batch, time, channels] -> [batch, embed_dim]."""

    def __init__(
        self,
        in_channels: int,
        conv_channels: Sequence[int],
        conv_strides: Sequence[int],
        kind: str = "cnn_gru",
        embed_dim: int = 64,
        norm: str = "batch",
        heads: int = 4,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        pool, normalise = ENCODERS[kind], NORMS[norm]
        self.in_channels = in_channels
        self.embed_dim = embed_dim
        self.front = _conv_front(in_channels, conv_channels, conv_strides, normalise)
        self.level = nn.Linear(in_channels, embed_dim)
        self.pool = pool(conv_channels[-1], embed_dim, heads, dropout)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 3 or x.shape[2] != self.in_channels:
            raise ValueError(
                f"expected input [batch, time, {self.in_channels}], got {tuple(x.shape)}"
            )
        level = x.mean(dim=1, keepdim=True)
        steps = self.front((x - level).transpose(1, 2)).transpose(1, 2)  # [batch, steps, width]
        return self.pool(steps) + self.level(level.squeeze(1))


def build_encoder(kind: str, in_channels: int, model: ModelParams) -> SequenceEncoder:
    """The encoder for one modality of a kind of signal (`motion`, `waveform`, `slow`): each
    kind has its own front end (`model.front`); early fusion's concatenation uses `motion`'s."""
    front = getattr(model.front, kind)
    return SequenceEncoder(
        in_channels,
        front.channels,
        front.strides,
        kind=model.encoder,
        embed_dim=model.embed_dim,
        norm=model.norm,
        heads=model.encoder_heads,
        dropout=model.dropout,
    )
