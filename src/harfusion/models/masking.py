"""Modality presence: one mechanism for training's modality dropout and evaluation's missing runs.

A modality is absent in a row when its mask entry is False. Absence always means two things at
once — its features become zeros *and* the model is told through the mask — so that dropout in
training removes information for real and evaluation's missing-modality runs see exactly what
training taught the model to handle.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import combinations

import torch
from torch import Tensor


def _check_mask(mask: Tensor, modalities: Sequence[str]) -> None:
    if mask.dtype != torch.bool or mask.dim() != 2 or mask.shape[1] != len(modalities):
        raise ValueError(
            f"mask must be a bool tensor [batch, {len(modalities)}] for modalities "
            f"{list(modalities)}, got {mask.dtype} {tuple(mask.shape)}"
        )


def apply_mask(
    inputs: Mapping[str, Tensor], mask: Tensor, modalities: Sequence[str]
) -> dict[str, Tensor]:
    """Zero the features of absent modalities (`mask[b, i]` False for `modalities[i]`).

    `torch.where` rather than multiplication, so NaN/inf in an absent modality cannot leak into
    the output as `NaN * 0`. Keys not named in `modalities` pass through unchanged.
    """
    _check_mask(mask, modalities)
    masked = dict(inputs)
    for index, modality in enumerate(modalities):
        if modality not in inputs:
            raise KeyError(f"input for modality {modality!r} missing; got {sorted(inputs)}")
        features = inputs[modality]
        present = mask[:, index].reshape(-1, *([1] * (features.dim() - 1)))
        masked[modality] = torch.where(present, features, features.new_zeros(()))
    return masked


def subset_mask(
    batch_size: int,
    modalities: Sequence[str],
    present: Sequence[str],
    device: torch.device | str | None = None,
) -> Tensor:
    """The same presence row for every sample: True exactly for the modalities in `present`."""
    unknown = set(present) - set(modalities)
    if unknown:
        raise ValueError(f"modalities {sorted(unknown)} are not among {list(modalities)}")
    row = torch.tensor([modality in present for modality in modalities], device=device)
    return row.unsqueeze(0).expand(batch_size, -1).clone()


def nonempty_subsets(modalities: Sequence[str]) -> list[tuple[str, ...]]:
    """All 2^M - 1 non-empty subsets: by size, then in `modalities` order (stable across runs)."""
    return [
        subset
        for size in range(1, len(modalities) + 1)
        for subset in combinations(modalities, size)
    ]
