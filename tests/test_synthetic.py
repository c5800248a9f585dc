"""The synthetic PAMAP2 generator: raw format, determinism, coverage and a little physics."""

from __future__ import annotations

import re
from itertools import combinations
from pathlib import Path

import numpy as np
import pytest

from harfusion.data.dat_writer import format_rows
from harfusion.data.synthetic.cohort import plan
from harfusion.data.synthetic.generate import generate
from harfusion.data.synthetic.motion import MAX_TERMS
from harfusion.data.synthetic.pamap2_format import (
    OPTIONAL_ACTIVITIES,
    PROTOCOL_ACTIVITIES,
    RAW_COLUMNS,
    RAW_FIELDS,
    TRANSIENT_ACTIVITY,
)
from harfusion.data.synthetic.profiles import PROFILES
from harfusion.params import SyntheticParams
from tests.helpers import PAMAP2, read_dat

ACTIVITY_NAMES = PAMAP2.labels.known
FIELD_BOUNDS = PAMAP2.bounds | {"activity_id": (0.0, 24.0, "")}
EXCERPT = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "pamap2_excerpt.dat"
# How `%.6g` prints: no leading zeros, no trailing fractional zeros, a two-digit exponent.
TOKEN = re.compile(r"NaN|-?(0|[1-9]\d*)(\.\d*[1-9])?(e[-+]\d\d)?")
LINE = re.compile(rf"(?:(?:{TOKEN.pattern}) ){{{RAW_FIELDS - 1}}}(?:{TOKEN.pattern})")
G6 = 6 * 9.81
SMALL = SyntheticParams(
    subjects=[101, 102, 103],
    seconds_per_activity=5.0,
    transient_seconds=2.0,
    packet_drop_rate=0.01,
)
SEED = 7


def significant_digits(token: str) -> int:
    mantissa = token.lstrip("-").split("e")[0].replace(".", "")
    return len(mantissa.lstrip("0")) or 1


def parse(path: Path) -> np.ndarray:
    return np.array(path.read_text().split(), dtype=np.float64).reshape(-1, RAW_FIELDS)


def block(data: np.ndarray, imu: int, first: int, count: int) -> np.ndarray:
    """Columns `first..first+count` (0-based within the 17) of IMU 0 hand, 1 chest, 2 ankle."""
    start = 3 + 17 * imu + first
    return data[:, start : start + count]


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    out = tmp_path_factory.mktemp("synthetic") / "raw"
    return out, generate(SMALL, SEED, out)


@pytest.fixture(scope="module")
def tables(generated: tuple[Path, dict[str, int]]) -> dict[str, np.ndarray]:
    out, summary = generated
    return {name: parse(out / name) for name in summary}


@pytest.fixture(scope="module")
def physics(tmp_path_factory: pytest.TempPathFactory) -> np.ndarray:
    """One subject with bouts long enough for heart rate to settle."""
    params = SyntheticParams(subjects=[101], seconds_per_activity=30.0, optional_sessions=False)
    out = tmp_path_factory.mktemp("physics") / "raw"
    generate(params, SEED, out)
    data = parse(out / "Protocol/subject101.dat")
    assert {1, 3, 5, 6, 16, 17} <= set(data[:, 1].astype(int).tolist())
    return data


@pytest.fixture(scope="module")
def everything(tables: dict[str, np.ndarray]) -> np.ndarray:
    return np.concatenate(list(tables.values()))


def test_writes_protocol_and_optional_files(generated: tuple[Path, dict[str, int]]) -> None:
    out, summary = generated
    protocol = sorted(p.name for p in (out / "Protocol").iterdir())
    assert protocol == ["subject101.dat", "subject102.dat", "subject103.dat"]
    assert "Optional/subject101.dat" in summary  # 101 has an Optional session, like the real one
    assert sorted(summary) == sorted(str(p.relative_to(out)) for p in out.rglob("*.dat"))
    for name, rows in summary.items():
        assert (out / name).read_bytes().count(b"\n") == rows
    assert not list(out.parent.glob(".*"))  # no temporary left beside the output


