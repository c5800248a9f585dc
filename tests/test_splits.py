import numpy as np
import pytest

from harfusion.data.splits import SPLITS, Unit, split_by_shard, split_by_subject
from harfusion.errors import HarfusionError


def _units(seed: int, subjects: int = 9, activities: int = 18) -> list[Unit]:
    rng = np.random.default_rng(seed)
    units = []
    for subject in range(101, 101 + subjects):
        for activity in range(1, activities + 1):
            if rng.random() < 0.85:  # uneven coverage, like the real data
                units.append(Unit(subject, activity, int(rng.integers(500, 30_000))))
    return units


@pytest.mark.parametrize("seed", range(5))
def test_shard_split_fractions_and_coverage(seed: int) -> None:
    units = _units(seed)
    assignment = split_by_shard(units, (0.7, 0.15, 0.15), seed)
    rows = np.array([u.rows for u in units])
    fractions = np.bincount(assignment, rows, 3) / rows.sum()
    assert np.abs(fractions - [0.7, 0.15, 0.15]).max() <= 0.01
    activities = np.array([u.activity for u in units])
    for activity in np.unique(activities):
        if (activities == activity).sum() >= 3:
            assert set(assignment[activities == activity]) == {0, 1, 2}, activity


def test_shard_split_is_seeded() -> None:
    units = _units(0)
    first = split_by_shard(units, (0.7, 0.15, 0.15), 3)
    assert np.array_equal(first, split_by_shard(units, (0.7, 0.15, 0.15), 3))
    assert not np.array_equal(first, split_by_shard(units, (0.7, 0.15, 0.15), 4))


def test_subject_split_holds_out_whole_subjects() -> None:
    units = _units(1)
    assignment = split_by_subject(units, [105], [106])
    for unit, split in zip(units, assignment, strict=True):
        expected = "test" if unit.subject == 106 else "val" if unit.subject == 105 else "train"
        assert SPLITS[split] == expected


def test_subject_split_unknown_subject() -> None:
    with pytest.raises(HarfusionError, match=r"split\.test_subjects"):
        split_by_subject(_units(1), [105], [199])
