"""Training-time augmentation of normalised windows: sensor noise, timing jitter, sensor
rotation, amplitude scaling, time warping and modality dropout (`augment` applies them all)."""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor

from harfusion.params import TrainParams


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


def random_rotations(batch: int, max_degrees: float, device: torch.device | None = None) -> Tensor:
    """[batch, 3, 3] rotations about a uniformly random axis by an angle uniform in
    [0, max_degrees]: a sensor strapped on at a slightly different angle (Rodrigues' formula)."""
    axis = torch.randn(batch, 3, device=device)
    axis = axis / axis.norm(dim=1, keepdim=True).clamp_min(1e-12)
    angle = torch.rand(batch, 1, 1, device=device) * math.radians(max_degrees)
    x, y, z = axis.unbind(dim=1)
    zero = torch.zeros_like(x)
    cross = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], dim=1).view(batch, 3, 3)
    eye = torch.eye(3, device=device).expand(batch, 3, 3)
    return eye + angle.sin() * cross + (1 - angle.cos()) * (cross @ cross)


def rotate_sensor(
    x: Tensor, rotations: Tensor, triads: list[list[int]], mean: Tensor, std: Tensor
) -> Tensor:
    """Turn every 3-axis group of one IMU (acc, gyro, mag) by the same per-window rotation.

    `x` is normalised per channel with the train split's `mean`/`std`, and a rotation mixes
    axes whose means and scales differ, so it is applied in physical units: un-normalise,
    rotate, re-normalise. Rows that were missing (a dropped packet: every channel 0 after
    NaN-to-0) stay missing rather than turning into a rotated mean.
    """
    if not triads:
        return x
    missing = (x == 0).all(dim=-1, keepdim=True)
    out = x.clone()
    for columns in triads:
        index = torch.tensor(columns, device=x.device)
        physical = x[..., index] * std[index] + mean[index]
        turned = torch.einsum("bij,btj->bti", rotations, physical)
        out[..., index] = (turned - mean[index]) / std[index]
    return torch.where(missing, x, out)


def scale_amplitude(x: Tensor, std: float) -> Tensor:
    """Multiply each window by one factor ~ N(1, std) (clamped to stay positive).

    People move with different vigour; one factor per sensor and window keeps the direction
    of every 3-axis reading. Applied to the normalised values, it scales the deviation from
    the training data's mean.
    """
    if std <= 0:
        return x
    factor = (1 + torch.randn(x.shape[0], 1, 1, device=x.device) * std).clamp_min(0.1)
    return x * factor


def time_warp(inputs: dict[str, Tensor], strength: float, knots: int = 4) -> dict[str, Tensor]:
    """Resample every modality of a window along one smooth random time axis.

    Cadence differs between people and within a recording; the local speed follows
    exp(N(0, strength)) at `knots` points, linearly interpolated, around the window's centre,
    so a faster warp also reads a little past the window (edge samples repeat, as in `jitter`).
    All modalities share one warp, since they were recorded together.
    """
    if strength <= 0 or not inputs:
        return inputs
    first = next(iter(inputs.values()))
    batch, steps, device = first.shape[0], first.shape[1], first.device
    speed = torch.exp(torch.randn(batch, 1, knots, device=device) * strength)
    speed = F.interpolate(speed, size=steps, mode="linear", align_corners=True).squeeze(1)
    position = speed.cumsum(dim=1)
    position = position - position[:, steps // 2 : steps // 2 + 1] + steps // 2
    position = position.clamp(0, steps - 1)
    below = position.floor().long().clamp(max=steps - 2) if steps > 1 else position.long()
    weight = (position - below).unsqueeze(-1)
    warped = {}
    for modality, x in inputs.items():
        lower = torch.gather(x, 1, below.unsqueeze(-1).expand_as(x))
        upper = torch.gather(x, 1, (below + (steps > 1)).unsqueeze(-1).expand_as(x))
        warped[modality] = lower + (upper - lower) * weight
    return warped


def random_modality_mask(
    batch_size: int,
    num_modalities: int,
    p: float,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    """Drop each modality independently with probability `p`, keeping at least one per row.

    A row that would lose every modality keeps one chosen uniformly at random, so the effective
    drop rate is `p - p**M / M` rather than exactly `p`. Random numbers are drawn on the
    generator's device (so seeded runs agree between CPU and GPU) and moved to `device`.
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"modality drop probability must be in [0, 1], got {p}")
    source = generator.device if generator is not None else torch.device("cpu")
    keep = torch.rand(batch_size, num_modalities, generator=generator, device=source) >= p
    rescue = torch.randint(num_modalities, (batch_size,), generator=generator, device=source)
    none_kept = ~keep.any(dim=1)
    keep[none_kept, rescue[none_kept]] = True
    return keep.to(device) if device is not None else keep


def augment(
    inputs: Mapping[str, Tensor],
    mask: Tensor,
    train: TrainParams,
    triads: Mapping[str, list[list[int]]],
    normalisation: Mapping[str, tuple[Tensor, Tensor]],
) -> tuple[dict[str, Tensor], Tensor]:
    """Every training-time perturbation of one batch, in one fixed order (a seeded run's random
    draws depend on it): time warp, sensor rotation, amplitude scaling, jitter, noise, and last
    modality dropout, which narrows `mask` (the modalities the data hold), never to none.
    `triads`: per modality the positions of its 3-axis vectors (a modality with none is not
    turned); `normalisation`: per modality the train mean and std of its inputs, which rotation
    needs to work in physical units."""
    inputs = time_warp(dict(inputs), train.time_warp)  # a copy: never the batch's own
    if train.rotation_degrees > 0:
        for m, x in inputs.items():
            if triads.get(m):
                turn = random_rotations(len(x), train.rotation_degrees, device=x.device)
                inputs[m] = rotate_sensor(x, turn, triads[m], *normalisation[m])
    inputs = {
        m: add_noise(
            jitter(scale_amplitude(x, train.scale_std), train.jitter_steps), train.noise_std
        )
        for m, x in inputs.items()
    }
    batch, modalities = mask.shape
    dropped = mask & random_modality_mask(
        batch, modalities, train.modality_dropout, device=mask.device
    )
    # A window whose data lack some modalities keeps at least one it has, as one with all does.
    return inputs, torch.where(dropped.any(dim=1, keepdim=True), dropped, mask)
