"""One macro F1 (`harfusion.evaluation.metrics`): scikit-learn's numbers, the same as the three
it replaced (evaluate's by hand, LOSO's through scikit-learn, and for the learnable classes a
plain mean), and training's validation metric is that definition, not torchmetrics' own."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
import torch
from sklearn.metrics import f1_score
from torchmetrics.classification import MulticlassF1Score

from harfusion.evaluation.metrics import classification_metrics, f1_per_class, macro_f1
from harfusion.training.classifier import MacroF1


def _evaluate_before(logits: np.ndarray, labels: np.ndarray, class_names: list[str]) -> dict:
    """evaluation/metrics.py's `classification_metrics` before, verbatim: one confusion matrix."""
    predicted = np.asarray(logits).argmax(axis=1)
    labels = np.asarray(labels).astype(np.int64)
    classes = len(class_names)
    confusion = np.bincount(labels * classes + predicted, minlength=classes**2)
    confusion = confusion.reshape(classes, classes).astype(np.float64)
    tp = confusion.diagonal()
    fp, fn, support = confusion.sum(axis=0) - tp, confusion.sum(axis=1) - tp, confusion.sum(axis=1)
    present = support > 0
    f1 = (2 * tp / np.maximum(2 * tp + fp + fn, 1))[present]
    weights = support[present]
    return {
        "accuracy": float((predicted == labels).mean()),
        "f1_macro": float(f1.mean()),
        "f1_weighted": float((f1 * weights).sum() / weights.sum()),
        "per_class_f1": {
            class_names[c]: float(f)
            for c, f in zip(np.flatnonzero(present).tolist(), f1.tolist(), strict=True)
        },
    }


def _loso_before(actual: list[str], predicted: list[str], learnable: list[str]) -> tuple:
    """LOSO's `macro_f1_scores` before, verbatim."""
    classes = sorted(set(actual) | set(predicted))
    scores = f1_score(actual, predicted, labels=classes, average=None, zero_division=0)
    f1 = {c: float(v) for c, v in zip(classes, scores, strict=True) if c in set(actual)}
    chosen = [f1[c] for c in learnable if c in f1]
    return float(np.mean(list(f1.values()))), float(np.mean(chosen)) if chosen else None, f1


def _learnable_before(per_class_f1: dict[str, float], classes: list[str]) -> float | None:
    """evaluate's and report.html's `macro_f1_over` before, verbatim."""
    scores = [per_class_f1[c] for c in classes if c in per_class_f1]
    return sum(scores) / len(scores) if scores else None


def _case(seed: int, classes: int, windows: int) -> tuple[np.ndarray, np.ndarray]:
    """Logits and labels where the last class never occurs but is predicted, and the one before
    it occurs but is never predicted (its F1 is 0/0 precision: zero division)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes - 1, windows)
    logits = rng.normal(size=(windows, classes))
    logits[np.arange(windows), labels] += rng.uniform(0, 3, windows)
    logits[: windows // 8, classes - 1] += 6  # predicted, never there
    logits[:, classes - 2] -= 20  # there, never predicted
    return logits, labels


CASES = [(seed, classes, 40 * classes) for seed in range(4) for classes in (3, 6, 12, 18)]
CASES += [(9, 3, 4)]  # four windows


@pytest.mark.parametrize(("seed", "classes", "windows"), CASES)
def test_the_same_numbers_as_the_three_before(seed: int, classes: int, windows: int) -> None:
    logits, labels = _case(seed, classes, windows)
    names = [f"activity {i}" for i in range(classes)]
    now = classification_metrics(logits, labels, names)
    assert now == _evaluate_before(logits, labels, names)  # bit for bit, keys in the same order
    assert list(now["per_class_f1"]) == list(
        _evaluate_before(logits, labels, names)["per_class_f1"]
    )
    assert names[-1] not in now["per_class_f1"] and now["per_class_f1"][names[-2]] == 0.0

    actual = [names[i] for i in labels]
    predicted = [names[i] for i in logits.argmax(axis=1)]
    learnable = names[1:]  # the first class had no training windows, say
    per_class = f1_per_class(actual, predicted)
    present = sorted(set(actual))
    sklearn = f1_score(actual, predicted, labels=present, average=None, zero_division=0)
    assert per_class == dict(zip(present, sklearn.tolist(), strict=True))
    every, chosen, f1 = _loso_before(actual, predicted, learnable)
    assert (macro_f1(per_class), macro_f1(per_class, learnable), per_class) == (every, chosen, f1)

    before = _learnable_before(now["per_class_f1"], learnable)
    assert before is not None
    after = macro_f1(now["per_class_f1"], learnable)
    if len(per_class) - 1 < 8:  # numpy's mean adds fewer than 8 numbers in order, as sum() does
        assert after == before
    else:  # in another order (pairwise): the last two bits may differ
        assert after == pytest.approx(before, abs=4 * math.ulp(before))


def test_a_class_absent_from_the_labels_has_no_f1_and_is_not_averaged() -> None:
    actual = ["sit", "sit", "walk", "walk"]
    predicted = ["sit", "run", "walk", "walk"]  # run: predicted, never there
    assert f1_per_class(actual, predicted) == {"sit": 2 / 3, "walk": 1.0}
    assert macro_f1(f1_per_class(actual, predicted)) == (2 / 3 + 1.0) / 2
    assert macro_f1(f1_per_class(actual, predicted), ["walk", "run"]) == 1.0
    assert macro_f1(f1_per_class(actual, predicted), ["run"]) is None
    assert macro_f1({}) is None and f1_per_class([], []) == {}
    expected = f1_score(actual, predicted, labels=["sit", "walk"], average="macro")
    assert macro_f1(f1_per_class(actual, predicted)) == expected  # scikit-learn's macro


def test_training_validates_with_the_same_definition() -> None:
    """Several batches, a class predicted that no label holds: the metric training logs is the
    single function's number exactly; torchmetrics' macro average would count that class."""
    logits, labels = _case(5, 6, 300)
    metric = MacroF1()
    for start in range(0, 300, 64):
        metric.update(
            torch.from_numpy(logits[start : start + 64]),
            torch.from_numpy(labels[start : start + 64]),
        )
    ours = metric.compute()
    expected = macro_f1(f1_per_class(labels, logits.argmax(axis=1)))
    assert expected is not None
    assert ours.dtype == torch.float64 and ours.item() == expected
    theirs = MulticlassF1Score(6, average="macro")(
        torch.from_numpy(logits), torch.from_numpy(labels)
    )
    assert theirs.item() == pytest.approx(expected * 5 / 6, rel=1e-6)  # class 5 averaged as 0
    metric.reset()
    metric.update(torch.from_numpy(logits[:10]), torch.from_numpy(labels[:10]))
    assert metric.compute().item() == macro_f1(f1_per_class(labels[:10], logits[:10].argmax(1)))


def test_scoring_imports_neither_scikit_learn_nor_torch() -> None:
    """`harfusion predict` on ONNX scores labelled recordings with it: 1.1-1.4 s of imports."""
    code = (
        "import sys; from harfusion.evaluation.metrics import classification_metrics as m; "
        "m([[0.1, 0.9], [0.8, 0.2]], [1, 1], ['a', 'b']); "
        "print(sorted({n.split('.')[0] for n in sys.modules} & {'sklearn', 'torch', 'scipy'}))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip() == "[]"
