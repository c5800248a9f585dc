"""Encoders, fusion models and the modality-presence mask, on tiny tensors."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
from torch import Tensor, nn

from harfusion.models.augment import random_modality_mask
from harfusion.models.encoders import ENCODERS, build_encoder
from harfusion.models.fusion import (
    FUSIONS,
    EarlyFusion,
    FusionModel,
    HybridFusion,
    LateFusion,
    Shape,
    build_model,
)
from harfusion.models.masking import apply_mask, nonempty_subsets, subset_mask
from harfusion.params import ModelParams, Params
from tests.helpers import MODALITIES, TINY_MODEL, pamap2_inputs, pamap2_model

CLASSES = 4
STEPS = 64
SMALL_MODEL: dict[str, Any] = TINY_MODEL | {
    "front": TINY_MODEL["front"] | {"slow": {"channels": [4], "strides": [8]}}
}


def tiny_params(**overrides: Any) -> Params:
    model = {**SMALL_MODEL, **overrides.pop("model", {})}
    return Params.model_validate({**overrides, "model": model})


def tiny_model(fusion: str, **overrides: Any) -> tuple[FusionModel, Params]:
    torch.manual_seed(0)
    params = tiny_params(fusion=fusion, **overrides)
    return pamap2_model(params, CLASSES), params


def make_inputs(params: Params, batch: int = 4, steps: int = STEPS) -> dict[str, Tensor]:
    generator = torch.Generator().manual_seed(1)
    return {
        modality: torch.randn(batch, steps, channels, generator=generator)
        for modality, channels in pamap2_inputs(params).channels.items()
    }


def all_present(batch: int, params: Params) -> Tensor:
    return torch.ones(batch, len(pamap2_inputs(params).modalities), dtype=torch.bool)


# --- masking -------------------------------------------------------------------------------


def test_apply_mask_zeroes_absent_features_even_nan_and_inf() -> None:
    inputs = {"a": torch.full((2, 5, 3), float("nan")), "b": torch.full((2, 5, 1), float("inf"))}
    mask = torch.tensor([[True, False], [False, True]])
    masked = apply_mask(inputs, mask, ["a", "b"])
    assert torch.isnan(masked["a"][0]).all() and (masked["a"][1] == 0).all()
    assert (masked["b"][0] == 0).all() and torch.isinf(masked["b"][1]).all()
    assert torch.isnan(inputs["a"]).all(), "inputs must not be modified in place"


def test_apply_mask_rejects_a_mask_that_does_not_fit() -> None:
    inputs = {"a": torch.zeros(2, 5, 3)}
    with pytest.raises(ValueError, match="mask"):
        apply_mask(inputs, torch.ones(2, 2, dtype=torch.bool), ["a"])
    with pytest.raises(ValueError, match="bool"):
        apply_mask(inputs, torch.ones(2, 1), ["a"])


def test_modality_dropout_via_apply_mask_really_removes_features() -> None:
    params = tiny_params()
    inputs = make_inputs(params, batch=256)
    mask = random_modality_mask(256, 4, 0.5, torch.Generator().manual_seed(0))
    dropped = apply_mask(inputs, mask, MODALITIES)
    for index, modality in enumerate(MODALITIES):
        absent = ~mask[:, index]
        assert absent.any()
        assert (dropped[modality][absent] == 0).all()
        assert torch.equal(dropped[modality][~absent], inputs[modality][~absent])


def test_random_modality_mask_keeps_one_and_drops_at_rate_p() -> None:
    generator = torch.Generator().manual_seed(0)
    batch, modalities, p = 20_000, 4, 0.3
    mask = random_modality_mask(batch, modalities, p, generator)
    assert mask.dtype == torch.bool and mask.shape == (batch, modalities)
    assert mask.any(dim=1).all()
    expected_drop = p - p**modalities / modalities  # rows that lost everything keep one
    assert abs((~mask).float().mean().item() - expected_drop) < 0.01
    assert mask.all(dim=1).float().mean().item() == pytest.approx((1 - p) ** modalities, abs=0.01)


def test_random_modality_mask_edge_rates_and_seeding() -> None:
    assert random_modality_mask(50, 3, 0.0).all()
    assert (random_modality_mask(50, 3, 1.0).sum(dim=1) == 1).all()
    first = random_modality_mask(64, 4, 0.5, torch.Generator().manual_seed(7))
    second = random_modality_mask(64, 4, 0.5, torch.Generator().manual_seed(7))
    assert torch.equal(first, second)
    with pytest.raises(ValueError, match="probability"):
        random_modality_mask(4, 4, 1.5)


def test_subset_mask() -> None:
    mask = subset_mask(3, MODALITIES, ("imu_chest", "heart_rate"))
    assert mask.tolist() == [[False, True, False, True]] * 3
    with pytest.raises(ValueError, match="imu_wrist"):
        subset_mask(3, MODALITIES, ("imu_wrist",))


def test_nonempty_subsets_of_four_modalities() -> None:
    subsets = nonempty_subsets(MODALITIES)
    assert len(subsets) == 15 == len({frozenset(s) for s in subsets})
    assert all(s and set(s) <= set(MODALITIES) and len(set(s)) == len(s) for s in subsets)
    assert subsets[0] == ("imu_hand",) and subsets[-1] == tuple(MODALITIES)
    assert subsets == nonempty_subsets(list(MODALITIES)), "order must be stable"


# --- encoders ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ENCODERS)
@pytest.mark.parametrize("signal", ["motion", "waveform", "slow"])
@pytest.mark.parametrize("steps", [64, 100, 256])
def test_encoder_output_shape(kind: str, signal: str, steps: int) -> None:
    model = ModelParams.model_validate({**TINY_MODEL, "encoder": kind})
    channels = 1 if signal == "slow" else 9
    encoder = build_encoder(signal, channels, model)
    assert encoder(torch.randn(3, steps, channels)).shape == (3, model.embed_dim)
    with pytest.raises(ValueError, match="expected input"):
        encoder(torch.randn(3, steps, channels + 1))


def test_group_norm_encoder_is_independent_of_the_batch() -> None:
    model = ModelParams(**TINY_MODEL, norm="group")
    encoder = build_encoder("motion", 9, model).train()
    x = torch.randn(4, STEPS, 9)
    assert torch.allclose(encoder(x)[:1], encoder(x[:1]), atol=1e-5)


def test_encoder_heads_must_divide_embedding() -> None:
    with pytest.raises(ValueError, match="encoder_heads"):
        ModelParams(embed_dim=10)


# --- fusion models -------------------------------------------------------------------------


@pytest.mark.parametrize("fusion", FUSIONS)
@pytest.mark.parametrize("subset", nonempty_subsets(MODALITIES), ids="+".join)
def test_output_shapes_for_every_modality_subset(fusion: str, subset: tuple[str, ...]) -> None:
    model, params = tiny_model(fusion, modalities=list(subset))
    batch, count = 3, len(subset)
    out = model(make_inputs(params, batch), random_modality_mask(batch, count, 0.5))
    assert out.logits.shape == (batch, CLASSES)
    assert torch.isfinite(out.logits).all()
    if fusion == "hybrid":
        assert out.attention is not None and out.attention.shape == (batch, count, count)
    else:
        assert out.attention is None
    if fusion == "early":
        assert out.modality_weights is None
    else:
        assert out.modality_weights is not None and out.modality_weights.shape == (batch, count)


@pytest.mark.parametrize("kind", ENCODERS)
@pytest.mark.parametrize("fusion", FUSIONS)
def test_gradients_reach_every_parameter(fusion: str, kind: str) -> None:
    model, params = tiny_model(fusion, model={"encoder": kind})
    inputs = make_inputs(params)
    out = model(inputs, all_present(4, params))
    nn.functional.cross_entropy(out.logits, torch.arange(4) % CLASSES).backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None, name
        assert torch.isfinite(parameter.grad).all(), name
        assert parameter.grad.abs().sum() > 0, name


@pytest.mark.parametrize("fusion", FUSIONS)
def test_masked_modality_input_cannot_change_the_output(fusion: str) -> None:
    model, params = tiny_model(fusion)
    model.eval()
    inputs = make_inputs(params)
    mask = torch.tensor([[True, False, True, False]] * 2 + [[False, True, True, True]] * 2)
    reference = model(inputs, mask)
    garbage = dict(inputs)
    garbage["imu_chest"] = inputs["imu_chest"].clone()
    garbage["imu_chest"][:2] = float("nan")
    garbage["heart_rate"] = inputs["heart_rate"].clone()
    garbage["heart_rate"][:2] = float("inf")
    garbage["imu_hand"] = inputs["imu_hand"].clone()
    garbage["imu_hand"][2:] = 1e6 * torch.randn_like(inputs["imu_hand"][2:])
    changed = model(garbage, mask)
    assert torch.equal(reference.logits, changed.logits)
    if reference.modality_weights is not None:
        assert torch.equal(reference.modality_weights, changed.modality_weights)


@pytest.mark.parametrize("fusion", ["late", "hybrid"])
def test_late_and_hybrid_ignore_an_absent_modalitys_encoder(fusion: str) -> None:
    """Stronger than zeroed inputs: what the absent modality's encoder outputs does not matter."""
    model, params = tiny_model(fusion)
    assert isinstance(model, LateFusion | HybridFusion)
    model.eval()
    inputs = make_inputs(params)
    mask = subset_mask(4, MODALITIES, ("imu_hand", "imu_ankle"))
    reference = model(inputs, mask).logits
    with torch.no_grad():
        for parameter in model.encoders["imu_chest"].parameters():
            parameter.add_(torch.randn_like(parameter))
    assert torch.allclose(model(inputs, mask).logits, reference, atol=1e-6)


