import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader

from harfusion.evaluation.evaluate import (
    HEADLINE,
    headline,
    mc_dropout_probs,
    missing_modality_metrics,
    missing_modality_summary,
    predict,
    uncertainty_metrics,
)
from harfusion.evaluation.metrics import classification_metrics
from harfusion.models.masking import nonempty_subsets
from harfusion.params import Params
from tests.helpers import MODALITIES, pamap2_inputs, pamap2_model


def _loader(params: Params, seed: int, n: int = 24, steps: int = 64) -> DataLoader:
    generator = torch.Generator().manual_seed(seed)
    channels = pamap2_inputs(params).channels
    labels = torch.arange(n) % 3
    rhythm = torch.linspace(0, 2 * torch.pi, steps)
    samples = []
    for i in range(n):
        inputs = {m: torch.randn(steps, c, generator=generator) for m, c in channels.items()}
        # only the ankle carries the class: a rhythm whose frequency is the label
        inputs["imu_ankle"] += 3.0 * torch.sin(rhythm * (1 + 2 * labels[i]))[:, None]
        samples.append(
            {
                "inputs": inputs,
                "mask": torch.ones(len(MODALITIES), dtype=torch.bool),
                "label": int(labels[i]),
            }
        )
    return DataLoader(samples, batch_size=8)  # ty: ignore[invalid-argument-type]


def _trained(fusion: str) -> tuple:
    params = Params.model_validate(
        {"fusion": fusion, "chunk_size": 64, "model": {"dropout": 0.5, "encoder": "cnn"}}
    )
    torch.manual_seed(0)
    model = pamap2_model(params, 3)
    loader = _loader(params, seed=0)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(25):
        for batch in loader:
            loss = torch.nn.functional.cross_entropy(
                model(batch["inputs"], batch["mask"]).logits, batch["label"]
            )
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return model.eval(), _loader(params, seed=1)  # fresh noise: only the ankle signal carries over


def test_mc_dropout_varies_and_plain_predict_does_not() -> None:
    model, loader = _trained("hybrid")
    samples = mc_dropout_probs(model, loader, samples=4, seed=0)
    assert samples.shape[0] == 4
    assert (samples[0] - samples[1]).abs().max() > 1e-4
    assert not model.training and not any(m.training for m in model.modules())
    first, second = predict(model, loader).logits, predict(model, loader).logits
    assert torch.equal(first, second)


def test_missing_modality_covers_15_subsets_and_really_removes_data() -> None:
    model, loader = _trained("late")
    results = missing_modality_metrics(
        model, loader, {"temperature": 1.0}, ["a", "b", "c"], bins=15
    )
    assert len(results) == 15
    assert {tuple(r["modalities"]) for r in results.values()} == set(nonempty_subsets(MODALITIES))
    assert results["imu_ankle"]["accuracy"] >= 0.9  # the ankle carries the class
    assert results["imu_hand+imu_chest+heart_rate"]["accuracy"] <= 0.6  # chance is 1/3


@pytest.mark.slow
def test_evaluate_stage_starts_without_lightning() -> None:
    """Lightning's imports take seconds; evaluation never trains, so it must not pay them."""
    probe = "import runpy, sys; runpy.run_path('stages/evaluate.py'); print(sorted(sys.modules))"
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=root,
        env=os.environ | {"PYTHONPATH": "src"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    modules = set(ast.literal_eval(out.strip().splitlines()[-1]))
    assert "harfusion.evaluation.evaluate" in modules and "torch" in modules
    assert not {m for m in modules if m.split(".")[0] in ("lightning", "pytorch_lightning")}


def test_classification_and_uncertainty_metrics_agree_with_sklearn() -> None:
    from sklearn.metrics import f1_score, roc_auc_score

    generator = torch.Generator().manual_seed(3)
    names = [f"activity {i}" for i in range(6)]
    labels = torch.randint(0, 5, (300,), generator=generator)  # activity 5 never occurs...
    logits = torch.randn(300, 6, generator=generator)
    logits[:40, 5] += 5  # ...but is predicted, and activity 4 is never predicted:
    logits[:, 4] -= 10
    got = classification_metrics(logits, labels, names)
    truth, predicted = labels.numpy(), logits.argmax(dim=1).numpy()
    present = list(range(5))
    for average, key in (("macro", "f1_macro"), ("weighted", "f1_weighted")):
        expected = f1_score(truth, predicted, labels=present, average=average, zero_division=0)
        assert got[key] == pytest.approx(expected, abs=1e-12)
    per_class = f1_score(truth, predicted, labels=present, average=None, zero_division=0)
    assert got["per_class_f1"] == pytest.approx(dict(zip(names[:5], per_class, strict=True)))
    assert got["per_class_f1"]["activity 4"] == 0.0 and "activity 5" not in got["per_class_f1"]
    assert got["accuracy"] == pytest.approx((truth == predicted).mean(), abs=1e-12)

    mc_probs = torch.randn(4, 300, 6, generator=generator).mul(2).softmax(dim=-1)
    mean = mc_probs.mean(dim=0)
    wrong = (mean.argmax(dim=1) != labels).numpy()
    entropy = -(mean * mean.log()).sum(dim=-1).numpy()
    uncertainty = uncertainty_metrics(mc_probs, labels, bins=10)
    expected = roc_auc_score(wrong, entropy)
    assert uncertainty["error_auroc_entropy"] == pytest.approx(expected, abs=1e-6)


def test_the_headline_is_a_few_numbers_and_drops_what_cannot_be_had() -> None:
    scores = {key: 0.5 for key in HEADLINE} | {"per_class_f1": {"a": 0.5}, "temperature": 1.2}
    metrics = headline(scores, {"error_auroc_entropy": 0.7}, 0.4)
    assert metrics == {key: 0.5 for key in HEADLINE} | {
        "error_auroc": 0.7,
        "missing_modality_f1": 0.4,
    }
    assert len(metrics) <= 10 and "per_class_f1" not in metrics and "temperature" not in metrics
    # no error AUROC (every test window right or wrong), no drop-one subset (one modality)
    assert set(headline(scores, {"error_auroc_entropy": None}, None)) == set(HEADLINE)


def test_missing_modality_summary_is_the_mean_with_one_modality_dropped() -> None:
    model, loader = _trained("late")
    results = missing_modality_metrics(
        model, loader, {"temperature": 1.0}, ["a", "b", "c"], bins=15
    )
    drop_one = [r["f1_macro"] for r in results.values() if len(r["modalities"]) == 3]
    assert len(drop_one) == 4
    assert missing_modality_summary(results, model.modalities) == pytest.approx(sum(drop_one) / 4)
    alone = {"heart_rate": {"modalities": ["heart_rate"], "f1_macro": 0.3}}
    assert missing_modality_summary(alone, ("heart_rate",)) is None
