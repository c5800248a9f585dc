"""Which modalities a window really holds.

A sensor that sent nothing for most of a window (a chest strap that never recorded heart rate
for a subject, an IMU out for seconds) must not reach the model as zeros posing as readings:
the window marks that modality absent, exactly as modality dropout does (mask entry False,
features zeroed by `models.masking.apply_mask`), which is what the model was trained to handle.

A sample of a modality is missing when every one of its columns is NaN: the sensor sent
nothing (a dropped packet blanks the whole block of an IMU's columns). A modality is absent
from a window when more than `MAX_MISSING` of the window's samples are missing. A few dropped
packets stay zeros in an otherwise real window; more than half missing is no reading of it.
A modality that preprocess fills (a slow sensor, such as heart rate) is absent only where a
recording has none of it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

MAX_MISSING = 0.5  # a modality with more than half of a window's samples missing is absent


def missing_samples(features: np.ndarray, columns: Sequence[int]) -> np.ndarray:
    """bool [rows]: the rows of `features` [rows, C] in which all `columns` are NaN."""
    return np.asarray(np.isnan(features[:, list(columns)]).all(axis=1), dtype=bool)


def too_sparse(missing: np.ndarray, length: int) -> np.ndarray:
    """Whether windows of `length` samples with `missing` samples missing lack the modality."""
    return missing > MAX_MISSING * length


def missing_by_modality(
    features: np.ndarray, columns: Sequence[str], modalities: Mapping[str, Sequence[str]]
) -> dict[str, np.ndarray]:
    """Per modality of `modalities` (name → all its channels) with columns in `columns` (the
    names of `features`' columns), bool [rows]: the rows in which its sensor sent nothing. Rows
    can be counted a block at a time (predict streams a long recording) and the windows judged
    afterwards (`absent_windows`)."""
    index = {name: i for i, name in enumerate(columns)}
    missing = {}
    for modality, channels in modalities.items():
        own = [index[c] for c in channels if c in index]
        if own:
            missing[modality] = missing_samples(features, own)
    return missing


def absent_windows(missing: np.ndarray, starts: np.ndarray, length: int) -> np.ndarray:
    """bool [windows]: the windows starting at `starts`, `length` rows each, in which more than
    `MAX_MISSING` of the rows are `missing`."""
    running = np.concatenate([[0], np.cumsum(missing)])
    return too_sparse(running[starts + length] - running[starts], length)


def absent_modalities(
    features: np.ndarray,
    columns: Sequence[str],
    modalities: Mapping[str, Sequence[str]],
    starts: np.ndarray,
    length: int,
) -> dict[str, np.ndarray]:
    """Per modality of `modalities` with columns in `columns`, bool [windows]: the windows
    starting at `starts`, `length` rows each, that lack it."""
    return {
        modality: absent_windows(rows, starts, length)
        for modality, rows in missing_by_modality(features, columns, modalities).items()
    }
