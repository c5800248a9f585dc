"""The PAMAP2 raw format: column names, activities, modalities and IMU channel groups.

Everything that knows the layout of the 54 raw columns lives here, so the reader, the synthetic
generator, the preprocessor and the loader cannot disagree about it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, get_args

RAW_FIELDS = 54
SAMPLE_RATE_HZ = 100.0
TRANSIENT_ACTIVITY = 0
IMUS = ("hand", "chest", "ankle")

ACTIVITY_NAMES: dict[int, str] = {
    0: "transient",
    1: "lying",
    2: "sitting",
    3: "standing",
    4: "walking",
    5: "running",
    6: "cycling",
    7: "Nordic walking",
    9: "watching TV",
    10: "computer work",
    11: "car driving",
    12: "ascending stairs",
    13: "descending stairs",
    16: "vacuum cleaning",
    17: "ironing",
    18: "folding laundry",
    19: "house cleaning",
    20: "playing soccer",
    24: "rope jumping",
}
PROTOCOL_ACTIVITIES = (1, 2, 3, 4, 5, 6, 7, 12, 13, 16, 17, 24)
OPTIONAL_ACTIVITIES = (9, 10, 11, 18, 19, 20)
SESSIONS = ("Protocol", "Optional")
SUBJECTS = tuple(range(101, 110))

# Per IMU: 17 columns in this order. Orientation is invalid in this collection and acc6 saturates.
ChannelGroup = Literal["temperature", "acc16", "acc6", "gyro", "mag", "orientation"]
IMU_CHANNEL_GROUPS: dict[str, tuple[str, ...]] = {
    "temperature": ("temperature_c",),
    "acc16": ("acc16_x", "acc16_y", "acc16_z"),
    "acc6": ("acc6_x", "acc6_y", "acc6_z"),
    "gyro": ("gyro_x", "gyro_y", "gyro_z"),
    "mag": ("mag_x", "mag_y", "mag_z"),
    "orientation": ("orient_w", "orient_x", "orient_y", "orient_z"),
}
IMU_FIELDS = tuple(name for group in IMU_CHANNEL_GROUPS.values() for name in group)
DEFAULT_CHANNEL_GROUPS: tuple[ChannelGroup, ...] = ("acc16", "gyro", "mag")

RAW_COLUMNS: tuple[str, ...] = (
    "timestamp_s",
    "activity_id",
    "heart_rate_bpm",
    *(f"{imu}_{field}" for imu in IMUS for field in IMU_FIELDS),
)
PROCESSED_COLUMNS: tuple[str, ...] = ("subject_id", "session", *RAW_COLUMNS)
# Every numeric column a model may read, in the order tensor shards store them.
SENSOR_COLUMNS: tuple[str, ...] = RAW_COLUMNS[2:]

Modality = Literal["imu_hand", "imu_chest", "imu_ankle", "heart_rate"]
MODALITIES: tuple[Modality, ...] = get_args(Modality)
MODALITY_LABELS: dict[str, str] = dict(
    zip(MODALITIES, ("IMU hand", "IMU chest", "IMU ankle", "heart rate"), strict=True)
)

# Physical bounds (low, high, unit) of every field: what these sensors can report, with a wide
# margin, so a value outside is a corrupt file (a 1e300 once blanked a channel through its
# normalisation std), never a hard movement. Real PAMAP2 reaches ±159 m/s² on the ±16 g
# accelerometer (16 g = 157), ±62 on the saturating ±6 g one, 28 rad/s, 164 µT, 24–38 °C and
# 57–202 bpm. Preprocess rejects rather than clips: clipping would invent a reading.
IMU_FIELD_BOUNDS: dict[str, tuple[float, float, str]] = {
    "temperature_c": (-40.0, 85.0, "°C"),  # the operating range of MEMS IMUs
    **dict.fromkeys(("acc16_x", "acc16_y", "acc16_z"), (-200.0, 200.0, "m/s²")),
    **dict.fromkeys(("acc6_x", "acc6_y", "acc6_z"), (-100.0, 100.0, "m/s²")),
    # MEMS gyroscopes reach ±4000 °/s (70 rad/s), magnetometers ±4900 µT (Earth: 25–65 µT).
    **dict.fromkeys(("gyro_x", "gyro_y", "gyro_z"), (-100.0, 100.0, "rad/s")),
    **dict.fromkeys(("mag_x", "mag_y", "mag_z"), (-5000.0, 5000.0, "µT")),
    # Components of a unit quaternion; the margin covers rounding to 6 digits.
    **dict.fromkeys(("orient_w", "orient_x", "orient_y", "orient_z"), (-1.01, 1.01, "")),
}
FIELD_BOUNDS: dict[str, tuple[float, float, str]] = {
    "timestamp_s": (0.0, 1e10, "s"),  # seconds since the recording's start, or a Unix time
    "activity_id": (min(ACTIVITY_NAMES), max(ACTIVITY_NAMES), ""),
    "heart_rate_bpm": (20.0, 300.0, "bpm"),
    **{f"{imu}_{field}": IMU_FIELD_BOUNDS[field] for imu in IMUS for field in IMU_FIELDS},
}


def activity_name(activity_id: int) -> str:
    return ACTIVITY_NAMES.get(activity_id, f"activity {activity_id}")


def modality_columns(modality: str, channel_groups: Sequence[str]) -> list[str]:
    """Sensor columns of one modality (`imu_hand → hand_*`, `heart_rate → heart_rate_bpm`)."""
    if modality == "heart_rate":
        return ["heart_rate_bpm"]
    if modality not in MODALITIES:
        raise ValueError(f"unknown modality {modality!r}; expected one of {', '.join(MODALITIES)}")
    imu = modality.removeprefix("imu_")
    return [f"{imu}_{field}" for group in channel_groups for field in IMU_CHANNEL_GROUPS[group]]


VECTOR_GROUPS = ("acc16", "acc6", "gyro", "mag")  # x, y, z in the sensor's own frame


def imu_triads(channel_groups: Sequence[str]) -> list[list[int]]:
    """Positions, among one IMU modality's channels (`modality_columns` order), of each 3-axis
    group: the columns a rotation of the sensor turns together."""
    triads, offset = [], 0
    for group in channel_groups:
        if group in VECTOR_GROUPS:
            triads.append([offset, offset + 1, offset + 2])
        offset += len(IMU_CHANNEL_GROUPS[group])
    return triads
