import json
import re
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
from harfusion.data.preprocess import preprocess
from harfusion.data.splits import write_splits
from harfusion.data.tensorize import _check_finite_stats, tensorize
from harfusion.data.windows import window_starts
from harfusion.errors import HarfusionError
from harfusion.params import Params, PreprocessParams, SplitParams
from harfusion.training.datamodule import WindowDataModule
from tests.helpers import (
    MODALITIES,
    PAMAP2,
    PROCESSED_COLUMNS,
    SENSOR_COLUMNS,
    pamap2_channels,
    write_recording,
)

GROUPS = ["acc16", "gyro", "mag"]


def test_window_starts_respect_gaps() -> None:
    t = np.concatenate([np.arange(100) * 0.01, 5 + np.arange(50) * 0.01])
    starts = window_starts(t, 100.0, chunk_size=40, stride=20)
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
    data = ShardWindows(tensors / "tensors", "train", pamap2_channels(MODALITIES, GROUPS))
    sample = data[0]
    assert {m: v.shape for m, v in sample["inputs"].items()} == {
        "imu_hand": (64, 9),
        "imu_chest": (64, 9),
        "imu_ankle": (64, 9),
        "heart_rate": (64, 1),
    }
    assert sample["mask"].tolist() == [True] * 4
    assert 0 <= sample["label"] < 3
    lazy = ShardWindows(
        tensors / "tensors", "train", pamap2_channels(MODALITIES, GROUPS), prefetch_shards=False
    )
    for modality in MODALITIES:
        assert torch.equal(lazy[3]["inputs"][modality], data[3]["inputs"][modality])
    only = ShardWindows(
        tensors / "tensors", "val", pamap2_channels(["imu_ankle"], ["temperature", "acc6"])
    )
    assert only[0]["inputs"]["imu_ankle"].shape == (64, 4)


def test_batched_fetch_equals_single_windows(tensors: Path) -> None:
    """The loader's one-gather batches must hold exactly the windows `data[i]` gives."""
    data = ShardWindows(tensors / "tensors", "train", pamap2_channels(MODALITIES, GROUPS))
    lazy = ShardWindows(
        tensors / "tensors", "train", pamap2_channels(MODALITIES, GROUPS), prefetch_shards=False
    )
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
    data = ShardWindows(tensors / "tensors", "train", pamap2_channels(MODALITIES, GROUPS)).to(
        torch.device("meta")
    )
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
    data = ShardWindows(tensors / "tensors", "train", pamap2_channels(MODALITIES, GROUPS))
    shard = data.shards[0]
    path = tensors / "tensors" / shard["path"]
    payload = load_tensor_shard(path)
    payload["features"][:, :] = float("nan")
    torch.save(payload, path)
    fresh = ShardWindows(tensors / "tensors", "train", pamap2_channels(MODALITIES, GROUPS))
    index = int(np.flatnonzero(fresh.windows[:, 0].numpy() == 0)[0])
    assert all(torch.isfinite(v).all() for v in fresh[index]["inputs"].values())


def test_truncated_tensor_shard(tensors: Path) -> None:
    manifest = json.loads((tensors / "tensors" / "manifest.json").read_text())
    path = tensors / "tensors" / manifest["shards"][0]["path"]
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(HarfusionError, match=f"{path}: not a readable tensor shard"):
        ShardWindows(
            tensors / "tensors", manifest["shards"][0]["split"], pamap2_channels(MODALITIES, GROUPS)
        )


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
    data = open_windows(tmp_path, "val", pamap2_channels(["imu_hand", "heart_rate"], GROUPS))
    assert isinstance(data, LegacyNpyWindows)
    assert len(data) == 2 and data.chunk_size == 32
    assert data.classes == sorted(
        {*np.load(tmp_path / "train_labels.npy"), *np.load(tmp_path / "val_labels.npy")}
    )
    assert torch.isfinite(data[0]["inputs"]["imu_hand"]).all()
    with pytest.raises(HarfusionError, match="imu_chest"):
        open_windows(tmp_path, "val", pamap2_channels(["imu_chest"], GROUPS))


