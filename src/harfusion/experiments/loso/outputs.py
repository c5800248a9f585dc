"""What a finished fold's experiment left, read from its git ref (or the DVC remote) without
checking it out: the summary needs a few small files of each fold, never its model."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from typing import Any

from harfusion.experiments.dvc_client import (
    BASELINE_CONFUSION,
    BASELINE_WINDOWS,
    CONFUSION,
    PREDICTIONS,
    SCORES,
    Experiment,
    read_json,
    read_output,
)


@dataclass
class FoldOutputs:
    """What a finished fold's experiment left: test predictions of both models, windows per
    class and split (the baseline stage counts them), and the deep model's logits per window
    with its scores (the class order and the calibration its model file applies)."""

    deep: str
    baseline: str | None = None
    windows: dict[str, dict[str, int]] | None = None
    predictions: str | None = None
    scores: dict[str, Any] | None = None


def read_fold(rev: str) -> FoldOutputs | None:
    deep = read_output(CONFUSION, rev)
    if deep is None:
        return None
    windows = read_output(BASELINE_WINDOWS, rev)
    return FoldOutputs(
        deep,
        read_output(BASELINE_CONFUSION, rev),
        json.loads(windows) if windows else None,
        read_output(PREDICTIONS, rev),
        read_json(SCORES, rev),
    )


def read_folds(finished: dict[str, Experiment]) -> dict[str, FoldOutputs]:
    """The outputs of every experiment that succeeded and left its test predictions."""
    return {
        name: out
        for name, exp in finished.items()
        if exp.state == "success" and (out := read_fold(exp.rev)) is not None
    }


def confusion_rows(text: str) -> tuple[list[str], list[str]]:
    """(actual, predicted) class names of a confusion CSV's windows."""
    rows = list(csv.DictReader(io.StringIO(text)))
    return [row["actual"] for row in rows], [row["predicted"] for row in rows]
