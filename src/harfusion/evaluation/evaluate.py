"""Test-set evaluation: accuracy and F1, calibration before/after the model file's temperature,
MC-dropout uncertainty, every missing-modality subset, and inference latency.

`metrics.json` holds the headline only (what `dvc exp show` and `dvc metrics diff` list);
every other number goes to `scores.json`, `uncertainty.json` and `missing_modality.json`, and
every test and validation window's logits to `predictions.csv`."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader
from torchmetrics.functional.classification import binary_auroc

from harfusion import layout
from harfusion.atomic import atomic_path
from harfusion.data.loaders import SplitLoaders
from harfusion.evaluation.calibration import (
    calibration_summary,
    expected_calibration_error,
    reliability_bins,
)
from harfusion.evaluation.metrics import classification_metrics, macro_f1
from harfusion.evaluation.plots import attention_figure, reliability_diagram
from harfusion.models.calibrator import calibrated
from harfusion.models.fusion import FusionModel
from harfusion.models.masking import nonempty_subsets, subset_mask
from harfusion.models.model_card import check_fits
from harfusion.models.model_file import load_model, modality_labels, trained_inputs
from harfusion.params import Params
from harfusion.threads import configure_threads

# The scores of `scores.json` that `metrics.json` repeats as the headline.
HEADLINE = (
    "accuracy",
    "f1_macro",
    "f1_macro_learnable",
    "nll_before",
    "nll_after",
    "ece_before",
    "ece_after",
    "brier_after",
)


@dataclass
class Predictions:
    logits: Tensor  # [N, K]
    labels: Tensor  # [N]
    attention: Tensor | None  # [N, M, M]
    modality_weights: Tensor | None  # [N, M]


@torch.no_grad()
def predict(
    model: FusionModel, loader: DataLoader, present: tuple[str, ...] | None = None
) -> Predictions:
    """Run the model over a loader; `present` keeps only those modalities (the rest masked)."""
    logits, labels, attention, weights = [], [], [], []
    for batch in loader:
        mask = batch["mask"]
        if present is not None:
            mask = mask & subset_mask(len(mask), model.modalities, present)
        output = model(batch["inputs"], mask)
        logits.append(output.logits.float())
        labels.append(batch["label"])
        if output.attention is not None:
            attention.append(output.attention.float())
        if output.modality_weights is not None:
            weights.append(output.modality_weights.float())
    return Predictions(
        torch.cat(logits),
        torch.cat(labels),
        torch.cat(attention) if attention else None,
        torch.cat(weights) if weights else None,
    )


def _enable_dropout_only(model: nn.Module) -> None:
    model.eval()
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.train()


def mc_dropout_probs(model: FusionModel, loader: DataLoader, samples: int, seed: int) -> Tensor:
    """[samples, N, K] class probabilities with dropout active and everything else in eval mode."""
    torch.manual_seed(seed)
    _enable_dropout_only(model)
    try:
        return torch.stack([predict(model, loader).logits.softmax(dim=1) for _ in range(samples)])
    finally:
        model.eval()


def _entropy(probs: Tensor) -> Tensor:
    return -(probs * probs.clamp_min(1e-12).log()).sum(dim=-1)


def _auroc(scores: Tensor, positive: Tensor) -> float:
    """How well `scores` rank the positives first (0.5: no better than chance)."""
    return float(binary_auroc(scores.double(), positive.int()))


def uncertainty_metrics(mc_probs: Tensor, labels: Tensor, bins: int) -> dict:
    """Predictive entropy, mutual information (epistemic part) and how well they rank errors."""
    mean = mc_probs.mean(dim=0)
    entropy = _entropy(mean)
    mutual_information = entropy - _entropy(mc_probs).mean(dim=0)
    wrong = mean.argmax(dim=1) != labels

    def split(values: Tensor) -> dict:
        return {
            "mean": float(values.mean()),
            "correct": float(values[~wrong].mean()) if (~wrong).any() else None,
            "wrong": float(values[wrong].mean()) if wrong.any() else None,
        }

    both_kinds = 0 < int(wrong.sum()) < len(wrong)
    return {
        "mc_samples": int(mc_probs.shape[0]),
        "accuracy": float((~wrong).float().mean()),
        "predictive_entropy": split(entropy),
        "mutual_information": split(mutual_information),
        "ece": expected_calibration_error(mean, labels, bins),
        "error_auroc_entropy": _auroc(entropy, wrong) if both_kinds else None,
        "error_auroc_mutual_information": _auroc(mutual_information, wrong) if both_kinds else None,
    }


def missing_modality_metrics(
    model: FusionModel, loader: DataLoader, calibration: dict, class_names: list[str], bins: int
) -> dict:
    """Accuracy, macro F1 and ECE for every non-empty subset of the trained modalities."""
    results = {}
    for present in nonempty_subsets(model.modalities):
        run = predict(model, loader, present)
        metrics = classification_metrics(run.logits, run.labels, class_names)
        probs = calibrated(run.logits, calibration).softmax(dim=1)
        results["+".join(present)] = {
            "modalities": list(present),
            "accuracy": metrics["accuracy"],
            "f1_macro": metrics["f1_macro"],
            "ece": expected_calibration_error(probs, run.labels, bins),
        }
    return results


def missing_modality_summary(missing: dict, modalities: tuple[str, ...]) -> float | None:
    """Mean macro F1 over the subsets that lack exactly one trained modality: how much a model
    leans on any single sensor. None for a single-modality model (there is no such subset)."""
    drop_one = len(modalities) - 1
    scores = [r["f1_macro"] for r in missing.values() if len(r["modalities"]) == drop_one]
    return float(np.mean(scores)) if scores else None


def headline(scores: dict, uncertainty: dict, missing_f1: float | None) -> dict:
    """The numbers `metrics.json` declares to DVC; one that cannot be had is left out."""
    metrics = {key: scores[key] for key in HEADLINE} | {
        "error_auroc": uncertainty["error_auroc_entropy"],
        "missing_modality_f1": missing_f1,
    }
    return {key: value for key, value in metrics.items() if value is not None}


def single_modality_confidence(model: FusionModel, loader: DataLoader, classes: int) -> np.ndarray:
    """[classes, M]: mean probability of the true class when only one modality is present."""
    table = np.zeros((classes, len(model.modalities)))
    for column, modality in enumerate(model.modalities):
        run = predict(model, loader, (modality,))
        true_prob = run.logits.softmax(dim=1).gather(1, run.labels[:, None]).squeeze(1)
        for label in range(classes):
            chosen = run.labels == label
            table[label, column] = float(true_prob[chosen].mean()) if chosen.any() else np.nan
    return table


@torch.no_grad()
def latency_ms(model: FusionModel, dataset, windows: int, warmup: int) -> dict:
    """Milliseconds per window at batch size 1, after `warmup` untimed calls; the windows are
    taken in turn, again from the first when the split has fewer than the calls."""
    model.eval()
    times = []
    for index in range(warmup + windows):
        sample = dataset[index % len(dataset)]
        inputs = {m: x.unsqueeze(0) for m, x in sample["inputs"].items()}
        mask = sample["mask"].unsqueeze(0)
        started = time.perf_counter()
        model(inputs, mask)
        if index >= warmup:
            times.append((time.perf_counter() - started) * 1e3)
    return {
        "latency_ms_mean": float(np.mean(times)),
        "latency_ms_std": float(np.std(times)),
        "latency_windows": len(times),
    }


def calibrated_metrics(
    test: Predictions, val: Predictions, class_names: list[str], bins: int, calibration: dict
) -> tuple[dict, dict]:
    """Metrics before and after the model file's calibration (fitted on the validation split
    by training; evaluate applies it as predict does, and never fits one of its own)."""
    after_logits = calibrated(test.logits, calibration)
    before = calibration_summary(test.logits, test.labels, bins)
    after = calibration_summary(after_logits, test.labels, bins)
    metrics = classification_metrics(test.logits, test.labels, class_names)
    metrics |= {f"{key}_before": value for key, value in before.items()}
    metrics |= {f"{key}_after": value for key, value in after.items()}
    metrics["temperature"] = calibration["temperature"]
    metrics["calibration"] = calibration
    metrics["val_nll_before"] = calibration_summary(val.logits, val.labels, bins)["nll"]
    metrics["val_nll_after"] = calibration_summary(
        calibrated(val.logits, calibration), val.labels, bins
    )["nll"]
    reliability = {
        "before": reliability_bins(test.logits.softmax(dim=1), test.labels, bins),
        "after": reliability_bins(after_logits.softmax(dim=1), test.labels, bins),
    }
    return metrics, reliability


def _attention_tables(
    model: FusionModel, test: Predictions, loader: DataLoader, classes: int
) -> tuple[np.ndarray | None, np.ndarray]:
    if test.attention is None or test.modality_weights is None:
        return None, single_modality_confidence(model, loader, classes)
    weights = test.modality_weights.numpy()
    labels = test.labels.numpy()
    per_class = np.array(
        [
            weights[labels == c].mean(axis=0)
            if (labels == c).any()
            else np.full(weights.shape[1], np.nan)
            for c in range(classes)
        ]
    )
    return test.attention.mean(dim=0).numpy(), per_class


def evaluate(params: Params, tensor_dir: Path, models_dir: Path, out_dir: Path) -> dict:
    """Write every `reports/eval/` file at once (atomically); return every score.

    The network, its modalities and channels come from the model file alone; `params.yaml`
    gives only how to evaluate (and load) it. Where the two must agree, on the windows (their
    length, channels and classes), `check_fits` refuses a model that does not fit them."""
    configure_threads(params)
    path = models_dir / layout.MODEL_FILE
    predictor, saved = load_model(path)
    model = predictor.ensemble
    class_names: list[str] = saved["class_names"]
    data = SplitLoaders(tensor_dir, params, inputs=trained_inputs(saved))
    test_loader, val_loader = data.loader("test"), data.loader("val")
    for split in ("val", "test"):
        check_fits(saved, path, data.splits[split].spec)
    bins = params.evaluate.ece_bins
    test, val = predict(model, test_loader), predict(model, val_loader)
    scores, reliability = calibrated_metrics(test, val, class_names, bins, saved["calibration"])
    # Timings live apart from the metrics so metrics.json is byte-identical across runs.
    latency = latency_ms(
        model, data.splits["test"], params.evaluate.latency_batches, params.evaluate.latency_warmup
    )
    trained = data.class_counts("train").tolist()
    untrained = [name for name, count in zip(class_names, trained, strict=True) if count == 0]
    learnable = [name for name in class_names if name not in untrained]
    scores["f1_macro_learnable"] = macro_f1(scores["per_class_f1"], learnable)
    scores["class_names"] = class_names
    scores["classes_without_training_windows"] = untrained
    scores["parameters"] = sum(p.numel() for p in model.parameters())
    scores["test_windows"] = len(test.labels)
    temperature = scores["temperature"]
    uncertainty = uncertainty_metrics(
        mc_dropout_probs(model, test_loader, params.evaluate.mc_samples, saved["params"]["seed"]),
        test.labels,
        bins,
    )
    missing = missing_modality_metrics(model, test_loader, saved["calibration"], class_names, bins)
    metrics = headline(scores, uncertainty, missing_modality_summary(missing, model.modalities))
    attention, per_class = _attention_tables(model, test, test_loader, len(class_names))
    predicted = test.logits.argmax(dim=1).tolist()
    confusion = "actual,predicted\n" + "".join(
        f"{class_names[a]},{class_names[p]}\n"
        for a, p in zip(test.labels.tolist(), predicted, strict=True)
    )
    predictions = predictions_csv({"test": test, "val": val}, class_names)
    with atomic_path(out_dir) as tmp:
        tmp.mkdir()
        _write_json(tmp / layout.METRICS, metrics)
        _write_json(tmp / layout.SCORES, scores)
        _write_json(tmp / layout.LATENCY, {"latency_ms": latency["latency_ms_mean"]})
        _write_json(tmp / layout.UNCERTAINTY, uncertainty)
        _write_json(tmp / layout.MISSING_MODALITY, missing)
        _write_json(tmp / layout.RELIABILITY, reliability | {"temperature": temperature})
        (tmp / layout.CONFUSION).write_text(confusion)
        (tmp / layout.PREDICTIONS).write_text(predictions)
        reliability_diagram(reliability, temperature, tmp / layout.CALIBRATION_PLOT)
        attention_figure(
            list(model.modalities),
            modality_labels(saved),
            class_names,
            attention,
            per_class,
            params.fusion,
            tmp / layout.ATTENTION_PLOT,
        )
    return scores


def predictions_csv(splits: dict[str, Predictions], class_names: list[str]) -> str:
    """One row per window of each split: the split, its true and predicted class, and the
    logits before calibration (an ensemble's: the log of its mean probability), to 9
    significant digits (a float32 read back is the same number). With the model file's
    calibration (`scores.json`), LOSO pools them across folds and calibrators can be compared
    without retraining."""
    columns = [
        "split",
        "actual",
        "predicted",
        *(f"logit_{n.replace(' ', '_')}" for n in class_names),
    ]
    lines = [",".join(columns)]
    for split, run in splits.items():
        rows = zip(
            run.logits.tolist(), run.labels.tolist(), run.logits.argmax(dim=1).tolist(), strict=True
        )
        for logits, label, best in rows:
            values = ",".join(f"{value:.9g}" for value in logits)
            lines.append(f"{split},{class_names[label]},{class_names[best]},{values}")
    return "\n".join(lines) + "\n"


def _write_json(path: Path, payload: dict) -> None:
    path.write_text(json.dumps(payload, indent=2) + "\n")