def test_every_line_has_54_tokens_in_the_pamap2_style(
    generated: tuple[Path, dict[str, int]],
) -> None:
    out, summary = generated
    for name in summary:
        raw = (out / name).read_bytes()
        assert raw.endswith(b"\n") and b"\r" not in raw and b"\n\n" not in raw
        lines = raw.decode("ascii").splitlines()
        assert all(LINE.fullmatch(line) for line in lines)
        for line in lines[::7]:
            assert all(significant_digits(t) <= 6 for t in line.split(" ")), line


def test_token_style_matches_the_real_excerpt(generated: tuple[Path, dict[str, int]]) -> None:
    if not EXCERPT.exists():
        pytest.skip("../shared/fixtures is not present in a user's clone")
    real = [line.split(" ") for line in EXCERPT.read_text().splitlines()]
    ours = [line.split(" ") for line in (generated[0] / "Protocol/subject101.dat").open()]
    ours = [[t.rstrip("\n") for t in line] for line in ours[:2000]]
    assert {len(line) for line in real} == {len(line) for line in ours} == {RAW_FIELDS}
    for rows in (real, ours):
        tokens = [t for line in rows for t in line]
        assert all(TOKEN.fullmatch(t) and significant_digits(t) <= 6 for t in tokens)
        assert all(re.fullmatch(r"\d+(\.\d\d?)?", line[0]) for line in rows)  # 0.01 s clock
        assert all(re.fullmatch(r"\d+", line[1]) for line in rows)  # activity id
        assert all(re.fullmatch(r"NaN|\d+", line[2]) for line in rows)  # whole bpm
        temperatures = [float(line[i]) for line in rows for i in (3, 20, 37) if line[i] != "NaN"]
        assert all(t * 16 == round(t * 16) and 25 < t < 40 for t in temperatures)  # 1/16 °C


def test_timestamps_step_by_one_hundredth(tables: dict[str, np.ndarray]) -> None:
    for data in tables.values():
        assert 3.0 <= data[0, 0] <= 10.0
        np.testing.assert_allclose(np.diff(data[:, 0]), 0.01, atol=1e-6)


def test_activities_are_pamap2_ids_with_transients(tables: dict[str, np.ndarray]) -> None:
    allowed = {"Protocol": set(PROTOCOL_ACTIVITIES), "Optional": set(OPTIONAL_ACTIVITIES)}
    for name, data in tables.items():
        ids = set(data[:, 1].astype(int).tolist())
        assert TRANSIENT_ACTIVITY in ids
        assert ids - {TRANSIENT_ACTIVITY} <= allowed[name.split("/")[0]]
        assert ids <= set(ACTIVITY_NAMES)
        assert data[0, 1] == data[-1, 1] == TRANSIENT_ACTIVITY


def test_heart_rate_is_a_sparse_whole_number_series(everything: np.ndarray) -> None:
    hr = everything[:, 2]
    assert 0.85 <= np.isnan(hr).mean() <= 0.95
    values = hr[~np.isnan(hr)]
    assert np.all(values == np.round(values))
    assert values.min() >= 40 and values.max() <= 220


def test_packet_drops_blank_whole_imu_blocks(everything: np.ndarray) -> None:
    for imu in range(3):
        missing = np.isnan(block(everything, imu, 0, 17))
        whole = missing.all(axis=1)
        assert whole.any(), f"IMU {imu} never dropped a packet"
        assert np.array_equal(missing.any(axis=1), whole), "a block was only partly NaN"
    assert not np.isnan(everything[:, :2]).any()


