"""Dataset descriptions: the shipped PAMAP2 one is today's schema exactly, the MHEALTH one is the
published layout, every mistake in a description is named by file and key, and channel groups
are chosen per kind of signal."""

from __future__ import annotations

import re
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from harfusion.data.description import Description, load_description, shipped
from harfusion.errors import HarfusionError
from tests.datasets import docs_example

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "src" / "harfusion" / "data" / "datasets"


IMU_FIELDS = (
    "temperature_c",
    *(f"{group}_{axis}" for group in ("acc16", "acc6", "gyro", "mag") for axis in "xyz"),
    *(f"orient_{axis}" for axis in "wxyz"),
)


def test_pamap2_is_the_schema_the_pipeline_had() -> None:
    """The move must leave PAMAP2 results byte-identical: the columns and their order, the
    activities, modalities, default channel groups, rate and heart-rate preprocessing the code
    had before descriptions (issue 24)."""
    d = load_description("pamap2")
    imus = tuple(f"{imu}_{field}" for imu in ("hand", "chest", "ankle") for field in IMU_FIELDS)
    assert d.columns == ("timestamp_s", "activity_id", "heart_rate_bpm", *imus)
    assert d.channels == d.columns[2:]
    assert d.processed_columns == ("subject_id", "session", *d.columns)
    assert d.sampling_rate_hz == 100.0 and d.files.sessions == ["Protocol", "Optional"]
    assert d.modality_names == ("imu_hand", "imu_chest", "imu_ankle", "heart_rate")
    assert d.labels.ignore == {0: "transient"} and len(d.labels.activities) == 18
    assert d.bounds["hand_acc16_x"] == (-200.0, 200.0, "m/s²")
    heart = d.modalities["heart_rate"]
    assert heart.kind == "slow" and heart.preprocess.fill and heart.preprocess.median_window == 25
    inputs = d.inputs("all", {})
    assert inputs.channel_names["imu_ankle"] == [
        f"ankle_{group}_{axis}" for group in ("acc16", "gyro", "mag") for axis in "xyz"
    ]
    assert inputs.channel_names["heart_rate"] == ["heart_rate_bpm"]
    assert inputs.triads["imu_hand"] == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
    assert inputs.triads["heart_rate"] == []
    assert inputs.kinds == {
        "imu_hand": "motion",
        "imu_chest": "motion",
        "imu_ankle": "motion",
        "heart_rate": "slow",
    }


def test_pamap2_channel_groups_keep_the_listed_order() -> None:
    """`dataset.channel_groups: {motion: [...]}` reads the listed groups in the listed order,
    as the list of IMU groups did; heart rate (slow) keeps its own."""
    d = load_description("pamap2")
    chosen = d.inputs(["imu_chest", "heart_rate"], {"motion": ["mag", "temperature", "acc16"]})
    assert chosen.channel_names["imu_chest"] == [
        *(f"chest_mag_{a}" for a in "xyz"),
        "chest_temperature_c",
        *(f"chest_acc16_{a}" for a in "xyz"),
    ]
    assert chosen.triads["imu_chest"] == [[0, 1, 2], [4, 5, 6]]
    assert chosen.channel_names["heart_rate"] == ["heart_rate_bpm"]


MHEALTH_COLUMNS = (
    *(f"chest_acc_{a}" for a in "xyz"),
    "ecg_lead1",
    "ecg_lead2",
    *(f"ankle_{g}_{a}" for g in ("acc", "gyro", "mag") for a in "xyz"),
    *(f"arm_{g}_{a}" for g in ("acc", "gyro", "mag") for a in "xyz"),
    "activity_id",
)
MHEALTH_ACTIVITIES = {
    1: "Standing still",
    2: "Sitting and relaxing",
    3: "Lying down",
    4: "Walking",
    5: "Climbing stairs",
    6: "Waist bends forward",
    7: "Frontal elevation of arms",
    8: "Knees bending (crouching)",
    9: "Cycling",
    10: "Jogging",
    11: "Running",
    12: "Jump front & back",
}


def test_mhealth_is_the_published_layout() -> None:
    d = load_description("mhealth")
    assert d.columns == MHEALTH_COLUMNS  # 24: the 23 readings in the README's order, label last
    assert (d.format.separator, d.format.header) == ("\t", False)
    assert d.files.pattern == "mHealth_subject{subject}.log" and d.files.sessions is None
    assert d.clock.implicit and d.sampling_rate_hz == 50
    assert d.labels.activities == MHEALTH_ACTIVITIES and d.labels.ignore == {0: "null"}
    assert d.modality_names == ("imu_chest", "ecg", "imu_ankle", "imu_arm")
    assert {m: s.kind for m, s in d.modalities.items()}["ecg"] == "waveform"
    assert d.modalities["imu_arm"].placement.startswith("right lower arm")
    assert d.modalities["imu_ankle"].placement == "left ankle"
    text = d.model_dump_json()
    assert "imu_hand" not in text and "heart_rate" not in text  # it speaks MHEALTH only