def test_no_data_at_all(tmp_path: Path) -> None:
    with pytest.raises(HarfusionError, match="dvc repro tensorize"):
        open_windows(tmp_path, "train", pamap2_channels(MODALITIES, GROUPS))


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
    _check_finite_stats(mean, std, SENSOR_COLUMNS)
    std[SENSOR_COLUMNS.index("chest_mag_y")] = np.nan
    with pytest.raises(HarfusionError, match=r"norm_stats\.json: chest_mag_y: .* not finite"):
        _check_finite_stats(mean, std, SENSOR_COLUMNS)


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
            PAMAP2,
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
    preprocess(
        tmp_path / "raw", tmp_path / "processed", PreprocessParams(sessions=["Protocol"]), PAMAP2
    )
    params = SplitParams(strategy="subject", val_subjects=[102], test_subjects=[101])
    write_splits(tmp_path / "processed", tmp_path / "splits", params)
    capsys.readouterr()
    tensorize(tmp_path / "splits", tmp_path / "processed", tmp_path / "tensors", 64, 64)
    err = capsys.readouterr().err
    assert "warning: no training window at chunk_size=64 for running (5)" in err
    assert "lying" not in err.split("warning")[1]


def _pipeline(tmp_path: Path, chunk: int = 64, **split: object) -> dict:
    """preprocess → split (by subject: val 102, test 103 unless told) → tensorize of `raw/`."""
    sessions = [s for s in ("Protocol", "Optional") if (tmp_path / "raw" / s).is_dir()]
    preprocess(
        tmp_path / "raw", tmp_path / "processed", PreprocessParams(sessions=sessions), PAMAP2
    )
    params = SplitParams.model_validate(
        {"strategy": "subject", "val_subjects": [102], "test_subjects": [103]} | split
    )
    write_splits(tmp_path / "processed", tmp_path / "splits", params)
    return tensorize(
        tmp_path / "splits", tmp_path / "processed", tmp_path / "tensors", chunk, chunk
    )


def _blank(path: Path, columns: slice, rows: range) -> None:
    """Set raw columns to NaN on some rows of a recording (a sensor that sent nothing)."""
    lines = path.read_text().splitlines()
    for row in rows:
        fields = lines[row].split(" ")
        fields[columns] = ["NaN"] * len(fields[columns])
        lines[row] = " ".join(fields)
    path.write_text("\n".join(lines) + "\n")


def test_windows_never_span_two_sessions(tmp_path: Path) -> None:
    """Protocol and Optional recordings of one subject whose clocks happen to continue each
    other and that share an activity: windows used to be cut across the two."""
    raw = tmp_path / "raw"
    write_recording(raw / "Protocol" / "subject101.dat", [(1, 300)], seed=1, start=5.0)
    write_recording(raw / "Optional" / "subject101.dat", [(1, 300)], seed=2, start=8.0)
    for subject in (102, 103):
        write_recording(raw / "Protocol" / f"subject{subject}.dat", [(1, 300)], seed=subject)
    manifest = _pipeline(tmp_path)
    shard = next(i for i, s in enumerate(manifest["shards"]) if s["subject"] == 101)
    assert manifest["shards"][shard]["rows"] == 600
    starts = [start for index, start in manifest["windows"]["train"] if index == shard]
    assert starts == [0, 64, 128, 192, 300, 364, 428, 492]  # none across row 300
    timestamps = load_tensor_shard(tmp_path / "tensors" / manifest["shards"][shard]["path"])
    assert np.all(np.diff(timestamps["timestamps"].numpy()) > 0)  # one clock, contiguous