def test_acc6_saturates_while_acc16_does_not(everything: np.ndarray) -> None:
    acc6 = np.concatenate([block(everything, imu, 4, 3) for imu in range(3)], axis=1)
    acc16 = np.concatenate([block(everything, imu, 1, 3) for imu in range(3)], axis=1)
    assert np.nanmax(np.abs(acc6)) <= G6 + 1e-9
    vigorous = np.isin(everything[:, 1], [5, 24])
    assert np.nanmax(np.abs(acc16[vigorous])) > G6
    assert np.nanmax(np.abs(acc16)) <= 16 * 9.81 + 1e-9


def test_same_seed_same_bytes_other_seed_other_bytes(
    generated: tuple[Path, dict[str, int]], tmp_path: Path
) -> None:
    """Also across worker counts: the parallel writer must not change a byte."""
    out, summary = generated
    assert generate(SMALL, SEED, tmp_path / "again", workers=2) == summary
    for name in summary:
        assert (tmp_path / "again" / name).read_bytes() == (out / name).read_bytes()
    generate(SMALL, SEED + 1, tmp_path / "other")
    name = "Protocol/subject101.dat"
    assert (tmp_path / "other" / name).read_bytes() != (out / name).read_bytes()


def test_a_subject_does_not_depend_on_the_others(
    generated: tuple[Path, dict[str, int]], tmp_path: Path
) -> None:
    alone = SMALL.model_copy(update={"subjects": [102]})
    generate(alone, SEED, tmp_path)
    name = "Protocol/subject102.dat"
    assert (tmp_path / name).read_bytes() == (generated[0] / name).read_bytes()


def test_a_failed_run_leaves_the_old_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "raw"
    out.mkdir()
    (out / "keep.txt").write_text("old")

    def boom(*_: object) -> bytes:
        raise RuntimeError("disk full")

    monkeypatch.setattr("harfusion.data.synthetic.generate.format_rows", boom)
    with pytest.raises(RuntimeError):
        generate(SMALL, SEED, out)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


@pytest.mark.parametrize("seed", range(12))
def test_coverage_is_uneven_but_every_activity_keeps_three_subjects(seed: int) -> None:
    files = plan(SyntheticParams(), seed)
    per_activity: dict[int, set[str]] = {}
    for name, bouts in files.items():
        for activity, rows in bouts:
            assert rows > 0
            per_activity.setdefault(activity, set()).add(name.split("/")[1])
    assert set(per_activity) == set(PROTOCOL_ACTIVITIES) | set(OPTIONAL_ACTIVITIES)
    assert min(len(subjects) for subjects in per_activity.values()) >= 3
    rows = {name: sum(r for _, r in bouts) for name, bouts in files.items()}
    others = [r for name, r in rows.items() if name.startswith("Protocol/") and "109" not in name]
    assert rows["Protocol/subject109.dat"] < 0.5 * np.median(others)  # 109 is much shorter


def test_coverage_holds_for_subjects_without_optional_sessions() -> None:
    params = SyntheticParams(subjects=[102, 103, 104, 107, 110])
    files = plan(params, 3)
    optional = [bouts for name, bouts in files.items() if name.startswith("Optional/")]
    assert len(optional) >= 3
    for activity in OPTIONAL_ACTIVITIES:
        assert sum(any(a == activity for a, _ in bouts) for bouts in optional) >= 3


def test_plan_matches_generated_labels(
    generated: tuple[Path, dict[str, int]], tables: dict[str, np.ndarray]
) -> None:
    for name, bouts in plan(SMALL, SEED).items():
        labels = tables[name][:, 1].astype(int)
        body = labels[labels != TRANSIENT_ACTIVITY]
        expected = np.repeat([a for a, _ in bouts], [r for _, r in bouts])
        assert np.array_equal(body, expected)


def test_posture_turns_the_chest_between_lying_and_standing(physics: np.ndarray) -> None:
    def gravity(activity: int) -> np.ndarray:
        rows = physics[physics[:, 1] == activity]
        mean = np.nanmean(block(rows, 1, 1, 3), axis=0)
        return mean / np.linalg.norm(mean)

    angle = np.degrees(np.arccos(np.clip(gravity(1) @ gravity(3), -1, 1)))
    assert angle > 45