def test_mhealth_channel_groups_per_kind() -> None:
    d = load_description("mhealth")
    every = d.modality_names
    assert d.groups_for(every) == {
        "imu_chest": ["acc"],
        "ecg": ["ecg"],
        "imu_ankle": ["acc", "gyro", "mag"],
        "imu_arm": ["acc", "gyro", "mag"],
    }
    chosen = d.groups_for(every, {"motion": ["gyro", "acc"]})
    assert chosen["imu_chest"] == ["acc"] and chosen["imu_arm"] == ["gyro", "acc"]
    assert d.channels_of("imu_arm", chosen["imu_arm"])[:2] == ["arm_gyro_x", "arm_gyro_y"]
    assert d.vector_triads("imu_ankle", ["acc", "gyro", "mag"]) == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
    assert d.vector_triads("ecg", ["ecg"]) == []
    with pytest.raises(HarfusionError, match=r"^dataset.channel_groups.motion: imu_chest has none"):
        d.groups_for(every, {"motion": ["gyro"]})
    assert d.groups_for(["imu_ankle"], {"motion": ["gyro"]}) == {"imu_ankle": ["gyro"]}
    with pytest.raises(HarfusionError, match=r"^dataset.channel_groups.slow: MHEALTH has no slow"):
        d.groups_for(every, {"slow": ["heart_rate"]})
    with pytest.raises(HarfusionError, match=r"no motion modality of MHEALTH has acc16 \(its"):
        d.groups_for(every, {"motion": ["acc16"]})


def _pamap2() -> dict[str, Any]:
    return yaml.safe_load((SHIPPED / "pamap2.yaml").read_text())


def _set(raw: dict, key: str, value: Any) -> dict:
    """`raw` with the value at dotted `key` replaced (None: the key removed)."""
    *path, last = key.split(".")
    node = raw
    for part in path:
        node = node[part]
    if value is None:
        del node[last]
    else:
        node[last] = value
    return raw


MISTAKES = [
    ("top-level typo", lambda r: r | {"sampling_rate": 100}, "sampling_rate: unknown key"),
    (
        "nested typo",
        lambda r: _set(r, "modalities.imu_hand.groups.acc16.bonds", [0, 1]),
        "modalities.imu_hand.groups.acc16.bonds: unknown key (misspelt?)",
    ),
    (
        "reversed bounds",
        lambda r: _set(r, "modalities.heart_rate.groups.heart_rate.bounds", [300, 20]),
        "modalities.heart_rate.groups.heart_rate.bounds: [low, high] needs low < high, got "
        "[300, 20]",
    ),
    (
        "one-channel vector",
        lambda r: _set(r, "modalities.heart_rate.groups.heart_rate.vector", True),
        "modalities.heart_rate.groups.heart_rate.vector: a 3-axis vector has 3 channels, not 1 "
        "(got True)",
    ),
    (
        "zero rate",
        lambda r: _set(r, "sampling_rate_hz", 0),
        "sampling_rate_hz: Input should be greater than 0 (got 0)",
    ),
    (
        "unknown kind",
        lambda r: _set(r, "modalities.heart_rate.kind", "fast"),
        "modalities.heart_rate.kind: Input should be 'motion', 'waveform' or 'slow' (got 'fast')",
    ),
    (
        "column list lacks a modality",
        lambda r: _set(r, "format.columns", r["format"]["columns"][:-1]),
        "format.columns: lacks imu_ankle",
    ),
    (
        "unknown column",
        lambda r: _set(r, "format.columns", [*r["format"]["columns"], "imu_wrist"]),
        "format.columns: imu_wrist is no modality, channel, clock or label column",
    ),
    (
        "channel twice",
        lambda r: _set(r, "format.columns", [*r["format"]["columns"], "hand_gyro_x"]),
        "format.columns: hand_gyro_x more than once",
    ),
    (
        "unknown default group",
        lambda r: _set(r, "modalities.heart_rate.default_groups", ["bpm"]),
        "modalities.heart_rate.default_groups: bpm not among the groups (heart_rate)",
    ),
    (
        "no subject in the pattern",
        lambda r: _set(r, "files.pattern", "{session}/subject.dat"),
        "files.pattern: the file name needs '{subject}' exactly once",
    ),
    (
        "a deeper folder",
        lambda r: _set(r, "files.pattern", "{session}/raw/subject{subject}.dat"),
        "files.pattern: the only folder a pattern may have is a leading '{session}/'",
    ),
    (
        "sessions without their folder",
        lambda r: _set(r, "files.pattern", "subject{subject}.dat"),
        "files.sessions: the pattern has no '{session}/' folder",
    ),
    (
        "session folder without sessions",
        lambda r: _set(r, "files.sessions", None),
        "files.sessions: a '{session}/' pattern needs the session folders listed",
    ),
    (
        "an activity id that is no number",
        lambda r: _set(r, "labels.activities", {**r["labels"]["activities"], "walk": "x"}),
        "labels.activities.walk: as a key: Input should be a valid integer",
    ),
    (
        "an ignored id that is an activity",
        lambda r: _set(r, "labels.ignore", {0: "transient", 4: "walking around"}),
        "labels.ignore: [4] are activities too",
    ),
    (
        "misspelt implicit clock",
        lambda r: _set(r, "clock", "implict"),
        "clock: write `clock: implicit` or `clock: {column: <name>, unit: s}`",
    ),
    (
        "two modalities' channels clash",
        lambda r: _set(r, "modalities.imu_chest.prefix", "hand_"),
        "modalities.imu_chest.groups.temperature.channels: hand_temperature_c is also a channel "
        "of imu_hand",
    ),
    (
        "a median over a minute",
        lambda r: _set(r, "modalities.heart_rate.preprocess.median_window", 6001),
        "modalities.heart_rate.preprocess.median_window: 6001 samples is over a minute",
    ),
    (
        "a letter as separator",
        lambda r: _set(r, "format.separator", "a"),
        "format.separator: 'a' cannot separate numbers",
    ),
    (
        "a modality name with a space",
        lambda r: _set(r, "modalities", {"imu hand": r["modalities"]["imu_hand"]}),
        "modalities.imu hand: as a key: must be letters, digits and _, starting with a letter",
    ),
]