@pytest.fixture
def sparse(tmp_path: Path) -> Path:
    """Subject 104 never recorded heart rate; subject 101's hand IMU sent nothing for most of
    its walking, and dropped a few packets while lying."""
    raw = tmp_path / "raw" / "Protocol"
    for subject in (101, 102, 103, 104):
        write_recording(
            raw / f"subject{subject}.dat",
            [(1, 256), (4, 256)],
            seed=subject,
            heart_rate=subject != 104,
        )
    hand = slice(3, 20)  # the 17 hand IMU columns of a raw row
    _blank(raw / "subject101.dat", hand, range(256 + 10, 256 + 200))  # walking: windows 0-2
    _blank(raw / "subject101.dat", hand, range(5, 25))  # lying: 20 of 64 samples in window 0
    return tmp_path


def test_windows_without_a_modality_are_listed_counted_and_named(
    sparse: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = _pipeline(sparse)
    err = capsys.readouterr().err
    counts = {
        (row["subject"], row["activity"], row["modality"]): (row["windows"], row["of"])
        for row in manifest["absent_windows"]
    }
    assert counts == {
        (104, 1, "heart_rate"): (4, 4),
        (104, 4, "heart_rate"): (4, 4),
        (101, 4, "imu_hand"): (3, 4),  # windows 0-2 of walking; 3 is whole
    }
    assert "heart_rate missing in more than 50% of the samples of 8 windows" in err
    assert "subject 104 (lying 4/4, walking 4/4)" in err
    assert "imu_hand missing" in err and "subject 101 (walking 3/4)" in err
    train = manifest["windows"]["train"]
    walking = next(
        i for i, s in enumerate(manifest["shards"]) if (s["subject"], s["activity"]) == (101, 4)
    )
    listed = sorted(manifest["absent"]["train"]["imu_hand"])
    assert [train[i] for i in listed] == [[walking, 0], [walking, 64], [walking, 128]]


@pytest.mark.parametrize("prefetch", [True, False])
def test_dataset_masks_a_modality_its_window_lacks(sparse: Path, prefetch: bool) -> None:
    """As modality dropout does: mask False, rather than zeros posing as a reading."""
    manifest = _pipeline(sparse)
    data = ShardWindows(sparse / "tensors", "train", pamap2_channels(MODALITIES, GROUPS), prefetch)
    subjects = [manifest["shards"][shard]["subject"] for shard, _ in manifest["windows"]["train"]]
    absent = {
        (position, modality)
        for modality, positions in manifest["absent"]["train"].items()
        for position in positions
    }
    expected = torch.tensor([[(i, m) not in absent for m in MODALITIES] for i in range(len(data))])
    assert [subjects[i] for i in range(len(data)) if not expected[i, 3]] == [104] * 8
    assert not expected[:, 0].all() and expected[:, 1:3].all()
    singles = torch.stack([data[i]["mask"] for i in range(len(data))])
    assert torch.equal(singles, expected)
    batch = collate_windows(data.__getitems__(list(range(len(data)))))
    assert torch.equal(batch["mask"], expected)
    if prefetch:  # the rows on the GPU (meta stands in): the masks come from there too
        on_device = data.to(torch.device("meta")).__getitems__([0, 1])
        assert isinstance(on_device, dict) and on_device["mask"].device.type == "meta"


@pytest.mark.parametrize("prefetch", [True, False])
def test_a_shard_of_other_length_than_its_manifest_entry_is_named(
    tensors: Path, prefetch: bool
) -> None:
    """A row-truncated shard (a stage run outside DVC): the prefetched rows are one
    concatenation, so every window after it was read from the next shard's rows."""
    data = ShardWindows(tensors / "tensors", "train", pamap2_channels(MODALITIES, GROUPS))
    shard = int(data.windows[0, 0])
    path = tensors / "tensors" / data.shards[shard]["path"]
    payload = load_tensor_shard(path)
    payload["features"] = payload["features"][:-5]
    torch.save(payload, path)
    rows = data.shards[shard]["rows"]
    with pytest.raises(HarfusionError, match=rf"{path}: holds features of shape \({rows - 5}, "):
        again = ShardWindows(
            tensors / "tensors", "train", pamap2_channels(MODALITIES, GROUPS), prefetch
        )
        again[0]


def test_a_window_outside_its_shard_is_refused(tensors: Path) -> None:
    path = tensors / "tensors" / "manifest.json"
    manifest = json.loads(path.read_text())
    shard, _ = manifest["windows"]["val"][0]
    manifest["windows"]["val"][0] = [shard, manifest["shards"][shard]["rows"] - 10]
    path.write_text(json.dumps(manifest))
    with pytest.raises(HarfusionError, match=r"manifest\.json: window .* is not inside"):
        ShardWindows(tensors / "tensors", "val", pamap2_channels(MODALITIES, GROUPS))


def _subjects(tmp_path: Path, odd: dict) -> None:
    """Subjects 101-103 at 100 Hz, and 104 written with `odd` (write_recording's options)."""
    raw = tmp_path / "raw" / "Protocol"
    for subject in (101, 102, 103):
        write_recording(raw / f"subject{subject}.dat", [(1, 300), (4, 300)], seed=subject)
    write_recording(raw / "subject104.dat", [(1, 300), (4, 300)], seed=104, **odd)


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        ("duplicated", r"300 of 600 rows repeat or precede the previous row's timestamp"),
        ("constant", r"299 of 300 rows repeat .*a clock that does not advance"),
        ("50hz", r"timestamps advance 0\.02 per row \(50 Hz\); windows need rows 0\.01 s apart"),
        ("milliseconds", r"timestamps advance 10 per row; a millisecond clock\?"),
    ],
)
def test_a_subject_without_a_window_is_named_with_the_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], damage: str, reason: str
) -> None:
    """These subjects used to yield no window without a word."""
    odd = {"50hz": {"step": 0.02}, "milliseconds": {"step": 10.0, "start": 5000.0}}
    _subjects(tmp_path, odd.get(damage, {}))
    path = tmp_path / "raw" / "Protocol" / "subject104.dat"
    lines = path.read_text().splitlines()
    if damage == "duplicated":  # every row twice: 300 distinct instants per activity
        lines = [line for line in lines[:300] for _ in range(2)]
        lines = lines + [line.replace(" 1 ", " 4 ", 1) for line in lines]
    elif damage == "constant":
        lines = ["5.00 " + line.split(" ", 1)[1] for line in lines]
    path.write_text("\n".join(lines) + "\n")
    manifest = _pipeline(tmp_path)
    assert 104 not in {manifest["shards"][s]["subject"] for s, _ in manifest["windows"]["train"]}
    warnings = [line for line in capsys.readouterr().err.splitlines() if "subject 104" in line]
    assert len(warnings) == 1 and re.search(reason, warnings[0]), warnings
    assert warnings[0].startswith("tensorize: warning: subject 104 yields no window: ")


