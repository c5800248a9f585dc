"""The classical baseline: a scikit-learn forest on statistics of exactly the deep model's windows.

A random forest on window statistics is what an activity-recognition researcher tries first,
and on people it has never seen it beat the fusion models; a deep result means little without
it beside it. The
windows, splits, channels, modalities and class list come from the same loaders the deep model
trains on (normalised as it sees them: every feature below is unchanged by a per-channel scale
and shift up to a monotone map, which is all a tree looks at).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from harfusion import layout
from harfusion.atomic import atomic_path
from harfusion.data.loaders import SplitLoaders
from harfusion.errors import HarfusionError
from harfusion.evaluation.calibration import brier_score, expected_calibration_error
from harfusion.evaluation.metrics import classification_metrics
from harfusion.params import BaselineParams, Params
from harfusion.registry import Registry
from harfusion.threads import usable_cores

CHANNEL_STATISTICS = (
    "mean",
    "std",
    "min",
    "max",
    "median",
    "p10",
    "p90",
    "mean_abs_diff",
    "dominant_hz",
    "dominant_power",
)
PROBABILITY_FLOOR = 1e-12  # a forest gives hard zeros; NLL of a zero is infinite


def feature_names(columns: list[str], vectors: Sequence[Sequence[str]] = ()) -> list[str]:
    names = [f"{column}:{stat}" for column in columns for stat in CHANNEL_STATISTICS]
    return names + [f"{a}~{b}:corr" for a, b in _axis_pairs(vectors)]


def _axis_pairs(vectors: Sequence[Sequence[str]]) -> list[tuple[str, str]]:
    """The pairs of each acceleration vector's axes x, y, z."""
    return [(x, y) for x, y, z in vectors for x, y in ((x, y), (x, z), (y, z))]


def _quantiles(ordered: np.ndarray, levels: tuple[float, ...]) -> list[np.ndarray]:
    """np.quantile's default (linear) quantiles from rows sorted once: numpy's SIMD sort beats
    its per-call partition about tenfold here (0.04 s against 0.42 s for one split's windows)."""
    last = ordered.shape[-1] - 1
    result = []
    for level in levels:
        low = int(np.floor(level * last))
        high = min(low + 1, last)
        weight = level * last - low
        result.append(ordered[..., low] + (ordered[..., high] - ordered[..., low]) * weight)
    return result


def window_features(
    windows: np.ndarray,
    columns: list[str],
    rate_hz: float,
    vectors: Sequence[Sequence[str]] = (),
) -> np.ndarray:
    """[N, T, C] windows sampled at `rate_hz` → [N, F] features in `feature_names(columns,
    vectors)` order, float64; `vectors`: the x, y, z columns of each acceleration vector among
    `columns`, whose axis correlations are features. Computed in
    float32 on one contiguous [N, C, T] copy, the windows' own precision: the sort, the FFT and
    the copies are memory-bound and take about half the time they took in float64."""
    x = np.ascontiguousarray(np.asarray(windows, dtype=np.float32).transpose(0, 2, 1))
    steps = x.shape[-1]
    ordered = np.sort(x, axis=-1)
    p10, median, p90 = _quantiles(ordered, (0.1, 0.5, 0.9))
    # Removing the mean changes only bin 0 of the spectrum, which is dropped: no centred copy.
    power = np.abs(np.fft.rfft(x, axis=-1)[..., 1:]) ** 2 / steps
    peak = power.argmax(axis=-1)
    per_channel = np.stack(
        [
            x.mean(axis=-1),
            x.std(axis=-1),
            ordered[..., 0],
            ordered[..., -1],
            median,
            p10,
            p90,
            np.abs(np.diff(x, axis=-1)).mean(axis=-1),
            (peak + 1) * rate_hz / steps,
            np.take_along_axis(power, peak[..., None], axis=-1)[..., 0],
        ],
        axis=-1,
        dtype=np.float64,
    ).reshape(len(x), -1)  # channel-major, like feature_names
    return np.column_stack([per_channel, *_correlations(x, columns, vectors)])


def _correlations(
    x: np.ndarray, columns: list[str], vectors: Sequence[Sequence[str]]
) -> list[np.ndarray]:
    """Pearson correlation of the acceleration axis pairs, in float64 (a difference of
    near-equal sums would lose float32's few digits)."""
    index = {column: i for i, column in enumerate(columns)}
    picked = sorted({index[axis] for pair in _axis_pairs(vectors) for axis in pair})
    centred = {i: x[:, i].astype(np.float64) for i in picked}
    for axis in centred.values():
        axis -= axis.mean(axis=-1, keepdims=True)
    scale = {i: np.sqrt((axis**2).sum(axis=-1)) for i, axis in centred.items()}
    return [
        (centred[index[a]] * centred[index[b]]).sum(axis=-1)
        / np.maximum(scale[index[a]] * scale[index[b]], 1e-12)
        for a, b in _axis_pairs(vectors)
    ]