@pytest.mark.parametrize(
    ("mutate", "expected"), [m[1:] for m in MISTAKES], ids=[m[0] for m in MISTAKES]
)
def test_a_mistake_names_the_file_and_the_key(tmp_path: Path, mutate, expected: str) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(mutate(_pamap2()), allow_unicode=True, sort_keys=False))
    with pytest.raises(HarfusionError) as info:
        load_description(path)
    lines = str(info.value).splitlines()
    assert all(line.startswith(f"{path}: ") for line in lines), lines
    assert any(line.startswith(f"{path}: {expected}") for line in lines), lines


def test_unreadable_descriptions_and_unknown_names(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(HarfusionError, match=rf"^{re.escape(str(bad))}: not valid YAML"):
        load_description(bad)
    bad.write_text("- a list\n")
    with pytest.raises(HarfusionError, match=r"expected a mapping of name, files, format"):
        load_description(bad)
    with pytest.raises(HarfusionError, match=r"^data.dataset: 'mhelth' is not a shipped dataset "):
        load_description("mhelth")
    missing = tmp_path / "none.yaml"
    with pytest.raises(HarfusionError, match=rf"^data.dataset: {missing}: no such description"):
        load_description(missing)
    assert shipped() == ["mhealth", "pamap2"]
    assert load_description(SHIPPED / "mhealth.yaml") == load_description("mhealth")


def test_the_documented_example_is_a_valid_description(tmp_path: Path) -> None:
    path = tmp_path / "wrist_study.yaml"
    path.write_text(docs_example())
    d = load_description(path)
    assert d.modality_names == ("imu_wrist", "heart_rate")
    assert d.channels == (*(f"wrist_{g}_{a}" for g in ("acc", "gyro") for a in "xyz"), "hr_bpm")
    assert d.clock.unit == "ms" and d.format.header and d.format.missing == ""
    assert d.files.sessions == ["lab", "home"]


def test_the_shipped_descriptions_are_in_the_wheel(tmp_path: Path) -> None:
    """Package data travels only if the build includes it: build the wheel and load from it."""
    build = ["uv", "build", "--wheel", "--offline", "--quiet", "--out-dir", str(tmp_path)]
    subprocess.run(build, cwd=ROOT, check=True, timeout=120)
    (wheel,) = tmp_path.glob("harfusion-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        for name in ("pamap2", "mhealth"):
            raw = yaml.safe_load(archive.read(f"harfusion/data/datasets/{name}.yaml"))
            assert Description.model_validate(raw) == load_description(name)
