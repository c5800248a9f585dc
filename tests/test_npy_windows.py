"""The seed's `.npy` windows (`{split}_{modality}.npy` [N, T, C] beside `{split}_labels.npy`
[N]), as a user may still have them: with no tensor manifest in the folder, the train and
evaluate stages' own code trains on them and scores them, end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from harfusion.data.dataset import LegacyNpyWindows, open_windows
from harfusion.errors import HarfusionError
from harfusion.evaluation.evaluate import evaluate
from harfusion.layout import CONFUSION, MODEL_FILE, SCORES
from harfusion.params import Params
from harfusion.training.fit import fit
from tests.helpers import TINY, merge, pamap2_inputs

PARAMS = Params.model_validate(
    merge(
        TINY,
        {
            # the layout names no dataset, so its modalities are listed, as its error asks
            "modalities": ["imu_hand", "imu_chest", "imu_ankle", "heart_rate"],
            "train": {"max_epochs": 1},
            "evaluate": {"mc_samples": 2, "latency_batches": 2},
        },
    )
)
ACTIVITIES = (1, 4, 5)
WINDOWS = {"train": 24, "val": 6, "test": 6}


def _npy_layout(folder: Path) -> dict[str, np.ndarray]:
    """Windows of 64 steps per modality, each activity offset in the hand IMU; a heart-rate gap
    (NaN) in the first test window. Returns the labels per split."""
    rng = np.random.default_rng(0)
    channels = pamap2_inputs(PARAMS).channels
    folder.mkdir()
    labels = {}
    for split, n in WINDOWS.items():
        labels[split] = np.array([ACTIVITIES[i % len(ACTIVITIES)] for i in range(n)])
        for modality, count in channels.items():
            array = rng.normal(size=(n, PARAMS.chunk_size, count)).astype(np.float32)
            if modality == "imu_hand":
                array[:, :, 0] += labels[split][:, None]
            if modality == "heart_rate" and split == "test":
                array[0, :10] = np.nan
            np.save(folder / f"{split}_{modality}.npy", array)
        np.save(folder / f"{split}_labels.npy", labels[split])
    return labels


def test_npy_windows_train_and_evaluate_through_the_stages_code(tmp_path: Path) -> None:
    data = tmp_path / "npy"
    labels = _npy_layout(data)
    assert isinstance(
        open_windows(data, "test", {m: [] for m in pamap2_inputs(PARAMS).modalities}),
        LegacyNpyWindows,
    )
    summary = fit(PARAMS, data, tmp_path / "models", tmp_path / "reports")
    assert summary["epochs"] == 1
    saved = torch.load(tmp_path / "models" / MODEL_FILE, weights_only=True)
    assert saved["class_names"] == ["1", "4", "5"] and saved["window"] == PARAMS.chunk_size
    metrics = evaluate(PARAMS, data, tmp_path / "models", tmp_path / "eval")
    assert metrics["test_windows"] == WINDOWS["test"]
    scores = json.loads((tmp_path / "eval" / SCORES).read_text())
    assert scores["class_names"] == ["1", "4", "5"]
    assert scores["classes_without_training_windows"] == []
    rows = (tmp_path / "eval" / CONFUSION).read_text().splitlines()
    assert rows[0] == "actual,predicted"
    assert [row.split(",")[0] for row in rows[1:]] == [str(a) for a in labels["test"]]
    assert {row.split(",")[1] for row in rows[1:]} <= {"1", "4", "5"}


def test_npy_windows_that_disagree_are_refused_naming_the_folder(tmp_path: Path) -> None:
    data = tmp_path / "npy"
    _npy_layout(data)
    np.save(data / "val_labels.npy", np.array([1, 4]))
    with pytest.raises(HarfusionError, match=f"{data}: val arrays disagree"):
        fit(PARAMS, data, tmp_path / "models", tmp_path / "reports")
    assert not (tmp_path / "models").exists()
