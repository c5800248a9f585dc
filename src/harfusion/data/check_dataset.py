"""Check a dataset description against its recordings and say what they hold: subjects,
sessions, rows, the measured sampling rate and the labels.

    harfusion check-dataset                              # params.yaml's data.dataset and raw_dir
    harfusion check-dataset mhealth --raw-dir /data/MHEALTHDATASET
    harfusion check-dataset datasets/mine.yaml --raw-dir /data/mine

Every recording is read as preprocess reads it, so a mistake in the description (a column too
many, a wrong separator, a label it does not list, a value outside a channel's bounds) stops
here with the file, line and reason, before a pipeline run. Nothing is written.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

import numpy as np
from pydantic import ValidationError

from harfusion import layout
from harfusion.data.description import Description, description_path, load_description
from harfusion.data.recordings import find_recordings, read_recording
from harfusion.data.windows import sample_period
from harfusion.errors import HarfusionError
from harfusion.params import DataParams, describe, load_params

RATE_TOLERANCE = 0.02  # a measured rate this far off the described one is worth a warning


def add_arguments(parse: argparse.ArgumentParser) -> None:
    parse.add_argument(
        "dataset",
        nargs="?",
        help="pamap2, mhealth or datasets/<name>.yaml (default: params.yaml's data.dataset)",
    )
    parse.add_argument(
        "--raw-dir", type=Path, help="the recordings' folder (default: params.yaml's data.raw_dir)"
    )
    parse.add_argument(
        "--params", type=Path, default=layout.PARAMS, help="where the defaults come from"
    )


def run(args: argparse.Namespace) -> int:
    dataset, raw_dir = args.dataset, args.raw_dir
    if dataset is None or raw_dir is None:
        data = load_params(args.params).data
        dataset, raw_dir = dataset or data.dataset, raw_dir or Path(data.raw_dir)
    try:
        DataParams(dataset=dataset)  # a description of one's own belongs in datasets/
    except ValidationError as exc:
        raise HarfusionError(describe(exc, "check-dataset")) from None
    description = load_description(dataset)
    print(f"{description_path(dataset)}: {summary(description)}")
    for line in check(description, raw_dir):
        print(line)
    return 0


def summary(description: Description) -> str:
    modalities = ", ".join(
        f"{name} ({spec.label}, {spec.kind}, {len(spec.all_columns)} channels)"
        for name, spec in description.modalities.items()
    )
    return (
        f"{description.name}, {description.sampling_rate_hz:g} Hz, "
        f"{len(description.labels.activities)} activities; modalities {modalities}"
    )


def check(description: Description, raw_dir: Path) -> list[str]:
    """Read every recording in `raw_dir`; the lines that say what they hold."""
    recordings = find_recordings(raw_dir, description)
    lines, labels, rows_by_label = [], Counter(), {}
    total = 0
    for recording in recordings:
        data = read_recording(recording.path, description)
        rows = len(data.labels)
        total += rows
        period = sample_period(data.timestamps)
        rate = "no clock step" if period is None else f"{1 / period:.4g} Hz"
        counts = Counter(data.labels.tolist())
        labels.update(counts)
        for label in counts:
            rows_by_label.setdefault(label, set()).add(recording.subject)
        lines.append(
            f"  {recording.path}: subject {recording.subject}, session {recording.session}, "
            f"{rows} rows, {rate} measured, {len(counts)} label{'s' * (len(counts) != 1)}"
        )
        if period is not None and abs(period * description.sampling_rate_hz - 1) > RATE_TOLERANCE:
            lines.append(
                f"  warning: {recording.path}: rows {period:.4g} s apart, but the description "
                f"says {description.sampling_rate_hz:g} Hz (sampling_rate_hz, clock.unit?)"
            )
        missing = np.isnan(data.values).all(axis=0)
        if missing.any():
            empty = [data.channels[i] for i in np.flatnonzero(missing)]
            lines.append(f"  note: {recording.path}: no reading at all in {', '.join(empty)}")
    subjects = sorted({r.subject for r in recordings})
    sessions = list(dict.fromkeys(r.session for r in recordings))
    lines.append(
        f"{len(recordings)} recordings: {len(subjects)} subjects "
        f"({', '.join(map(str, subjects))}), sessions {', '.join(sessions)}, {total} rows"
    )
    for label, count in sorted(labels.items()):
        kind = "ignored" if label in description.labels.ignore else "activity"
        who = ", ".join(map(str, sorted(rows_by_label[label])))
        lines.append(
            f"  {kind} {label} {description.activity_name(label)}: {count} rows (subjects {who})"
        )
    return lines
