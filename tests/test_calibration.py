import math

import pytest
import torch

from harfusion.evaluation.calibration import (
    brier_score,
    expected_calibration_error,
    maximum_calibration_error,
    reliability_bins,
)
from harfusion.models.calibrator import fit_temperature


def test_ece_zero_when_confidence_equals_accuracy() -> None:
    # 10 windows at confidence 0.8 of which exactly 8 are right: perfectly calibrated.
    probs = torch.tensor([[0.8, 0.2]] * 10)
    labels = torch.tensor([0] * 8 + [1] * 2)
    assert expected_calibration_error(probs, labels, 15) == pytest.approx(0.0, abs=1e-6)


def test_ece_and_mce_of_an_overconfident_model() -> None:
    # Half the windows at confidence 0.9 with accuracy 0.5, half at 0.6 with accuracy 0.6 ... all
    # in their own bins: ECE = 0.5 * |0.9 - 0.5| + 0.5 * |0.6 - 0.6| = 0.2, MCE = 0.4.
    probs = torch.tensor([[0.9, 0.1]] * 10 + [[0.6, 0.4]] * 10)
    labels = torch.tensor([0] * 5 + [1] * 5 + [0] * 6 + [1] * 4)
    assert expected_calibration_error(probs, labels, 15) == pytest.approx(0.2, abs=1e-5)
    assert maximum_calibration_error(probs, labels, 15) == pytest.approx(0.4, abs=1e-5)
    bins = reliability_bins(probs, labels, 10)
    assert bins["count"][9] == 10 and bins["count"][6] == 10
    assert bins["accuracy"][9] == pytest.approx(0.5) and bins["confidence"][6] == pytest.approx(0.6)


def test_brier_score() -> None:
    probs = torch.tensor([[1.0, 0.0], [0.5, 0.5]])
    assert brier_score(probs, torch.tensor([0, 0])) == pytest.approx((0 + 0.5) / 2)


def test_temperature_keeps_argmax_and_lowers_nll_of_overconfident_logits() -> None:
    generator = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 5, (400,), generator=generator)
    clean = torch.randn(400, 5, generator=generator)
    clean[torch.arange(400), labels] += 1.5
    logits = clean * 4  # same ranking, far too confident
    temperature = fit_temperature(logits, labels)
    assert temperature > 1.5
    scaled = logits / temperature
    assert torch.equal(scaled.argmax(1), logits.argmax(1))
    nll = torch.nn.functional.cross_entropy
    assert nll(scaled, labels) < nll(logits, labels) - 0.1
    assert math.isfinite(temperature)