def split_features(data: SplitLoaders, split: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Features and labels of every window of `split`, batch by batch (memory stays flat), one
    modality at a time (joining the modalities first copied every window once more)."""
    description = data.description
    if description is None:
        raise HarfusionError(
            f"{data.tensor_dir}: the baseline needs the dataset description beside the windows "
            "(its sampling rate and acceleration axes); rerun `dvc repro tensorize`"
        )
    columns = data.inputs.channel_names
    rate = description.sampling_rate_hz
    axes = {m: description.acceleration_axes(m, data.inputs.groups[m]) for m in columns}
    vectors = {m: [axes[m]] if axes[m] else [] for m in columns}
    features, labels = [], []
    for batch in data.loader(split):
        inputs = batch["inputs"]
        features.append(
            np.hstack(
                [window_features(inputs[m].numpy(), columns[m], rate, vectors[m]) for m in columns]
            )
        )
        labels.append(batch["label"].numpy())
    names = [name for m in columns for name in feature_names(columns[m], vectors[m])]
    return np.concatenate(features), np.concatenate(labels), names


def _random_forest(baseline: BaselineParams, seed: int):
    from sklearn.ensemble import RandomForestClassifier

    return RandomForestClassifier(
        n_estimators=baseline.trees,
        max_depth=baseline.max_depth,
        min_samples_leaf=baseline.min_samples_leaf,
        class_weight=baseline.class_weight,
        n_jobs=usable_cores(),
        random_state=seed,
    )


def _hist_gradient_boosting(baseline: BaselineParams, seed: int):
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(
        max_iter=baseline.trees,
        max_depth=baseline.max_depth,
        min_samples_leaf=baseline.min_samples_leaf,
        class_weight=baseline.class_weight,
        early_stopping=False,
        random_state=seed,
    )


# `baseline.model`'s choices (scikit-learn imported only by the one chosen).
ESTIMATORS = Registry(
    "baseline model",
    {"random_forest": _random_forest, "hist_gradient_boosting": _hist_gradient_boosting},
)


def make_estimator(baseline: BaselineParams, seed: int):
    """The scikit-learn model `baseline.model` names; seeded, so refits give the same bytes."""
    return ESTIMATORS[baseline.model](baseline, seed)


def class_probabilities(estimator, features: np.ndarray, classes: int) -> Tensor:
    """[N, classes] probabilities over the full class list; a class that had no training window
    gets probability 0 (the estimator never saw it)."""
    probs = np.zeros((len(features), classes))
    probs[:, estimator.classes_] = estimator.predict_proba(features)
    return torch.from_numpy(probs)


def window_counts(data: SplitLoaders) -> dict[str, dict[str, int]]:
    """Windows per split and class: which classes could be learned at all (LOSO reads it)."""
    return {
        split: dict(zip(data.class_names, data.class_counts(split).tolist(), strict=True))
        for split in data.splits
    }


def run_baseline(params: Params, tensor_dir: Path, out_dir: Path) -> dict:
    """Fit on train, score test; write `scores.json` (the keys and meaning of evaluate's),
    `metrics.json` (its headline, nested under `baseline` so that no key repeats evaluate's in
    `dvc exp show`), `confusion.csv` and `windows.json`. Returns the scores."""
    data = SplitLoaders(tensor_dir, params)
    names = data.class_names
    train_x, train_y, features = split_features(data, "train")
    test_x, test_y, _ = split_features(data, "test")
    estimator = make_estimator(params.baseline, params.seed).fit(train_x, train_y)
    if "n_jobs" in estimator.get_params():  # threads add the trees' votes in any order: not
        estimator.set_params(n_jobs=1)  # the same bytes twice (fitting in parallel is exact)
    probs = class_probabilities(estimator, test_x, len(names))
    labels = torch.from_numpy(test_y)
    log_probs = probs.clamp_min(PROBABILITY_FLOOR).log()
    scores = classification_metrics(log_probs, labels, names) | {
        "nll": float(torch.nn.functional.nll_loss(log_probs, labels)),
        "brier": brier_score(probs, labels),
        "ece": expected_calibration_error(probs.float(), labels, params.evaluate.ece_bins),
        "model": params.baseline.model,
        "features": len(features),
        "train_windows": len(train_y),
        "test_windows": len(test_y),
    }
    predicted = log_probs.argmax(dim=1).tolist()
    confusion = "actual,predicted\n" + "".join(
        f"{names[a]},{names[p]}\n" for a, p in zip(test_y.tolist(), predicted, strict=True)
    )
    headline = {"baseline": {key: scores[key] for key in ("accuracy", "f1_macro")}}
    with atomic_path(out_dir) as tmp:
        tmp.mkdir()
        (tmp / layout.METRICS).write_text(json.dumps(headline, indent=2) + "\n")
        (tmp / layout.SCORES).write_text(json.dumps(scores, indent=2) + "\n")
        (tmp / layout.CONFUSION).write_text(confusion)
        (tmp / layout.BASELINE_WINDOWS).write_text(json.dumps(window_counts(data), indent=2) + "\n")
    return scores
