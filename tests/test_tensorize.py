import json
from pathlib import Path

import numpy as np
import pyarrow.csv as pacsv
import pytest
import torch

from harfusion.data.dataset import (
    LegacyNpyWindows,
    ShardWindows,
    collate_windows,
    load_tensor_shard,
    open_windows,
)
from harfusion.data.pamap2 import MODALITIES, PROCESSED_COLUMNS, SENSOR_COLUMNS
from harfusion.data.preprocess import preprocess
from harfusion.data.splits import write_splits
from harfusion.data.tensorize import _check_finite_stats, tensorize, window_starts
from harfusion.errors import HarfusionError
from harfusion.params import Params, PreprocessParams, SplitParams
from harfusion.training.datamodule import WindowDataModule
from tests.helpers import write_recording

GROUPS = ["acc16", "gyro", "mag"]


def test_window_starts_respect_gaps() -> None:
    t = np.concatenate([np.arange(100) * 0.01, 5 + np.arange(50) * 0.01])
    starts = window_starts(t, chunk_size=40, stride=20)
    assert starts.tolist() == [0, 20, 40, 60, 100]
    for s in starts:
        assert np.all(np.diff(t[s : s + 40]) < 0.015)


def test_windows_stay_inside_one_shard_and_split(tensors: Path) -> None:
    manifest = json.loads((tensors / "tensors" / "manifest.json").read_text())
    assert manifest["classes"] == [1, 4, 5]
    for split, windows in manifest["windows"].items():
        assert windows, split
        for shard_index, start in windows:
            shard = manifest["shards"][shard_index]
            assert shard["split"] == split
            assert start + 64 <= shard["rows"]
            data = load_tensor_shard(tensors / "tensors" / shard["path"])
            steps = np.diff(data["timestamps"][start : start + 64].numpy())
            assert np.all((steps > 0) & (steps < 0.015))


def test_train_stride_overlaps_training_windows_only(tensors: Path) -> None:
    """The fixture cut windows of 64 every 32 rows; a train stride of 8 quadruples the train
    windows and leaves validation and test windows (the evaluation protocol) as they were."""
    before = json.loads((tensors / "tensors" / "manifest.json").read_text())
    out = tensors / "dense"
    after = tensorize(tensors / "splits", tensors / "processed", out, 64, 32, train_stride=8)
    assert after["stride"] == 32 and after["train_stride"] == 8
    assert after["windows"]["val"] == before["windows"]["val"]
    assert after["windows"]["test"] == before["windows"]["test"]
    starts = np.array(after["windows"]["train"])
    first_shard = starts[starts[:, 0] == starts[0, 0], 1]
    assert np.diff(first_shard).tolist() == [8] * (len(first_shard) - 1)
    assert len(starts) > 3 * len(before["windows"]["train"])
    assert (out / "norm_stats.json").read_text() == (
        tensors / "tensors" / "norm_stats.json"
    ).read_text()
    assert Params.model_validate({"dataset": {"train_stride": 8}}).train_stride == 8
    unset = Params.model_validate({"chunk_size": 256, "dataset": {"train_stride": None}})
    assert unset.train_stride == 256  # null: the evaluation stride


def test_norm_stats_fit_on_train_rows_only(tensors: Path) -> None:
    stats = json.loads((tensors / "tensors" / "norm_stats.json").read_text())
    train = [
        line.rpartition(",")[0]
        for line in (tensors / "splits" / "train.txt").read_text().splitlines()
    ]
    column = SENSOR_COLUMNS.index("chest_gyro_y")
    values = np.concatenate(
        [pacsv.read_csv(p).column("chest_gyro_y").to_numpy(zero_copy_only=False) for p in train]
    )
    assert stats["mean"][column] == pytest.approx(np.nanmean(values))
    assert stats["std"][column] == pytest.approx(np.nanstd(values), rel=1e-6)
    assert stats["count"][column] == np.count_nonzero(~np.isnan(values))


def test_dataset_slices_modalities(tensors: Path) -> None:
    data = ShardWindows(tensors / "tensors", "train", MODALITIES, GROUPS)
    sample = data[0]
    assert {m: v.shape for m, v in sample["inputs"].items()} == {
        "imu_hand": (64, 9),
        "imu_chest": (64, 9),
        "imu_ankle": (64, 9),
        "heart_rate": (64, 1),
    }
    assert sample["mask"].tolist() == [True] * 4
    assert 0 <= sample["label"] < 3
    lazy = ShardWindows(tensors / "tensors", "train", MODALITIES, GROUPS, prefetch_shards=False)
    for modality in MODALITIES:
        assert torch.equal(lazy[3]["inputs"][modality], data[3]["inputs"][modality])
    only = ShardWindows(tensors / "tensors", "val", ["imu_ankle"], ["temperature", "acc6"])
    assert only[0]["inputs"]["imu_ankle"].shape == (64, 4)


