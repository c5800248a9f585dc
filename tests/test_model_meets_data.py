"""A model is applied only to data like those it was trained on, and only if its weights are
numbers: evaluate refuses other classes, channels or window length naming both sides, and a
model file with NaN or inf weights (each used to score silently, or crash in calibration)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from harfusion.data.loaders import SplitLoaders
from harfusion.data.preprocess import preprocess
from harfusion.data.splits import write_splits
from harfusion.data.tensorize import tensorize
from harfusion.data.windows import WindowSpec
from harfusion.errors import HarfusionError
from harfusion.evaluation.evaluate import evaluate, latency_ms
from harfusion.layout import LATENCY, MODEL_FILE
from harfusion.models.model_card import check_fits
from harfusion.models.model_file import load_model
from harfusion.params import Params, PreprocessParams, SplitParams
from harfusion.training.fit import fit
from tests.helpers import PAMAP2, TINY, merge, write_recording

PARAMS = Params.model_validate(
    merge(TINY, {"train": {"max_epochs": 1}, "evaluate": {"mc_samples": 2, "latency_batches": 3}})
)


def _tensors(root: Path, activities: tuple[int, ...], chunk: int) -> Path:
    """Five subjects doing `activities`, shard split, windows of `chunk`."""
    for subject in range(101, 106):
        segments = [(a, 300 + 37 * subject % 100) for a in activities]
        write_recording(root / "raw" / "Protocol" / f"subject{subject}.dat", segments, subject)
    preprocess(root / "raw", root / "processed", PreprocessParams(sessions=["Protocol"]), PAMAP2)
    write_splits(root / "processed", root / "splits", SplitParams())
    tensorize(root / "splits", root / "processed", root / "tensors", chunk, chunk)
    return root / "tensors"


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A model trained on lying, walking and running in windows of 64, and its tensors."""
    root = tmp_path_factory.mktemp("trained")
    tensors = _tensors(root, (1, 4, 5), 64)
    fit(PARAMS, tensors, root / "models", root / "reports")
    return tensors, root / "models"


def test_a_model_evaluates_the_data_it_was_trained_on(trained: tuple[Path, Path]) -> None:
    """Control, and `latency.json` never NaN: more warm-up calls than test windows."""
    tensors, models = trained
    params = PARAMS.model_copy(
        update={"evaluate": PARAMS.evaluate.model_copy(update={"latency_warmup": 1000})}
    )
    out = tensors.parent / "eval"
    metrics = evaluate(params, tensors, models, out)
    assert metrics["test_windows"] < 1000
    assert np.isfinite(json.loads((out / LATENCY).read_text())["latency_ms"])
    predictor, saved = load_model(models / MODEL_FILE)
    test = SplitLoaders(tensors, PARAMS)
    test.setup()
    latency = latency_ms(predictor.ensemble, test.splits["test"], windows=3, warmup=1000)
    assert np.isfinite(latency["latency_ms_mean"]) and latency["latency_windows"] == 3
    assert saved["window"] == 64
    assert saved["channel_names"]["imu_hand"][:3] == [f"hand_acc16_{axis}" for axis in "xyz"]


def test_evaluate_rebuilds_the_model_from_its_file_alone(trained: tuple[Path, Path]) -> None:
    """params.yaml naming another fusion, other modalities and other channel groups changes
    nothing: the network, its modalities and channels come from the model file (evaluate's
    stage does not even depend on those params)."""
    tensors, models = trained
    dataset = PARAMS.dataset.model_copy(update={"channel_groups": ["acc6"]})
    other = PARAMS.model_copy(
        update={"fusion": "early", "modalities": ["heart_rate"], "dataset": dataset}
    )
    ours = evaluate(PARAMS, tensors, models, tensors.parent / "eval-params")
    assert evaluate(other, tensors, models, tensors.parent / "eval-other") == ours
    assert ours["parameters"] > 0 and ours["class_names"] == ["lying", "walking", "running"]


def _refusal(params: Params, tensors: Path, models: Path) -> str:
    out = tensors.parent / "eval-refused"
    with pytest.raises(HarfusionError) as info:
        evaluate(params, tensors, models, out)
    assert not out.exists()
    message = str(info.value)
    assert "\n" not in message
    return message


def test_a_model_of_other_classes_is_refused(trained: tuple[Path, Path], tmp_path: Path) -> None:
    """Scored as 0.000 macro F1 with exit 0 before."""
    _, models = trained
    other = _tensors(tmp_path, (1, 4, 24), 64)
    message = _refusal(PARAMS, other, models)
    assert message.startswith(f"{models / MODEL_FILE} does not fit {other / 'manifest.json'}: ")
    assert "classes: the model has [1 lying, 4 walking, 5 running], the data " in message
    assert "[1 lying, 4 walking, 24 rope jumping]" in message


def test_a_model_of_another_window_length_is_refused(
    trained: tuple[Path, Path], tmp_path: Path
) -> None:
    _, models = trained
    message = _refusal(PARAMS, _tensors(tmp_path, (1, 4, 5), 32), models)
    assert "window: the model has 64 steps, the data 32 steps" in message


def test_a_model_of_other_channels_is_refused(trained: tuple[Path, Path], tmp_path: Path) -> None:
    """The legacy `.npy` layout names no channels: their count must match."""
    _, models = trained
    rng = np.random.default_rng(0)
    for split in ("train", "val", "test"):
        for modality, channels in (("imu_hand", 6), ("imu_chest", 9), ("imu_ankle", 9)):
            np.save(tmp_path / f"{split}_{modality}.npy", rng.normal(size=(4, 64, channels)))
        np.save(tmp_path / f"{split}_heart_rate.npy", rng.normal(size=(4, 64, 1)))
        np.save(tmp_path / f"{split}_labels.npy", np.array([1, 4, 5, 1]))
    message = _refusal(PARAMS, tmp_path, models)
    assert "channels: the model has imu_hand: 9, " in message
    assert "the data imu_hand: 6, imu_chest: 9" in message


def test_channel_names_are_compared_where_the_data_name_them(trained: tuple[Path, Path]) -> None:
    """What `harfusion predict` meets in a recording: named columns, no labels."""
    _, models = trained
    _, saved = load_model(models / MODEL_FILE)
    names = dict(saved["channel_names"])
    spec = WindowSpec("rec.dat", 64, dict(saved["channels"]), names)
    check_fits(saved, models / MODEL_FILE, spec)  # no classes: not compared
    names["imu_hand"] = [n.replace("acc16", "acc6") for n in names["imu_hand"]]
    with pytest.raises(HarfusionError, match=r"does not fit rec\.dat: channels: .*hand_acc6_x"):
        check_fits(saved, models / MODEL_FILE, WindowSpec("rec.dat", 64, spec.channels, names))


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_a_model_with_non_finite_weights_is_refused(
    trained: tuple[Path, Path], tmp_path: Path, value: float
) -> None:
    """A diverged run's weights: evaluate crashed in calibration."""
    tensors, models = trained
    saved = torch.load(models / MODEL_FILE, weights_only=True)
    name = next(iter(saved["members"][0]))
    saved["members"][0][name] = torch.full_like(saved["members"][0][name], value)
    torch.save(saved, tmp_path / MODEL_FILE)
    message = _refusal(PARAMS, tensors, tmp_path)
    assert message.startswith(f"{tmp_path / MODEL_FILE}: 1 weight tensors hold NaN or inf")
    assert name in message and "train.learning_rate" in message
