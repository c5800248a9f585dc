"""Training augmentation: rotations in physical units, amplitude scaling, time warping."""

from __future__ import annotations

import math

import pytest
import torch

from harfusion.errors import HarfusionError
from harfusion.models.augment import random_rotations, rotate_sensor, scale_amplitude, time_warp
from harfusion.params import Params
from harfusion.training.classifier import FusionClassifier
from tests.helpers import PAMAP2, TINY, pamap2_inputs


def test_random_rotations_are_proper_and_bounded() -> None:
    torch.manual_seed(0)
    turns = random_rotations(256, 30.0)
    eye = torch.eye(3).expand(256, 3, 3)
    assert torch.allclose(turns @ turns.transpose(1, 2), eye, atol=1e-5)
    assert torch.allclose(torch.linalg.det(turns), torch.ones(256), atol=1e-5)
    angles = torch.arccos(((turns.diagonal(dim1=1, dim2=2).sum(1) - 1) / 2).clamp(-1, 1))
    assert angles.max() <= math.radians(30.0) + 1e-4 and angles.max() > math.radians(20.0)
    assert torch.allclose(random_rotations(4, 0.0), torch.eye(3).expand(4, 3, 3))


def test_vector_triads_follow_the_channel_groups() -> None:
    triads = PAMAP2.vector_triads
    assert triads("imu_hand", ["acc16", "gyro", "mag"]) == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
    assert triads("imu_ankle", ["temperature", "acc16", "orientation", "mag"]) == [
        [1, 2, 3],
        [8, 9, 10],
    ]
    assert triads("heart_rate", ["heart_rate"]) == []  # not turned


def test_rotation_turns_physical_vectors_not_normalised_ones() -> None:
    """Gravity (~9.8 m/s² on one axis) dominates the acc means; rotating the normalised values
    directly would turn a vector that does not exist. Every triad turns by the same rotation."""
    torch.manual_seed(0)
    batch, steps = 5, 32
    physical = torch.randn(batch, steps, 9)
    physical[..., 2] += 9.8  # gravity on acc z
    physical[..., 6:] = physical[..., 6:] * 20 + torch.tensor([15.0, -30.0, 5.0])  # mag, µT
    mean = physical.mean(dim=(0, 1))
    std = physical.std(dim=(0, 1))
    normalised = (physical - mean) / std
    normalised[1, 7] = 0.0  # a dropped packet: every channel NaN, then 0
    turns = random_rotations(batch, 90.0)
    triads = PAMAP2.vector_triads("imu_chest", ["acc16", "gyro", "mag"])
    rotated = rotate_sensor(normalised, turns, triads, mean, std) * std + mean
    for columns in triads:
        expected = torch.einsum("bij,btj->bti", turns, physical[..., columns])
        keep = torch.ones(batch, steps, dtype=torch.bool)
        keep[1, 7] = False
        assert torch.allclose(rotated[..., columns][keep], expected[keep], atol=1e-4)
        assert torch.allclose(
            rotated[..., columns][keep].norm(dim=-1), physical[..., columns][keep].norm(dim=-1)
        )
    assert rotate_sensor(normalised, turns, triads, mean, std)[1, 7].eq(0).all()
    naive = torch.einsum("bij,btj->bti", turns, normalised[..., :3]) * std[:3] + mean[:3]
    assert not torch.allclose(naive, rotated[..., :3], atol=1e-2)


def test_scale_amplitude_one_factor_per_window() -> None:
    torch.manual_seed(0)
    x = torch.rand(8, 16, 9) + 0.5
    scaled = scale_amplitude(x, 0.2)
    ratio = scaled / x
    assert torch.allclose(ratio, ratio[:, :1, :1].expand_as(ratio))
    assert ratio[:, 0, 0].std() > 0.05
    assert scale_amplitude(x, 0.0) is x


def test_time_warp_is_smooth_monotone_and_shared_by_modalities() -> None:
    torch.manual_seed(0)
    ramp = torch.arange(64.0).view(1, 64, 1).expand(6, 64, 2)
    inputs = {"imu_hand": ramp, "heart_rate": 3 * ramp[..., :1]}
    warped = time_warp(inputs, 0.2)
    hand, heart = warped["imu_hand"], warped["heart_rate"]
    assert hand.shape == ramp.shape and heart.shape == (6, 64, 1)
    assert (hand.diff(dim=1) >= 0).all()  # time never runs backwards
    assert not torch.allclose(hand, ramp)  # something was warped
    assert torch.allclose(heart, 3 * hand[..., :1], atol=1e-4)  # one warp for every modality
    assert time_warp(inputs, 0.0) is inputs


@pytest.mark.parametrize("option", ["rotation_degrees", "scale_std", "time_warp"])
def test_training_loss_uses_each_augmentation(option: str) -> None:
    base = Params.model_validate(
        {
            "model": TINY["model"] | {"front": {"motion": {"channels": [8], "strides": [4]}}},
            "train": {
                "noise_std": 0.0,
                "jitter_steps": 0,
                "modality_dropout": 0.0,
                "rotation_degrees": 0.0,
            },
        }
    )
    on = base.model_copy(
        update={
            "train": base.train.model_copy(
                update={option: 45.0 if option == "rotation_degrees" else 0.5}
            )
        }
    )
    inputs = pamap2_inputs(base)
    channels = inputs.channels
    batch = {
        "inputs": {m: torch.randn(4, 32, c) for m, c in channels.items()},
        "mask": torch.ones(4, len(channels), dtype=torch.bool),
        "label": torch.tensor([0, 1, 2, 0]),
    }
    original = {m: x.clone() for m, x in batch["inputs"].items()}
    losses = []
    for params in (base, on):
        torch.manual_seed(0)
        module = FusionClassifier(  # eval: no dropout noise
            params, channels, inputs.kinds, inputs.triads, 3
        ).eval()
        torch.manual_seed(1)
        losses.append(module.training_loss(batch))
    assert not torch.allclose(losses[0], losses[1])
    assert all(torch.equal(batch["inputs"][m], original[m]) for m in original)  # not in place


def test_normalisation_must_cover_every_modality_the_model_rotates() -> None:
    """Stats missing for one modality used to rotate that one as if it were in physical units."""
    params = Params.model_validate(TINY)
    inputs = pamap2_inputs(params)
    channels = inputs.channels
    stats = {m: (torch.zeros(c), torch.ones(c)) for m, c in channels.items()}
    shape = (params, channels, inputs.kinds, inputs.triads, 3)
    module = FusionClassifier(*shape, normalisation=stats)
    assert torch.equal(module.get_buffer("std_imu_hand"), torch.ones(channels["imu_hand"]))
    del stats["imu_chest"]
    with pytest.raises(HarfusionError, match="normalisation is for heart_rate, imu_ankle, imu_ha"):
        FusionClassifier(*shape, normalisation=stats)