def test_early_fusion_encoder_receives_zeros_and_the_mask() -> None:
    model, params = tiny_model("early")
    assert isinstance(model, EarlyFusion)
    seen: list[Tensor] = []
    model.encoder.register_forward_hook(lambda _module, args, _output: seen.append(args[0]))
    inputs = make_inputs(params)
    mask = torch.tensor([[True, False, True, True], [False, True, False, True]] * 2)
    model(inputs, mask)
    (stacked,) = seen
    widths = list(pamap2_inputs(params).channels.values())
    assert stacked.shape == (4, STEPS, sum(widths) + 4)
    blocks = stacked.split([*widths, 4], dim=-1)
    for index, modality in enumerate(MODALITIES):
        present = mask[:, index]
        assert (blocks[index][~present] == 0).all()
        assert torch.equal(blocks[index][present], inputs[modality][present])
    assert torch.equal(blocks[-1], mask.float().unsqueeze(1).expand(4, STEPS, 4))


@pytest.mark.parametrize("fusion", FUSIONS)
@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
def test_no_nan_with_one_or_no_modality_present(fusion: str, train: bool) -> None:
    model, params = tiny_model(fusion)
    model.train(train)
    inputs = make_inputs(params)
    mask = torch.tensor(
        [[True, False, False, False], [False, False, False, True]] + [[False] * 4] * 2
    )
    out = model(inputs, mask)
    for tensor in (out.logits, out.attention, out.modality_weights):
        assert tensor is None or torch.isfinite(tensor).all()
    out.logits.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    if fusion == "late":
        uniform = torch.full((2, CLASSES), -math.log(CLASSES))
        assert torch.allclose(out.logits[2:], uniform)


