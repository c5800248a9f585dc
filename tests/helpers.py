"""What several test files share: tiny params, a deep merge, raw recordings in the PAMAP2
format. Test files import from here, never from one another."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from harfusion.data.description import Inputs, load_description
from harfusion.data.recordings import read_recording
from harfusion.data.synthetic.pamap2_format import RAW_FIELDS
from harfusion.models.fusion import FusionModel, Shape, build_model
from harfusion.params import Params

# The smallest model that still has every layer the defaults have.
TINY_FRONT: dict[str, Any] = {"channels": [8, 16], "strides": [4, 4]}
TINY_MODEL: dict[str, Any] = {
    "embed_dim": 16,
    "front": {"motion": TINY_FRONT, "waveform": TINY_FRONT},
}
# In-process training on tiny windows (no DVC): a few seconds a fit.
TINY: dict[str, Any] = {
    "chunk_size": 64,
    "model": {"encoder": "cnn", **TINY_MODEL},
    # one member: tests of ensembles ask for more
    "train": {"max_epochs": 2, "accelerator": "cpu", "jitter_steps": 4, "ensemble": 1},
    "dataset": {"batch_size": 16},
}
# The whole DVC pipeline at the smallest size that still runs every stage (fresh-clone tests).
# Small enough for CI; nine subjects, so 70/15/15 is reachable with every activity in every split
# (with six, putting one shard of each activity in val and in test alone takes a third of rows).
SMOKE: dict[str, Any] = {
    "chunk_size": 128,
    "data": {"synthetic": {"seconds_per_activity": 5.0, "transient_seconds": 2.0}},
    "model": TINY_MODEL,
    # one member keeps the sweeps and queues of CI short; test_pipeline.py runs two
    "train": {"max_epochs": 2, "ensemble": 1},
    "evaluate": {"mc_samples": 3, "latency_batches": 3},
}


def merge(base: dict, override: dict) -> dict:
    """`override` laid over `base`, nested mappings key by key."""
    return {
        key: merge(base[key], value) if isinstance(value, dict) and key in base else value
        for key, value in override.items()
    } | {key: value for key, value in base.items() if key not in override}


def dat_line(
    timestamp: float, activity: int, rng: np.random.Generator, hr: float | None = None
) -> str:
    values = rng.normal(size=RAW_FIELDS - 3)
    quaternions = values.reshape(3, 17)[:, 13:]  # a view: orientation is a unit quaternion
    quaternions /= np.linalg.norm(quaternions, axis=1, keepdims=True)
    fields = [f"{timestamp:.2f}", str(activity), "NaN" if hr is None else f"{hr:g}"]
    return " ".join(fields + [f"{v:.6g}" for v in values])


def write_recording(
    path: Path,
    segments: list[tuple[int, int]],
    seed: int = 0,
    start: float = 5.0,
    step: float = 0.01,
    heart_rate: bool = True,
) -> Path:
    """Write `(activity, rows)` segments, a row every `step` s (100 Hz); heart rate every 10th
    row, or never."""
    rng = np.random.default_rng(seed)
    lines, t = [], start
    for activity, rows in segments:
        for i in range(rows):
            hr = 80.0 + activity if heart_rate and i % 10 == 0 else None
            lines.append(dat_line(t, activity, rng, hr))
            t += step
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


# PAMAP2, the dataset most tests build their data in (helpers below select its channels).
PAMAP2 = load_description("pamap2")
MODALITIES = PAMAP2.modality_names
RAW_COLUMNS = PAMAP2.columns  # a raw file's, in order
SENSOR_COLUMNS = PAMAP2.channels  # a shard's and a tensor's channels
PROCESSED_COLUMNS = PAMAP2.processed_columns
IMU_GROUPS = tuple(PAMAP2.modalities["imu_hand"].groups)


def pamap2_inputs(params: Params) -> Inputs:
    """What a model with `params` reads of PAMAP2."""
    return PAMAP2.inputs(params.modalities, params.dataset.channel_groups)


def pamap2_channels(modalities: Sequence[str], imu_groups: Sequence[str]) -> dict[str, list[str]]:
    """PAMAP2's columns per modality with `imu_groups` for the IMUs (heart rate: its one)."""
    return PAMAP2.inputs(list(modalities), {"motion": list(imu_groups)}).channel_names


def pamap2_model(params: Params, classes: int) -> FusionModel:
    """The fusion model `params` build over PAMAP2's channels."""
    inputs = pamap2_inputs(params)
    shape = Shape(inputs.channels, inputs.kinds, classes)
    return build_model(params.fusion, shape, params.model, params.heads)


def read_dat(path: Path) -> np.ndarray:
    """A PAMAP2 recording as one float64 array [rows, 54] in the file's column order (clock,
    label, channels), read by `recordings.read_recording`."""
    data = read_recording(path, PAMAP2)
    return np.column_stack([data.timestamps, data.labels.astype(np.float64), data.values])
