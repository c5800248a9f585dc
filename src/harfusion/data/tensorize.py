"""Turn CSV shards into tensor shards, per-split window indexes and train-only normalisation.

Windows never cross a shard (so never a split), a session (two session folders are two
recordings, even when one's clock happens to continue the other's) or a gap in the timestamps
(`windows`): a model never sees two recordings glued together. A subject that yields no window
is named with the reason (too short, repeated timestamps, a clock that is not seconds at the
dataset's rate). The dataset description the shards were made with (`dataset.json`) is carried
along for the stages after this one.
Windows in which a modality's sensor sent (almost) nothing are listed per split in the manifest,
so the dataset masks that modality there (`presence`), and counted per subject and activity.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import torch
from tqdm import tqdm

from harfusion.atomic import atomic_path
from harfusion.data.description import Description, read_dataset
from harfusion.data.preprocess import read_shard_csv
from harfusion.data.presence import MAX_MISSING, absent_modalities
from harfusion.data.splits import SPLITS
from harfusion.data.windows import no_window_reason, window_starts
from harfusion.errors import HarfusionError
from harfusion.layout import DATASET, MANIFEST, NORM_STATS

_PART = re.compile(r"_part\d+$")


def read_split_file(path: Path) -> list[tuple[str, int]]:
    entries = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        shard, sep, rows = line.rpartition(",")
        if not sep or not rows.strip().isdigit():
            raise HarfusionError(f"{path}:{number}: expected 'path/to/shard.csv,<rows>'")
        entries.append((shard, int(rows)))
    return entries


def _whole(path: Path) -> Path:
    """The shard a part file belongs to: `activity_4_part1.csv` → `activity_4.csv`."""
    return path.with_name(_PART.sub("", path.stem) + path.suffix)


def _shard_parts(entries: list[tuple[str, int]]) -> list[list[tuple[str, int]]]:
    """A split's entries grouped into whole subject × activity shards, parts in order.

    Preprocess cuts a large shard into `_part<k>` files at a byte size; windows have to span
    those cuts, or `preprocess.max_shard_mb` would change which windows exist.
    """
    groups: dict[Path, list[tuple[int, str, int]]] = {}
    for csv_path, rows in entries:
        path = Path(csv_path)
        part = _PART.search(path.stem)
        number = int(part.group().removeprefix("_part")) if part else 0
        groups.setdefault(_whole(path), []).append((number, csv_path, rows))
    return [[(path, rows) for _, path, rows in sorted(parts)] for parts in groups.values()]


def _read_parts(
    parts: list[tuple[str, int]], split_file: Path, description: Description
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, int]:
    """One shard's features (float64), timestamps, sessions, activity and subject, from its
    part files."""
    features, timestamps, sessions = [], [], []
    known: dict[str, int] = {}
    for csv_path, rows in parts:
        table = read_shard_csv(csv_path, description)
        if table.num_rows != rows:
            raise HarfusionError(
                f"{split_file}: {csv_path} has {table.num_rows} rows, the split file says {rows}"
            )
        values = np.column_stack(
            [table.column(c).to_numpy(zero_copy_only=False) for c in description.channels]
        ).astype(np.float64)
        _float32(values, csv_path, description.channels)
        features.append(values)
        timestamps.append(table.column("timestamp_s").to_numpy())
        sessions.append(_session_codes(table.column("session"), known))
        if len(features) == 1:
            activity = int(table.column("activity_id")[0].as_py())
            subject = int(table.column("subject_id")[0].as_py())
    return (
        np.concatenate(features),
        np.concatenate(timestamps),
        np.concatenate(sessions),
        activity,
        subject,
    )


def _session_codes(column: pa.ChunkedArray, known: dict[str, int]) -> np.ndarray:
    """A number per row for its session, the same number for one session in every part."""
    encoded = column.combine_chunks().dictionary_encode()
    numbers = [known.setdefault(name, len(known)) for name in encoded.dictionary.to_pylist()]
    return np.asarray(numbers, dtype=np.int64)[encoded.indices.to_numpy(zero_copy_only=False)]


def _warn_untrained(
    manifest: dict, classes: list[int], chunk_size: int, description: Description
) -> None:
    """A class with no training window is one the model cannot learn, yet it is scored."""
    trained = {manifest["shards"][shard]["activity"] for shard, _ in manifest["windows"]["train"]}
    untrained = [f"{description.activity_name(a)} ({a})" for a in classes if a not in trained]
    if untrained:
        print(
            f"tensorize: warning: no training window at chunk_size={chunk_size} for "
            f"{', '.join(untrained)}: the model cannot learn them (too little training data "
            "for them, or a smaller chunk_size)",
            file=sys.stderr,
        )


def _float32(features: np.ndarray, csv_path: str, columns: tuple[str, ...]) -> np.ndarray:
    """The features as stored; a value beyond float32's range would become inf there."""
    with np.errstate(over="ignore"):
        narrow = features.astype(np.float32)
    infinite = np.isinf(narrow).any(axis=0)
    if infinite.any():
        column = columns[int(np.argmax(infinite))]
        raise HarfusionError(
            f"{csv_path}: {column}: infinite or beyond float32's range; rerun preprocess, "
            "which rejects values no sensor produces"
        )
    return narrow