def test_late_fusion_logits_are_the_log_mean_of_present_probabilities() -> None:
    model, params = tiny_model("late")
    assert isinstance(model, LateFusion)
    model.eval()
    inputs = make_inputs(params)
    mask = torch.tensor([[True, True, False, True], [False, False, True, False]] * 2)
    logits = model(inputs, mask).logits
    per_modality = torch.stack(
        [model.classifiers[m](model.encoders[m](inputs[m])).softmax(-1) for m in MODALITIES],
        dim=1,
    )
    weights = mask.float() / mask.sum(1, keepdim=True)
    expected = (weights.unsqueeze(-1) * per_modality).sum(1)
    assert torch.allclose(logits.exp(), expected, atol=1e-6)


def test_hybrid_attention_and_weights_cover_present_modalities_only() -> None:
    model, params = tiny_model("hybrid")
    model.eval()
    mask = torch.tensor(
        [[True, False, True, False], [False, False, False, True], [True] * 4, [False] * 4]
    )
    out = model(make_inputs(params), mask)
    assert out.attention is not None and out.modality_weights is not None
    assert torch.allclose(out.attention.sum(-1), torch.ones(4, 4))
    assert torch.allclose(out.modality_weights.sum(-1), torch.ones(4))
    partial = mask[:3]
    assert (out.attention[:3].transpose(1, 2)[~partial] == 0).all(), "absent keys get 0"
    assert (out.modality_weights[:3][~partial] == 0).all()


@pytest.mark.parametrize("heads", [1, 4, 8])
def test_hybrid_builds_with_any_dividing_head_count(heads: int) -> None:
    model, params = tiny_model("hybrid", heads=heads)
    assert isinstance(model, HybridFusion)
    assert model.attention.num_heads == heads
    out = model(make_inputs(params), all_present(4, params))
    assert out.logits.shape == (4, CLASSES)


@pytest.mark.parametrize("fusion", FUSIONS)
def test_model_overfits_a_tiny_batch(fusion: str) -> None:
    model, params = tiny_model(fusion)
    inputs = make_inputs(params, batch=16)
    labels = torch.arange(16) % CLASSES
    mask = all_present(16, params)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(100):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(inputs, mask).logits, labels).backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        accuracy = (model(inputs, mask).logits.argmax(-1) == labels).float().mean().item()
    assert accuracy == 1.0


def test_build_model_needs_every_modalitys_kind() -> None:
    params = tiny_params()
    shape = Shape({"imu_hand": 9, "heart_rate": 1}, {"imu_hand": "motion"}, CLASSES)
    with pytest.raises(ValueError, match="heart_rate"):
        build_model(params.fusion, shape, params.model, params.heads)


def test_each_kind_of_signal_gets_its_own_front_end() -> None:
    """Models receive sizes and kinds, never a dataset: heart rate's small front end is the
    `slow` kind's, whatever the modality is called."""
    model = ModelParams.model_validate(SMALL_MODEL)
    shape = Shape({"pulse": 1, "wrist": 6}, {"pulse": "slow", "wrist": "motion"}, CLASSES)
    built = build_model("late", shape, model, 1)
    assert isinstance(built, LateFusion)
    widths = {m: next(e.parameters()).shape[0] for m, e in built.encoders.items()}
    assert widths == {"pulse": 4, "wrist": 8}


def test_channels_follow_the_channel_groups() -> None:
    assert pamap2_inputs(Params()).channels == {
        "imu_hand": 9,
        "imu_chest": 9,
        "imu_ankle": 9,
        "heart_rate": 1,
    }
    params = Params.model_validate(
        {
            "modalities": ["imu_ankle", "heart_rate"],
            "dataset": {"channel_groups": {"motion": ["temperature", "orientation"]}},
        }
    )
    assert pamap2_inputs(params).channels == {"imu_ankle": 5, "heart_rate": 1}