def test_batched_fetch_equals_single_windows(tensors: Path) -> None:
    """The loader's one-gather batches must hold exactly the windows `data[i]` gives."""
    data = ShardWindows(tensors / "tensors", "train", MODALITIES, GROUPS)
    lazy = ShardWindows(tensors / "tensors", "train", MODALITIES, GROUPS, prefetch_shards=False)
    indices = torch.randperm(len(data), generator=torch.Generator().manual_seed(0))[:9].tolist()
    batch = collate_windows(data.__getitems__(indices))
    expected = collate_windows(lazy.__getitems__(indices))
    assert isinstance(batch, dict) and batch["label"].tolist() == expected["label"].tolist()
    assert batch["mask"].shape == (9, 4) and batch["mask"].all()
    for modality in MODALITIES:
        assert batch["inputs"][modality].shape[:2] == (9, 64)
        assert torch.equal(batch["inputs"][modality], expected["inputs"][modality])
    assert len({int(data.windows[i, 0]) for i in indices}) > 1  # crosses shards


def test_batches_gathered_where_the_rows_live(tensors: Path) -> None:
    """`to(device)` moves the rows; batches then come from there (meta stands in for CUDA)."""
    data = ShardWindows(tensors / "tensors", "train", MODALITIES, GROUPS).to(torch.device("meta"))
    batch = collate_windows(data.__getitems__([0, 3, 5]))
    assert all(x.device.type == "meta" and x.shape[:2] == (3, 64) for x in batch["inputs"].values())
    assert batch["mask"].device.type == batch["label"].device.type == "meta"


def test_gather_on_device_needs_cuda(tensors: Path) -> None:
    params = Params.model_validate({"chunk_size": 64, "dataset": {"gather_on_device": True}})
    with pytest.raises(HarfusionError, match="gather_on_device: true needs a CUDA device"):
        WindowDataModule(tensors / "tensors", params, torch.device("cpu")).setup()
    auto = params.model_copy(
        update={"dataset": params.dataset.model_copy(update={"gather_on_device": "auto"})}
    )
    data = WindowDataModule(tensors / "tensors", auto, torch.device("cpu"))
    assert next(iter(data.train_dataloader()))["label"].device.type == "cpu"


def test_dataset_replaces_nan(tensors: Path) -> None:
    data = ShardWindows(tensors / "tensors", "train", MODALITIES, GROUPS)
    shard = data.shards[0]
    path = tensors / "tensors" / shard["path"]
    payload = load_tensor_shard(path)
    payload["features"][:, :] = float("nan")
    torch.save(payload, path)
    fresh = ShardWindows(tensors / "tensors", "train", MODALITIES, GROUPS)
    index = int(np.flatnonzero(fresh.windows[:, 0].numpy() == 0)[0])
    assert all(torch.isfinite(v).all() for v in fresh[index]["inputs"].values())


def test_truncated_tensor_shard(tensors: Path) -> None:
    manifest = json.loads((tensors / "tensors" / "manifest.json").read_text())
    path = tensors / "tensors" / manifest["shards"][0]["path"]
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(HarfusionError, match=f"{path}: not a readable tensor shard"):
        ShardWindows(tensors / "tensors", manifest["shards"][0]["split"], MODALITIES, GROUPS)


def test_chunk_too_long_is_an_error_and_keeps_outputs(tensors: Path) -> None:
    before = (tensors / "tensors" / "manifest.json").read_text()
    with pytest.raises(HarfusionError, match="chunk_size=100000"):
        tensorize(tensors / "splits", tensors / "processed", tensors / "tensors", 100_000, 100_000)
    assert (tensors / "tensors" / "manifest.json").read_text() == before


