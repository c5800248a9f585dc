"""The forest baseline: its features, and that it scores exactly the deep model's windows."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from harfusion.data.loaders import SplitLoaders
from harfusion.evaluation.baseline import (
    CHANNEL_STATISTICS,
    feature_names,
    run_baseline,
    split_features,
    window_features,
)
from harfusion.params import Params

KEYS = ("accuracy", "f1_macro", "f1_weighted", "per_class_f1", "nll", "brier", "ece")


def test_features_measure_what_they_say() -> None:
    steps, hz = 512, 100.0
    t = np.arange(steps) / hz
    x = 2.0 * np.sin(2 * np.pi * 6.25 * t)  # 6.25 Hz: 32 whole periods, amplitude 2
    columns = ["hand_acc16_x", "hand_acc16_y", "hand_acc16_z", "heart_rate_bpm"]
    window = np.stack([x, -x, x + 1.0, np.full(steps, 80.0)], axis=-1)[None]
    vectors = [columns[:3]]
    computed = window_features(window, columns, hz, vectors)[0]
    features = dict(zip(feature_names(columns, vectors), computed, strict=True))
    assert len(features) == 4 * len(CHANNEL_STATISTICS) + 3
    assert features["hand_acc16_x:dominant_hz"] == pytest.approx(6.25)
    assert features["hand_acc16_x:std"] == pytest.approx(np.sqrt(2.0), rel=1e-2)
    assert features["hand_acc16_z:mean"] == pytest.approx(1.0, abs=1e-2)
    assert features["hand_acc16_x:max"] == pytest.approx(2.0, abs=1e-2)
    assert features["hand_acc16_x:p90"] > features["hand_acc16_x:median"] > -0.1
    assert features["hand_acc16_x:mean_abs_diff"] > 0
    assert features["hand_acc16_x~hand_acc16_y:corr"] == pytest.approx(-1.0)
    assert features["hand_acc16_x~hand_acc16_z:corr"] == pytest.approx(1.0)
    assert features["heart_rate_bpm:std"] == 0.0
    assert features["heart_rate_bpm:dominant_power"] == pytest.approx(0.0, abs=1e-9)


def test_quantiles_are_numpys() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3, 4, 101))
    x[0, 0, :10] = 5.0  # ties
    features = window_features(x.transpose(0, 2, 1), [f"c{i}" for i in range(4)], 100.0)
    stats = features.reshape(3, 4, len(CHANNEL_STATISTICS))
    position = {name: i for i, name in enumerate(CHANNEL_STATISTICS)}
    for name, level in (("p10", 0.1), ("median", 0.5), ("p90", 0.9)):
        np.testing.assert_allclose(stats[..., position[name]], np.quantile(x, level, axis=-1))


def test_features_of_a_batch_are_those_of_each_window() -> None:
    rng = np.random.default_rng(0)
    columns = [f"chest_{g}_{a}" for g in ("acc16", "gyro") for a in "xyz"]
    windows = rng.normal(size=(5, 64, len(columns)))
    vectors = [columns[:3]]
    together = window_features(windows, columns, 100.0, vectors)
    alone = np.concatenate([window_features(w[None], columns, 100.0, vectors) for w in windows])
    np.testing.assert_allclose(together, alone, rtol=1e-12)


def test_baseline_scores_the_deep_models_windows(tensors: Path) -> None:
    params = Params(chunk_size=64)
    metrics = run_baseline(params, tensors / "tensors", tensors / "baseline")
    assert json.loads((tensors / "baseline" / "scores.json").read_text()) == metrics
    # the headline DVC shows, nested so that no key repeats the deep model's
    headline = json.loads((tensors / "baseline" / "metrics.json").read_text())
    assert headline == {
        "baseline": {"accuracy": metrics["accuracy"], "f1_macro": metrics["f1_macro"]}
    }
    assert all(key in metrics for key in KEYS)
    data = SplitLoaders(tensors / "tensors", params)
    data.setup()
    assert metrics["test_windows"] == len(data.splits["test"])
    assert metrics["train_windows"] == len(data.splits["train"])
    assert set(metrics["per_class_f1"]) <= set(data.class_names)
    # 3 IMUs × 9 channels + heart rate, then 3 axis correlations per IMU
    assert metrics["features"] == 28 * len(CHANNEL_STATISTICS) + 9
    counts = json.loads((tensors / "baseline" / "windows.json").read_text())
    assert sum(counts["val"].values()) == len(data.splits["val"])
    confusion = (tensors / "baseline" / "confusion.csv").read_text().splitlines()
    assert confusion[0] == "actual,predicted" and len(confusion) == metrics["test_windows"] + 1
    # seeded: a refit writes the same bytes
    run_baseline(params, tensors / "tensors", tensors / "again")
    for name in ("metrics.json", "scores.json", "confusion.csv", "windows.json"):
        assert (tensors / "again" / name).read_bytes() == (tensors / "baseline" / name).read_bytes()


def test_single_modality_baseline_reads_one_modality(tensors: Path) -> None:
    params = Params(chunk_size=64, modalities=["heart_rate"])
    features, labels, names = split_features(SplitLoaders(tensors / "tensors", params), "train")
    assert names == [f"heart_rate_bpm:{stat}" for stat in CHANNEL_STATISTICS]
    assert features.shape == (len(labels), len(names))


def test_gradient_boosting_is_selectable(tensors: Path) -> None:
    params = Params.model_validate(
        {"chunk_size": 64, "baseline": {"model": "hist_gradient_boosting", "trees": 20}}
    )
    metrics = run_baseline(params, tensors / "tensors", tensors / "hgb")
    assert metrics["model"] == "hist_gradient_boosting" and 0 <= metrics["f1_macro"] <= 1


def test_unknown_baseline_key_is_rejected() -> None:
    with pytest.raises(ValueError, match="trees_"):
        Params.model_validate({"baseline": {"trees_": 3}})
