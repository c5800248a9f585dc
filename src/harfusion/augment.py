"""Training-time augmentation of normalised windows: sensor noise and timing jitter."""

from __future__ import annotations

import torch
from torch import Tensor


def add_noise(x: Tensor, std: float) -> Tensor:
    return x + torch.randn_like(x) * std if std > 0 else x


def jitter(x: Tensor, max_steps: int) -> Tensor:
    """Shift each window in time by up to `max_steps`, repeating the edge sample.

    Windows are cut at fixed strides, so the same motion would otherwise always start at the same
    phase; shifting teaches the model that phase does not matter.
    """
    if max_steps <= 0:
        return x
    batch, steps, _ = x.shape
    shift = torch.randint(-max_steps, max_steps + 1, (batch, 1), device=x.device)
    index = (torch.arange(steps, device=x.device) + shift).clamp(0, steps - 1)
    return torch.gather(x, 1, index.unsqueeze(-1).expand_as(x))