def test_cycling_moves_the_ankle_not_the_hand(physics: np.ndarray) -> None:
    cycling = physics[physics[:, 1] == 6]
    ankle = np.nanvar(block(cycling, 2, 1, 3), axis=0).sum()
    hand = np.nanvar(block(cycling, 0, 1, 3), axis=0).sum()
    assert ankle > 5 * hand


def test_a_running_arm_swings_as_hard_as_the_trunk_bounces(physics: np.ndarray) -> None:
    """Real running: the hand's acceleration varies more than the chest's (14 vs 10 m/s²); before
    the wrist was carried by the trunk and swung about the shoulder it varied a fifth as much."""
    running = physics[physics[:, 1] == 5]

    def spread(imu: int) -> float:
        return float(np.nanstd(np.linalg.norm(block(running, imu, 1, 3), axis=1)))

    assert spread(0) > 0.6 * spread(1)


def test_subjects_wear_the_hand_sensor_differently(tables: dict[str, np.ndarray]) -> None:
    """Standing still, gravity seen by the hand points differently for different people (real
    subjects differ by tens of degrees; 180° where the strap was put on turned over)."""
    directions = []
    for subject in (101, 102, 103):
        data = tables[f"Protocol/subject{subject}.dat"]
        mean = np.nanmean(block(data[data[:, 1] == 3], 0, 1, 3), axis=0)
        directions.append(mean / np.linalg.norm(mean))
    angles = [np.degrees(np.arccos(np.clip(a @ b, -1, 1))) for a, b in combinations(directions, 2)]
    assert max(angles) > 30


def test_no_rhythm_has_more_terms_than_the_styles_draw() -> None:
    longest = max(len(r.terms) for p in PROFILES.values() for r in p.rhythms)
    assert longest <= MAX_TERMS


def test_heart_rate_follows_intensity(physics: np.ndarray) -> None:
    def bpm(activity: int) -> float:
        return float(np.nanmean(physics[physics[:, 1] == activity, 2]))

    assert bpm(1) + 30 < bpm(5)
    assert bpm(17) < bpm(16)  # ironing is lighter work than vacuuming


def test_format_rows_prints_exactly_like_percent_g() -> None:
    rng = np.random.default_rng(0)
    values = rng.standard_normal((20_000, 5)) * 10.0 ** rng.uniform(-7, 6.5, (20_000, 5))
    values[rng.random(values.shape) < 0.1] = np.nan
    values[rng.random(values.shape) < 0.05] = 0.0
    values[:, 0] = (300 + np.arange(len(values))) / 100.0
    expected = "".join(
        " ".join([f"{row[0]:.10g}"] + [f"{v:.6g}" for v in row[1:]]) + "\n"
        for row in values.tolist()
    ).replace("nan", "NaN")
    assert format_rows(values + 0.0).decode() == expected


def test_without_transients_or_optional_sessions(tmp_path: Path) -> None:
    params = SyntheticParams(
        subjects=[104], seconds_per_activity=1.0, transient_seconds=0.0, optional_sessions=False
    )
    summary = generate(params, SEED, tmp_path)
    assert list(summary) == ["Protocol/subject104.dat"]
    data = parse(tmp_path / "Protocol/subject104.dat")
    assert TRANSIENT_ACTIVITY not in set(data[:, 1].tolist())
    assert len(data) == summary["Protocol/subject104.dat"]


def test_values_lie_within_the_readers_physical_bounds(
    generated: tuple[Path, dict[str, int]], physics: np.ndarray
) -> None:
    """The reader's bounds accept what the generator writes, ±6 g saturation included."""
    out, summary = generated
    values = np.concatenate([read_dat(out / name) for name in summary] + [physics])
    for column, name in enumerate(RAW_COLUMNS):
        low, high, _ = FIELD_BOUNDS[name]
        present = values[~np.isnan(values[:, column]), column]
        assert low <= present.min() and present.max() <= high, name
