"""No information crosses from validation or test into training, checked on the pipeline's outputs.

Every check runs our own preprocess → write_splits → tensorize (and evaluate) on tiny recordings
and inspects what they wrote: window indexes expanded to rows and the rows' actual contents, the
normalisation file, and the inputs of the temperature fit. Each has a control that shows the
check can fail, so a pass means something.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
import torch

from harfusion.data.dataset import ShardWindows, load_tensor_shard
from harfusion.data.preprocess import preprocess, read_shard_csv
from harfusion.data.splits import SPLITS, write_splits
from harfusion.data.tensorize import tensorize
from harfusion.evaluation import evaluate as evaluation
from harfusion.layout import MANIFEST, MODEL_FILE, NORM_STATS
from harfusion.models import calibrator
from harfusion.models.calibrator import fit_temperature
from harfusion.models.model_file import load_model
from harfusion.params import Params, PreprocessParams, SplitParams
from harfusion.training.datamodule import WindowDataModule
from harfusion.training.fit import fit
from tests.helpers import (
    IMU_GROUPS,
    MODALITIES,
    PAMAP2,
    RAW_COLUMNS,
    SENSOR_COLUMNS,
    TINY,
    merge,
    pamap2_channels,
    write_recording,
)

CHUNK = 64
ALL_GROUPS = list(IMU_GROUPS)  # every column, so served rows are as distinct as raw rows

RowMap = dict[str, dict[tuple[str, int], bytes]]


def _write_raw(raw: Path, subjects: range) -> None:
    """Three activities per subject with a transient between, like conftest's `tensors`."""
    for subject in subjects:
        segments = [(a, 300 + 37 * subject % 100) for a in (1, 4, 5)]
        segments.insert(2, (0, 30))
        write_recording(raw / "Protocol" / f"subject{subject}.dat", segments, seed=subject)


class Pipeline:
    """One preprocess + split, tensorized lazily per (stride, processed dir)."""

    def __init__(self, root: Path, split: SplitParams, subjects: range) -> None:
        self.root = root
        _write_raw(root / "raw", subjects)
        preprocess(
            root / "raw", root / "processed", PreprocessParams(sessions=["Protocol"]), PAMAP2
        )
        self.summary = write_splits(root / "processed", root / "splits", split)

    def tensors(self, stride: int) -> Path:
        out = self.root / f"tensors_{stride}"
        if not out.exists():
            tensorize(self.root / "splits", self.root / "processed", out, CHUNK, stride)
        return out


@pytest.fixture(scope="module")
def shard_split(tmp_path_factory: pytest.TempPathFactory) -> Pipeline:
    """The default `strategy: shard` over 5 subjects × 3 activities."""
    return Pipeline(tmp_path_factory.mktemp("shard"), SplitParams(), range(101, 106))


@pytest.fixture(scope="module")
def subject_split(tmp_path_factory: pytest.TempPathFactory) -> Pipeline:
    """`strategy: subject` with 103 held out for validation and 104 for test."""
    params = SplitParams(strategy="subject", val_subjects=[103], test_subjects=[104])
    return Pipeline(tmp_path_factory.mktemp("subject"), params, range(101, 105))


def _manifest(tensor_dir: Path) -> dict:
    return json.loads((tensor_dir / MANIFEST).read_text())


def _window_rows(tensor_dir: Path, columns: list[int] | None = None) -> RowMap:
    """Per split: every (shard path, row) some window covers → that row's feature bytes."""
    manifest = _manifest(tensor_dir)
    chunk = manifest["chunk_size"]
    features = [
        load_tensor_shard(tensor_dir / s["path"])["features"].numpy() for s in manifest["shards"]
    ]
    rows: RowMap = {split: {} for split in SPLITS}
    for split in SPLITS:
        for shard, start in manifest["windows"][split]:
            path = manifest["shards"][shard]["path"]
            block = features[shard][start : start + chunk]
            if columns is not None:
                block = block[:, columns]
            for offset, row in enumerate(block):
                rows[split][(path, start + offset)] = row.tobytes()
    return rows


def _leaks(rows: RowMap, into: str, source: str) -> tuple[set, set]:
    """(positions, row contents) of `source` windows that also occur in `into` windows."""
    positions = rows[into].keys() & rows[source].keys()
    contents = set(rows[into].values()) & set(rows[source].values())
    return positions, contents


def _served_rows(tensor_dir: Path, split: str) -> set[bytes]:
    """The normalised rows ShardWindows hands the model for a split: what training really sees."""
    data = ShardWindows(tensor_dir, split, pamap2_channels(MODALITIES, ALL_GROUPS))
    served = set()
    for index in range(len(data)):
        inputs = data[index]["inputs"]
        window = torch.cat([inputs[m] for m in MODALITIES], dim=1).numpy()
        served.update(row.tobytes() for row in window)
    return served


