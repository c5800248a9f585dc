"""Assign whole subject × activity shards to train / val / test.

`shard`: row fractions within a percentage point of the target, and every activity with at least
three shards in every split (the seed notes' purely random assignment lost whole classes).
`subject`: whole subjects held out, for subject-independent results.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harfusion.atomic import atomic_path
from harfusion.errors import HarfusionError
from harfusion.layout import SHARD_INDEX, SPLIT_SUMMARY
from harfusion.params import SplitParams
from harfusion.registry import Registry

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Unit:
    """A subject × activity group; its parts always share a split so no window spans two."""

    subject: int
    activity: int
    rows: int


def units_from_shards(shards: list[dict]) -> list[Unit]:
    rows: dict[tuple[int, int], int] = defaultdict(int)
    for shard in shards:
        rows[(shard["subject"], shard["activity"])] += shard["rows"]
    return [Unit(s, a, n) for (s, a), n in sorted(rows.items())]


def split_by_subject(
    units: list[Unit], val_subjects: list[int], test_subjects: list[int]
) -> np.ndarray:
    present = {unit.subject for unit in units}
    for key, subjects in (
        ("split.val_subjects", val_subjects),
        ("split.test_subjects", test_subjects),
    ):
        missing = sorted(set(subjects) - present)
        if missing or not subjects:
            raise HarfusionError(
                f"{key}: subjects {missing or subjects} not in the data (have {sorted(present)})"
            )
    assignment = np.array(
        [2 if u.subject in test_subjects else 1 if u.subject in val_subjects else 0 for u in units]
    )
    if not (assignment == 0).any():
        raise HarfusionError("split: no subject left for training")
    return assignment


def split_by_shard(
    units: list[Unit], fractions: tuple[float, float, float], seed: int
) -> np.ndarray:
    """Greedy largest-first fill towards the target rows, then pairwise swaps to polish."""
    rng = np.random.default_rng(seed)
    rows = np.array([u.rows for u in units], dtype=np.float64)
    activities = np.array([u.activity for u in units])
    target = np.asarray(fractions) * rows.sum()
    assignment = np.full(len(units), -1)
    # Coverage first: a random shard of every well-represented activity seeds val and test.
    for activity in np.unique(activities):
        members = rng.permutation(np.flatnonzero(activities == activity))
        if len(members) >= len(SPLITS):
            assignment[members[1]] = 1
            assignment[members[2]] = 2
    rest = np.flatnonzero(assignment < 0)
    rest = rest[np.lexsort((rng.random(len(rest)), -rows[rest]))]
    for index in rest:
        totals = np.bincount(assignment[assignment >= 0], rows[assignment >= 0], len(SPLITS))
        assignment[index] = int(np.argmax((target - totals) / target))
    return _polish(assignment, rows, activities, target)


def _covered(assignment: np.ndarray, activities: np.ndarray) -> bool:
    for activity in np.unique(activities):
        members = assignment[activities == activity]
        if len(members) >= len(SPLITS) and len(np.unique(members)) < len(SPLITS):
            return False
    return True


def _polish(
    assignment: np.ndarray, rows: np.ndarray, activities: np.ndarray, target: np.ndarray
) -> np.ndarray:
    """Apply the best single move or pairwise swap while it lowers the worst fraction error."""
    eye = np.eye(len(SPLITS))
    for _ in range(10 * len(rows)):
        totals = np.bincount(assignment, rows, len(SPLITS))
        own = eye[assignment] * rows[:, None]  # [N, 3]: each unit's rows in its own split
        # moves[i, s]: totals after unit i moves to split s
        moves = totals - own[:, None, :] + eye[None, :, :] * rows[:, None, None]
        # swaps[i, j]: totals after units i and j trade splits
        swaps = totals - own[:, None, :] - own[None, :, :]
        swaps = swaps + eye[assignment][None, :, :] * rows[:, None, None]
        swaps = swaps + eye[assignment][:, None, :] * rows[None, :, None]
        current = np.abs(totals - target).max()
        options = [
            (cost, "move", i, s)
            for (i, s), cost in np.ndenumerate(np.abs(moves - target).max(axis=-1))
            if cost < current - 1e-9
        ] + [
            (cost, "swap", i, j)
            for (i, j), cost in np.ndenumerate(np.abs(swaps - target).max(axis=-1))
            if i < j and assignment[i] != assignment[j] and cost < current - 1e-9
        ]
        for _, kind, a, b in sorted(options):
            trial = assignment.copy()
            if kind == "move":
                trial[a] = b
            else:
                trial[a], trial[b] = trial[b], trial[a]
            if _covered(trial, activities):
                assignment = trial
                break
        else:
            return assignment
    return assignment


# `split.strategy`'s choices: each assigns every unit its split (an index into SPLITS).
STRATEGIES: Registry[Callable[[list[Unit], SplitParams], np.ndarray]] = Registry(
    "split strategy",
    {
        "shard": lambda units, p: split_by_shard(units, (p.train, p.val, p.test), p.seed),
        "subject": lambda units, p: split_by_subject(units, p.val_subjects, p.test_subjects),
    },
)


def write_splits(processed_dir: Path, out_dir: Path, params: SplitParams) -> dict:
    """Write `{split}.txt` (`path/to/shard.csv,<rows>` per line) and `summary.json`."""
    assign = STRATEGIES[params.strategy]
    index = processed_dir / SHARD_INDEX
    try:
        shards = json.loads(index.read_text())
    except FileNotFoundError:
        raise HarfusionError(f"{index}: not found; run `dvc repro preprocess`") from None
    units = units_from_shards(shards)
    assignment = assign(units, params)
    split_of = {(u.subject, u.activity): SPLITS[a] for u, a in zip(units, assignment, strict=True)}
    lines: dict[str, list[str]] = {split: [] for split in SPLITS}
    rows = dict.fromkeys(SPLITS, 0)
    activities: dict[str, set[int]] = {split: set() for split in SPLITS}
    for shard in shards:
        split = split_of[(shard["subject"], shard["activity"])]
        lines[split].append(f"{(processed_dir / shard['path']).as_posix()},{shard['rows']}")
        rows[split] += shard["rows"]
        activities[split].add(shard["activity"])
    total = sum(rows.values())
    summary = {
        "strategy": params.strategy,
        "rows": rows,
        "fractions": {split: round(rows[split] / total, 4) for split in SPLITS},
        "max_fraction_error": round(
            max(abs(rows[s] / total - getattr(params, s)) for s in SPLITS), 4
        ),
        "activities": {split: sorted(activities[split]) for split in SPLITS},
        "subjects": {
            split: sorted(
                {u.subject for u, a in zip(units, assignment, strict=True) if SPLITS[a] == split}
            )
            for split in SPLITS
        },
    }
    with atomic_path(out_dir) as tmp:
        tmp.mkdir()
        for split in SPLITS:
            (tmp / f"{split}.txt").write_text("".join(f"{line}\n" for line in lines[split]))
        (tmp / SPLIT_SUMMARY).write_text(json.dumps(summary, indent=1))
    return summary