@pytest.mark.parametrize(
    ("step", "hint"),
    [(0.02, r"0\.02 per row \(50 Hz\)"), (10.0, "a millisecond clock")],
)
def test_a_recording_not_at_100_hz_seconds_gets_the_measured_rate(
    tmp_path: Path, step: float, hint: str
) -> None:
    """Every recording at 50 Hz, or on a millisecond clock: the error said to use a smaller
    chunk_size or more data."""
    raw = tmp_path / "raw" / "Protocol"
    for subject in (101, 102, 103):
        write_recording(raw / f"subject{subject}.dat", [(1, 300)], seed=subject, step=step)
    with pytest.raises(HarfusionError, match=hint) as info:
        _pipeline(tmp_path)
    assert "smaller chunk_size" not in str(info.value)
    assert str(info.value).startswith("chunk_size=64: no window fits in the train, val, test")


def test_tensors_without_a_modalitys_column_are_named(tensors: Path) -> None:
    """A KeyError traceback before; what a model meets in tensors of another layout."""
    path = tensors / "tensors" / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["columns"] = [c for c in manifest["columns"] if c != "hand_gyro_y"]
    path.write_text(json.dumps(manifest))
    with pytest.raises(HarfusionError, match="no column hand_gyro_y for modality imu_hand"):
        ShardWindows(tensors / "tensors", "val", pamap2_channels(MODALITIES, GROUPS))
