import math

import pytest
import torch

from harfusion.evaluation.calibration import (
    brier_score,
    expected_calibration_error,
    maximum_calibration_error,
    reliability_bins,
)
from harfusion.models.calibrator import calibration_entry, fit_temperature, trained_class_windows
from harfusion.models.ensemble import mean_probability


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


def _underconfident_with_an_unseen_class(generator: torch.Generator) -> tuple:
    """Classes 0-2 trained, class 3 not: the trained classes' windows are right with logits
    twice too soft (their best temperature is 0.5); class 3's windows get a confident
    class-0 prediction, as a model does for an activity no training subject did."""
    known = torch.randint(0, 3, (600,), generator=generator)
    sharp = 6.0 * torch.nn.functional.one_hot(known, 4).float()
    sharp += torch.randn(600, 4, generator=generator)
    logits = torch.cat([sharp / 2, torch.tensor([[4.0, 0.0, 0.0, -2.0]]).repeat(100, 1)])
    labels = torch.cat([known, torch.full((100,), 3)])
    return logits, labels, torch.tensor([50, 40, 30, 0]), known


def test_the_trained_class_temperature_ignores_windows_of_untrained_classes() -> None:
    logits, labels, counts, known_labels = _underconfident_with_an_unseen_class(
        torch.Generator().manual_seed(0)
    )
    mask = trained_class_windows(labels, counts)
    assert mask.sum() == 600 and not mask[600:].any()
    known = calibration_entry(logits, labels, counts, "trained_classes")
    assert known["temperature"] == pytest.approx(fit_temperature(logits[:600], known_labels))
    assert known["temperature"] < 0.7  # sharpens the trained classes' soft logits
    assert known["windows"] == 600 and known["classes"] == 3 and "note" not in known
    every = calibration_entry(logits, labels, counts, "all_windows")
    assert every["temperature"] == fit_temperature(logits, labels)
    assert every["temperature"] > 1.0  # the unseen class's windows soften everything
    assert every["windows"] == 700 and every["classes"] == 4
    assert every["val_nll_before"] == known["val_nll_before"]  # over every validation window
    assert every["val_nll_after"] < every["val_nll_before"]
    none = calibration_entry(logits, labels, counts, "none")
    assert none["temperature"] == 1.0 and none["val_nll_after"] == none["val_nll_before"]


def test_no_temperature_is_fitted_on_fewer_than_two_trained_classes() -> None:
    """One trained class (a validation subject who did one activity) sharpens the temperature
    without bound: it is not fitted, and the entry says why."""
    generator = torch.Generator().manual_seed(1)
    logits = torch.randn(40, 3, generator=generator)
    labels = torch.tensor([2] * 30 + [1] * 10)
    entry = calibration_entry(logits, labels, torch.tensor([10, 0, 5]), "trained_classes")
    assert entry["temperature"] == 1.0 and entry["windows"] == 30 and entry["classes"] == 1
    assert entry["note"].startswith("not fitted: the validation split holds 1 class(es)")
    nothing = calibration_entry(logits, labels, torch.tensor([10, 0, 0]), "trained_classes")
    assert nothing["temperature"] == 1.0 and nothing["windows"] == 0
    # all windows: two classes, fitted as before
    assert calibration_entry(logits, labels, torch.tensor([10, 0, 5]), "all_windows")[
        "temperature"
    ] == fit_temperature(logits, labels)


def test_mean_probability_is_the_log_of_the_members_mean_probability() -> None:
    generator = torch.Generator().manual_seed(2)
    members = [torch.randn(7, 4, generator=generator) * 3 for _ in range(3)]
    averaged = mean_probability(members)
    expected = torch.stack([m.softmax(dim=1) for m in members]).mean(dim=0)
    assert torch.allclose(averaged.softmax(dim=1), expected, atol=1e-6)
    assert torch.allclose(averaged.exp().sum(dim=1), torch.ones(7), atol=1e-5)
    one = mean_probability(members[:1])
    assert torch.allclose(one, members[0].log_softmax(dim=1), atol=1e-6)
    with pytest.raises(ValueError, match="at least one member"):
        mean_probability([])