@pytest.mark.parametrize("stride", [CHUNK, CHUNK // 2, CHUNK // 4], ids=lambda s: f"stride{s}")
def test_no_test_or_val_row_in_any_train_window(shard_split: Pipeline, stride: int) -> None:
    """Windows (also overlapping ones) expanded to rows: no position or content shared."""
    stride = Params.model_validate(
        {"chunk_size": CHUNK, "dataset": {"chunk_stride": stride}}
    ).stride
    tensor_dir = shard_split.tensors(stride)
    rows = _window_rows(tensor_dir)
    # Equal bytes must mean the same row, else a content match would prove nothing.
    every_row = [
        row.tobytes()
        for s in _manifest(tensor_dir)["shards"]
        for row in load_tensor_shard(tensor_dir / s["path"])["features"].numpy()
    ]
    assert len(set(every_row)) == len(every_row)
    for into, source in (("train", "test"), ("train", "val"), ("val", "test")):
        positions, contents = _leaks(rows, into, source)
        assert not positions, f"{source} rows at {sorted(positions)[:5]} are in {into} windows"
        assert not contents, f"{len(contents)} {source} row contents reappear in {into} windows"
    served = {split: _served_rows(tensor_dir, split) for split in SPLITS}
    assert not served["train"] & served["test"]
    assert not served["train"] & served["val"]
    assert not served["val"] & served["test"]
    if stride < CHUNK:  # the overlapping case really overlaps: windows share rows
        windows = _manifest(tensor_dir)["windows"]["train"]
        assert len(windows) * CHUNK > len(rows["train"])


def test_leak_check_catches_a_planted_leak(shard_split: Pipeline, tmp_path: Path) -> None:
    """Control: copy one test window into the train index and the row checks must fire."""
    tensor_dir = tmp_path / "tensors"
    shutil.copytree(shard_split.tensors(CHUNK // 2), tensor_dir)
    manifest = _manifest(tensor_dir)
    manifest["windows"]["train"].append(manifest["windows"]["test"][0])
    (tensor_dir / MANIFEST).write_text(json.dumps(manifest))
    positions, contents = _leaks(_window_rows(tensor_dir), "train", "test")
    assert len(positions) == len(contents) == CHUNK
    assert _served_rows(tensor_dir, "train") & _served_rows(tensor_dir, "test")


def test_norm_stats_are_the_train_rows_statistics(shard_split: Pipeline) -> None:
    """Every column's mean/std/count recomputed from the train split's rows, and not all rows."""
    tensor_dir = shard_split.tensors(CHUNK)
    stats = json.loads((tensor_dir / NORM_STATS).read_text())
    assert stats["fit_on"] == "train" and stats["columns"] == list(SENSOR_COLUMNS)

    def values(splits: tuple[str, ...]) -> np.ndarray:
        paths = [
            line.rpartition(",")[0]
            for split in splits
            for line in (shard_split.root / "splits" / f"{split}.txt").read_text().splitlines()
        ]
        tables = [read_shard_csv(p, PAMAP2) for p in paths]
        return np.vstack(
            [
                np.column_stack(
                    [t.column(c).to_numpy(zero_copy_only=False) for c in SENSOR_COLUMNS]
                )
                for t in tables
            ]
        )

    train, everything = values(("train",)), values(SPLITS)
    assert len(train) < len(everything)
    np.testing.assert_allclose(stats["mean"], np.nanmean(train, axis=0), rtol=0, atol=1e-9)
    np.testing.assert_allclose(stats["std"], np.nanstd(train, axis=0), rtol=1e-6)
    assert stats["count"] == np.count_nonzero(~np.isnan(train), axis=0).tolist()
    # Control: statistics over every split are measurably different from what was stored.
    assert np.abs(np.array(stats["mean"]) - np.nanmean(everything, axis=0)).max() > 1e-3
    assert stats["count"] != np.count_nonzero(~np.isnan(everything), axis=0).tolist()


def _rescale_shards(splits_dir: Path, splits: tuple[str, ...], limit: int | None = None) -> None:
    """Overwrite the sensor values of the listed shards (×10 + 3), keeping rows and timestamps."""
    for split in splits:
        lines = (splits_dir / f"{split}.txt").read_text().splitlines()[:limit]
        for line in lines:
            path = line.rpartition(",")[0]
            table = read_shard_csv(path, PAMAP2)
            for name in SENSOR_COLUMNS:
                column = table.column(name).to_numpy(zero_copy_only=False) * 10 + 3
                table = table.set_column(
                    table.column_names.index(name), name, pa.array(column, pa.float64())
                )
            pacsv.write_csv(table, path)


def test_changing_val_and_test_rows_leaves_norm_stats_identical(
    shard_split: Pipeline, tmp_path: Path
) -> None:
    """Rewriting every val/test row leaves norm_stats.json byte-identical; one train shard not."""
    original = (shard_split.tensors(CHUNK) / NORM_STATS).read_bytes()

    def retensorize(name: str, change: Callable[[Path], None]) -> bytes:
        root = tmp_path / name
        shutil.copytree(shard_split.root / "processed", root / "processed")
        summary = write_splits(root / "processed", root / "splits", SplitParams())
        assert summary == shard_split.summary  # the copy splits exactly like the original
        change(root / "splits")
        manifest = tensorize(root / "splits", root / "processed", root / "tensors", CHUNK, CHUNK)
        assert manifest["windows"] == _manifest(shard_split.tensors(CHUNK))["windows"]
        return (root / "tensors" / NORM_STATS).read_bytes()

    def val_and_test(splits_dir: Path) -> None:
        _rescale_shards(splits_dir, ("val", "test"))

    def one_train_shard(splits_dir: Path) -> None:
        _rescale_shards(splits_dir, ("train",), limit=1)

    assert retensorize("val_test", val_and_test) == original
    assert retensorize("train", one_train_shard) != original  # control: it follows train rows


def test_training_fits_the_calibration_on_validation_logits_only(
    shard_split: Pipeline, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The model file's temperature is fit by training on exactly the validation split's logits
    of the kept weights; evaluate applies it and fits none, so changing every test window
    moves the test scores and never the temperature."""
    tensor_dir = shard_split.tensors(CHUNK)
    params = Params.model_validate(
        merge(TINY, {"fusion": "late", "train": {"max_epochs": 1, "cpu_threads": 1}})
        | {"evaluate": {"mc_samples": 2, "latency_batches": 2, "latency_warmup": 0}}
    )
    calls: list[tuple[torch.Tensor, torch.Tensor]] = []

    def recording_fit(logits: torch.Tensor, labels: torch.Tensor, **kwargs: int) -> float:
        calls.append((logits.clone(), labels.clone()))
        return fit_temperature(logits, labels, **kwargs)

    monkeypatch.setattr(calibrator, "fit_temperature", recording_fit)
    fit(params, tensor_dir, tmp_path / "models", tmp_path / "reports")
    assert len(calls) == 1
    logits, labels = calls[0]
    predictor, saved = load_model(tmp_path / "models" / MODEL_FILE)
    data = WindowDataModule(tensor_dir, params)
    val = evaluation.predict(predictor.ensemble, data.loader("val"))
    test = evaluation.predict(predictor.ensemble, data.loader("test"))
    assert torch.equal(labels, val.labels)
    torch.testing.assert_close(logits, val.logits)
    assert labels.shape != test.labels.shape or not torch.equal(labels, test.labels)
    temperature = saved["calibration"]["temperature"]
    assert temperature == fit_temperature(val.logits, val.labels)
    assert saved["calibration"]["windows"] == len(val.labels)

    monkeypatch.undo()
    metrics = evaluation.evaluate(params, tensor_dir, tmp_path / "models", tmp_path / "eval")
    assert metrics["temperature"] == temperature
    # Behaviour: rescale every test shard's features; test metrics move, the temperature not.
    perturbed = tmp_path / "perturbed"
    shutil.copytree(tensor_dir, perturbed)
    for shard in _manifest(perturbed)["shards"]:
        if shard["split"] == "test":
            payload = load_tensor_shard(perturbed / shard["path"])
            payload["features"] = payload["features"] * 5 + 2
            torch.save(payload, perturbed / shard["path"])
    again = evaluation.evaluate(params, perturbed, tmp_path / "models", tmp_path / "eval2")
    assert again["nll_before"] != metrics["nll_before"]
    assert again["temperature"] == temperature


def test_subject_split_keeps_held_out_subjects_out_of_training(subject_split: Pipeline) -> None:
    """strategy: subject — by manifest, shard metadata and row contents, 104 (test) and 103 (val)
    reach no train window, and 104 no val window."""
    assert subject_split.summary["subjects"] == {"train": [101, 102], "val": [103], "test": [104]}
    tensor_dir = subject_split.tensors(CHUNK // 2)
    manifest = _manifest(tensor_dir)
    expected = {"train": {101, 102}, "val": {103}, "test": {104}}
    for split in SPLITS:
        subjects = set()
        for shard, _ in manifest["windows"][split]:
            meta = manifest["shards"][shard]
            payload = load_tensor_shard(tensor_dir / meta["path"])
            assert payload["subject"] == meta["subject"]
            assert meta["split"] == split
            subjects.add(meta["subject"])
        assert subjects == expected[split], split

    # Rows straight from each subject's .dat (not via our reader), heart rate left out because
    # preprocessing fills it; the same columns of every window row are compared against them.
    columns = [i for i, c in enumerate(SENSOR_COLUMNS) if c != "heart_rate_bpm"]
    raw_columns = [RAW_COLUMNS.index(SENSOR_COLUMNS[i]) for i in columns]

    def raw_rows(subject: int) -> set[bytes]:
        table = np.loadtxt(subject_split.root / "raw" / "Protocol" / f"subject{subject}.dat")
        labelled = table[table[:, RAW_COLUMNS.index("activity_id")] != 0]
        return {row.tobytes() for row in labelled[:, raw_columns].astype(np.float32)}

    held_out = {subject: raw_rows(subject) for subject in (103, 104)}
    windows = {
        split: set(rows.values()) for split, rows in _window_rows(tensor_dir, columns).items()
    }
    assert not windows["train"] & held_out[104]
    assert not windows["val"] & held_out[104]
    assert not windows["train"] & held_out[103]
    # Control: the comparison matches rows at all — each held-out split is its subject's rows.
    assert windows["test"] and windows["test"] <= held_out[104]
    assert windows["val"] and windows["val"] <= held_out[103]