def test_legacy_npy_fallback(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for split, n in (("train", 6), ("val", 2)):
        for modality, channels in (("imu_hand", 9), ("heart_rate", 1)):
            array = rng.normal(size=(n, 32, channels)).astype(np.float32)
            array[0, 0, 0] = np.nan
            np.save(tmp_path / f"{split}_{modality}.npy", array)
        np.save(tmp_path / f"{split}_labels.npy", rng.choice([4, 7, 12], size=n))
    data = open_windows(tmp_path, "val", ["imu_hand", "heart_rate"], GROUPS)
    assert isinstance(data, LegacyNpyWindows)
    assert len(data) == 2 and data.chunk_size == 32
    assert data.classes == sorted(
        {*np.load(tmp_path / "train_labels.npy"), *np.load(tmp_path / "val_labels.npy")}
    )
    assert torch.isfinite(data[0]["inputs"]["imu_hand"]).all()
    with pytest.raises(HarfusionError, match="imu_chest"):
        open_windows(tmp_path, "val", ["imu_chest"], GROUPS)


def test_no_data_at_all(tmp_path: Path) -> None:
    with pytest.raises(HarfusionError, match="dvc repro tensorize"):
        open_windows(tmp_path, "train", MODALITIES, GROUPS)


def test_value_beyond_float32_is_refused_naming_shard_and_column(tensors: Path) -> None:
    """A shard edited (or written by an older preprocess) never turns into inf in a tensor."""
    shard = (tensors / "splits" / "train.txt").read_text().splitlines()[0].rpartition(",")[0]
    lines = Path(shard).read_text().splitlines()
    fields = lines[5].split(",")
    fields[PROCESSED_COLUMNS.index("hand_acc16_x")] = "1e300"
    lines[5] = ",".join(fields)
    Path(shard).write_text("\n".join(lines) + "\n")
    out = tensors / "again"
    with pytest.raises(HarfusionError, match=rf"{shard}: hand_acc16_x: infinite or beyond float32"):
        tensorize(tensors / "splits", tensors / "processed", out, 64, 32)
    assert not out.exists()


def test_norm_stats_must_be_finite() -> None:
    mean, std = np.zeros(len(SENSOR_COLUMNS)), np.ones(len(SENSOR_COLUMNS))
    _check_finite_stats(mean, std)
    std[SENSOR_COLUMNS.index("chest_mag_y")] = np.nan
    with pytest.raises(HarfusionError, match=r"norm_stats\.json: chest_mag_y: .* not finite"):
        _check_finite_stats(mean, std)


def test_windows_do_not_depend_on_max_shard_mb(tmp_path: Path) -> None:
    """Windows span the part files of one shard: cutting at 0.2 MB lost windows at each cut."""
    for subject in (101, 102, 103, 104):
        write_recording(
            tmp_path / "raw" / "Protocol" / f"subject{subject}.dat",
            [(1, 1500), (0, 20), (4, 1200)],
            seed=subject,
        )
    params = SplitParams(strategy="subject", val_subjects=[103], test_subjects=[104])
    results = []
    for max_mb in (19.0, 0.2):
        out = tmp_path / f"mb{max_mb}"
        shards = preprocess(
            tmp_path / "raw",
            out / "processed",
            PreprocessParams(sessions=["Protocol"], max_shard_mb=max_mb),
        )
        write_splits(out / "processed", out / "splits", params)
        results.append(tensorize(out / "splits", out / "processed", out / "tensors", 128, 64))
        results[-1]["parts"] = len(shards)
    whole, cut = results
    assert cut.pop("parts") > whole.pop("parts") == 8
    assert cut == whole
    for shard in whole["shards"]:
        tensors = [
            load_tensor_shard(tmp_path / f"mb{mb}" / "tensors" / shard["path"])
            for mb in (19.0, 0.2)
        ]
        assert torch.equal(tensors[0]["features"], tensors[1]["features"])
        assert torch.equal(tensors[0]["timestamps"], tensors[1]["timestamps"])


def test_a_class_without_training_windows_is_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Running (5) only in subject 101, whose shard is held out, has no training window."""
    for subject in (101, 102, 103):
        segments = [(1, 300), (4, 300)] + ([(5, 300)] if subject == 101 else [])
        write_recording(tmp_path / "raw" / "Protocol" / f"subject{subject}.dat", segments, subject)
    preprocess(tmp_path / "raw", tmp_path / "processed", PreprocessParams(sessions=["Protocol"]))
    params = SplitParams(strategy="subject", val_subjects=[102], test_subjects=[101])
    write_splits(tmp_path / "processed", tmp_path / "splits", params)
    capsys.readouterr()
    tensorize(tmp_path / "splits", tmp_path / "processed", tmp_path / "tensors", 64, 64)
    err = capsys.readouterr().err
    assert "warning: no training window at chunk_size=64 for running (5)" in err
    assert "lying" not in err.split("warning")[1]
