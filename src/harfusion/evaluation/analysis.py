"""Per-run figures from the outputs of train, evaluate and baseline (the analyze stage)."""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping
from pathlib import Path

from harfusion import layout
from harfusion.atomic import atomic_path
from harfusion.evaluation.plots import (
    calibration_change_bars,
    confusion_matrices,
    missing_modality_bars,
    per_class_f1_bars,
    training_curves,
)


def read_predictions(path: Path) -> tuple[list[str], list[str]]:
    """(actual, predicted) class names from a `confusion.csv`."""
    with path.open(newline="") as table:
        rows = list(csv.DictReader(table))
    return [row["actual"] for row in rows], [row["predicted"] for row in rows]


def read_epochs(path: Path) -> list[dict[str, float]]:
    with path.open(newline="") as table:
        return [{k: float(v) for k, v in row.items() if v != ""} for row in csv.DictReader(table)]


def analyze(
    eval_dir: Path,
    train_dir: Path,
    baseline_dir: Path,
    out_dir: Path,
    modality_labels: Mapping[str, str],
) -> list[Path]:
    """The figures of one run; `modality_labels`: how its dataset names each modality."""
    scores = json.loads((eval_dir / layout.SCORES).read_text())
    missing = json.loads((eval_dir / layout.MISSING_MODALITY).read_text())
    full = max(missing, key=lambda key: len(missing[key]["modalities"]))
    predictions = {
        "model": read_predictions(eval_dir / layout.CONFUSION),
        "baseline (forest)": read_predictions(baseline_dir / layout.CONFUSION),
    }
    seen = {name for actual, predicted in predictions.values() for name in actual + predicted}
    classes = [name for name in scores["class_names"] if name in seen]
    keys = ("missing", "per_class", "calibration", "curves", "confusion")
    names = dict(zip(keys, layout.ANALYSIS_PLOTS, strict=True))
    with atomic_path(out_dir) as tmp:
        tmp.mkdir()
        missing_modality_bars(missing, full, modality_labels, tmp / names["missing"])
        per_class_f1_bars(scores["per_class_f1"], tmp / names["per_class"])
        calibration_change_bars(scores, tmp / names["calibration"])
        training_curves(
            read_epochs(train_dir / layout.EPOCHS),
            read_epochs(train_dir / layout.MEMBERS),
            tmp / names["curves"],
        )
        confusion_matrices(predictions, classes, tmp / names["confusion"])
    return [out_dir / name for name in layout.ANALYSIS_PLOTS]
