import pytest
import torch

from harfusion.evaluation.calibration import fit_temperature
from harfusion.evaluation.calibrators import (
    average_probabilities,
    fit_known_class_temperature,
    trained_class_windows,
)


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


def test_known_class_temperature_ignores_windows_of_untrained_classes() -> None:
    logits, labels, counts, known_labels = _underconfident_with_an_unseen_class(
        torch.Generator().manual_seed(0)
    )
    mask = trained_class_windows(labels, counts)
    assert mask.sum() == 600 and not mask[600:].any()
    known = fit_known_class_temperature(logits, labels, counts)
    assert known == pytest.approx(fit_temperature(logits[:600], known_labels))
    assert known < 0.7  # sharpens the trained classes' soft logits
    assert fit_temperature(logits, labels) > 1.0  # the unseen class's windows soften everything


def test_known_class_temperature_is_one_without_trained_windows() -> None:
    logits = torch.randn(5, 3, generator=torch.Generator().manual_seed(1))
    labels = torch.tensor([2, 2, 2, 2, 2])
    assert fit_known_class_temperature(logits, labels, torch.tensor([10, 5, 0])) == 1.0


def test_average_probabilities_is_the_log_of_the_mean_probability() -> None:
    generator = torch.Generator().manual_seed(2)
    members = [torch.randn(7, 4, generator=generator) * 3 for _ in range(3)]
    averaged = average_probabilities(members)
    expected = torch.stack([m.softmax(dim=1) for m in members]).mean(dim=0)
    assert torch.allclose(averaged.softmax(dim=1), expected, atol=1e-6)
    assert torch.allclose(averaged.exp().sum(dim=1), torch.ones(7), atol=1e-5)
    one = average_probabilities(members[:1])
    assert torch.allclose(one, members[0].log_softmax(dim=1), atol=1e-6)
    with pytest.raises(ValueError, match="at least one member"):
        average_probabilities([])