def _check_finite_stats(mean: np.ndarray, std: np.ndarray, columns: tuple[str, ...]) -> None:
    """A NaN or inf statistic would silently zero its channel in every split: refuse it."""
    bad = ~(np.isfinite(mean) & np.isfinite(std))
    if bad.any():
        column = int(np.argmax(bad))
        raise HarfusionError(
            f"{NORM_STATS}: {columns[column]}: train mean {mean[column]:g}, std "
            f"{std[column]:g} are not finite (values too large to square in float64?)"
        )


def _warn_absent(counts: list[dict], description: Description) -> None:
    """One line per modality: which subjects' activities lack it in how many windows."""
    for modality in sorted({row["modality"] for row in counts}):
        rows = [row for row in counts if row["modality"] == modality]
        by_subject: dict[int, list[str]] = {}
        for row in rows:
            by_subject.setdefault(row["subject"], []).append(
                f"{description.activity_name(row['activity'])} {row['windows']}/{row['of']}"
            )
        listed = "; ".join(
            f"subject {subject} ({', '.join(activities)})"
            for subject, activities in sorted(by_subject.items())
        )
        print(
            f"tensorize: warning: {modality} missing in more than {MAX_MISSING:.0%} of the samples "
            f"of {sum(row['windows'] for row in rows)} windows, masked there as modality dropout "
            f"masks it: {listed}",
            file=sys.stderr,
        )


def _no_window_error(
    chunk_size: int, empty: list[str], reasons: dict[int, list[tuple[int, str, str]]]
) -> HarfusionError:
    """No window in a split: why, for its longest shard, and what to do when it is too short."""
    found = [
        (rows, why) for shards in reasons.values() for rows, why, split in shards if split in empty
    ]
    _, why = max(found, default=(0, "no rows"))
    advice = "; use a smaller chunk_size or more data" if "chunk_size" in why else ""
    return HarfusionError(
        f"chunk_size={chunk_size}: no window fits in the {', '.join(empty)} split "
        f"(longest shard without a window: {why}){advice}"
    )


def _warn_windowless(reasons: dict[int, list[tuple[int, str, str]]], windowed: set[int]) -> None:
    """A subject that yields no window at all: named, with the reason of its longest shard."""
    for subject in sorted(set(reasons) - windowed):
        _, reason, _ = max(reasons[subject])
        print(f"tensorize: warning: subject {subject} yields no window: {reason}", file=sys.stderr)


def tensorize(
    splits_dir: Path,
    processed_dir: Path,
    out_dir: Path,
    chunk_size: int,
    stride: int,
    train_stride: int | None = None,
) -> dict:
    """Write `<shard>.pt`, `manifest.json` (classes, windows per split, windows lacking a
    modality), `norm_stats.json` and, as preprocess wrote it, `dataset.json`.

    `train_stride` (default `stride`) spaces the train split's windows only: overlapping
    training windows add examples at no labelling cost, while validation and test keep the
    evaluation stride so their scores stay comparable across settings.
    """
    description = read_dataset(processed_dir)
    columns, rate = description.channels, description.sampling_rate_hz
    modalities = {m: description.modality_channels(m) for m in description.modalities}
    strides = {split: stride for split in SPLITS} | {"train": train_stride or stride}
    listed = {split: read_split_file(splits_dir / f"{split}.txt") for split in SPLITS}
    total = sum(len(entries) for entries in listed.values())
    manifest: dict = {
        "columns": list(columns),
        "chunk_size": chunk_size,
        "stride": stride,
        "train_stride": strides["train"],
        "shards": [],
        "windows": {},
        # per split and modality, the positions (in `windows`) of the windows lacking it
        "absent": {},
        # per subject, activity, split and modality: windows lacking it, of how many
        "absent_windows": [],
    }
    sums = np.zeros(len(columns))
    squares = np.zeros(len(columns))
    counts = np.zeros(len(columns))
    activities: set[int] = set()
    # per subject, (rows, why, split) of each shard without a window; subjects with a window
    reasons: dict[int, list[tuple[int, str, str]]] = {}
    windowed: set[int] = set()
    with atomic_path(out_dir) as tmp, tqdm(total=total, desc="tensorize", unit="shard") as bar:
        for split, entries in listed.items():
            windows: list[list[int]] = []
            absent: dict[str, list[int]] = {}
            for parts in _shard_parts(entries):
                features, timestamps, sessions, activity, subject = _read_parts(
                    parts, splits_dir / f"{split}.txt", description
                )
                rows = len(timestamps)
                activities.add(activity)
                relative = _whole(Path(parts[0][0]).relative_to(processed_dir)).with_suffix(".pt")
                target = tmp / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                torch.save(
                    {
                        "features": torch.from_numpy(features.astype(np.float32)),
                        "timestamps": torch.from_numpy(timestamps.astype(np.float64)),
                        "activity": activity,
                        "subject": subject,
                    },
                    target,
                )
                shard_index = len(manifest["shards"])
                manifest["shards"].append(
                    {
                        "path": relative.as_posix(),
                        "activity": activity,
                        "subject": subject,
                        "rows": rows,
                        "split": split,
                    }
                )
                starts = window_starts(timestamps, rate, chunk_size, strides[split], sessions)
                if len(starts):
                    windowed.add(subject)
                else:
                    why = no_window_reason(timestamps, rate, sessions, chunk_size)
                    reasons.setdefault(subject, []).append((rows, why, split))
                where = {"subject": subject, "activity": activity, "split": split}
                for modality, flags in absent_modalities(
                    features, columns, modalities, starts, chunk_size
                ).items():
                    if flags.any():
                        found = len(windows) + np.flatnonzero(flags)
                        absent.setdefault(modality, []).extend(found.tolist())
                        manifest["absent_windows"].append(
                            where | {"modality": modality, "windows": len(found), "of": len(flags)}
                        )
                windows += [[shard_index, int(s)] for s in starts]
                if split == "train":
                    present = ~np.isnan(features)
                    sums += np.where(present, features, 0).sum(axis=0)
                    squares += np.where(present, features**2, 0).sum(axis=0)
                    counts += present.sum(axis=0)
                bar.update(len(parts))
            manifest["windows"][split] = windows
            manifest["absent"][split] = absent
        bar.close()  # before the warnings, so that they read as lines of their own
        empty = [split for split in SPLITS if not manifest["windows"][split]]
        if empty:
            raise _no_window_error(chunk_size, empty, reasons)
        _warn_windowless(reasons, windowed)
        _warn_absent(manifest["absent_windows"], description)
        classes = sorted(activities)
        _warn_untrained(manifest, classes, chunk_size, description)
        manifest["classes"] = classes
        manifest["class_names"] = [description.activity_name(a) for a in classes]
        mean = np.divide(sums, counts, out=np.zeros_like(sums), where=counts > 0)
        variance = np.divide(squares, counts, out=np.ones_like(sums), where=counts > 0) - mean**2
        std = np.sqrt(np.clip(variance, 0, None))
        std[std < 1e-6] = 1.0
        _check_finite_stats(mean, std, columns)
        stats = {
            "fit_on": "train",
            "columns": list(columns),
            "mean": mean.tolist(),
            "std": std.tolist(),
            "count": counts.astype(int).tolist(),
        }
        (tmp / NORM_STATS).write_text(json.dumps(stats, indent=1))
        (tmp / MANIFEST).write_text(json.dumps(manifest))
        shutil.copyfile(Path(processed_dir) / DATASET, tmp / DATASET)
    return manifest
