"""Datasets beside the PAMAP2 helpers: the description documented in docs/datasets.md, and
recordings in MHEALTH's published layout for tests and the end-to-end check (the real files are
not on this machine): tiny generated ones, and PAMAP2 recordings converted to MHEALTH's
placements, rate, labels and format.

The conversion maps PAMAP2's IMUs to MHEALTH's placements (chest acceleration → chest
accelerometer; the ankle IMU → left ankle; the hand IMU, worn on the wrist → right lower arm),
halves the rate from 100 to 50 Hz with an anti-alias filter, turns gyroscope rad/s into deg/s
(MHEALTH's unit), synthesizes a two-lead ECG beating at the recorded heart rate, and maps the
activities MHEALTH also has. Drops (NaN) stay drops. Each gap-free run of the source is
converted on its own and the runs are joined by two seconds of null-class rows, so that the
implicit clock never runs one run's activity into the next.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from scipy.signal import resample_poly

from harfusion.data.dat_writer import format_rows
from harfusion.data.description import load_description
from harfusion.data.preprocess import fill_and_smooth
from harfusion.data.recordings import RecordingData, find_recordings, read_recording

# PAMAP2 activity → MHEALTH label, where both name the same activity; any other → 0, the null
# class (MHEALTH's label for everything outside its 12). Descending stairs has no MHEALTH
# activity (its 5 is climbing, i.e. up), so it becomes null rather than pose as climbing.
PAMAP2_TO_MHEALTH = {1: 3, 2: 2, 3: 1, 4: 4, 5: 11, 6: 9, 12: 5, 24: 12}
NULL = 0
# MHEALTH channel ← PAMAP2 channel, axis by axis (PAMAP2's chest gyro and magnetometer have no
# MHEALTH counterpart; its ±16 g accelerometer is the one that does not saturate).
SOURCES = {
    f"{mhealth}_{a}": f"{pamap2}_{a}"
    for mhealth, pamap2 in [
        ("chest_acc", "chest_acc16"),
        ("ankle_acc", "ankle_acc16"),
        ("ankle_gyro", "ankle_gyro"),
        ("ankle_mag", "ankle_mag"),
        ("arm_acc", "hand_acc16"),
        ("arm_gyro", "hand_gyro"),
        ("arm_mag", "hand_mag"),
    ]
    for a in "xyz"
}
ECG = ("ecg_lead1", "ecg_lead2")
SEPARATOR_SECONDS = 2.0
RESTING_BPM = 75.0  # the ECG's rate where a recording has no heart rate at all
DOCS = Path(__file__).resolve().parents[1] / "docs" / "datasets.md"


def docs_example() -> str:
    """The worked description in docs/datasets.md (the YAML block of its own-dataset section)."""
    section = DOCS.read_text().split("## A dataset of your own", 1)[1]
    return section.split("```yaml\n", 1)[1].split("```", 1)[0]


def mhealth_bytes(values: np.ndarray, labels: np.ndarray) -> bytes:
    """Rows as MHEALTH writes them: tab-separated, no header, the label last."""
    table = np.column_stack([values, labels.astype(np.float64)])
    return format_rows(table, exact_columns=(table.shape[1] - 1,)).replace(b" ", b"\t")


def write_mhealth_log(path: Path, segments: list[tuple[int, int]], seed: int = 0) -> Path:
    """A tiny MHEALTH-layout file of `(label, rows)` segments: random readings of a plausible
    scale (gravity on the accelerometers, a millivolt ECG)."""
    description = load_description("mhealth")
    rng = np.random.default_rng(seed)
    labels = np.concatenate([np.full(rows, label) for label, rows in segments])
    values = rng.normal(size=(len(labels), len(description.channels)))
    for column, name in enumerate(description.channels):
        if name.endswith("acc_z"):
            values[:, column] += 9.8
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(mhealth_bytes(values, labels))
    return path


def synthetic_ecg(timestamps: np.ndarray, bpm: np.ndarray, seed: int) -> np.ndarray:
    """[rows, 2] mV: two ECG leads beating at `bpm`. Each beat is P, Q, R, S and T waves
    (Gaussians placed relative to the R peak, the QT interval stretching with the beat period
    as Bazett has it), plus baseline wander at a breathing rate and a little noise."""
    rng = np.random.default_rng(seed)
    rate = bpm / 60.0
    steps = np.diff(timestamps, prepend=timestamps[0])
    phase = np.cumsum(2 * np.pi * rate * steps) + rng.uniform(0, 2 * np.pi)
    period = 1.0 / rate
    # Seconds from the nearest R peak, in [-period/2, period/2).
    offset = (np.mod(phase + np.pi, 2 * np.pi) - np.pi) / (2 * np.pi * rate)
    stretch = np.sqrt(period)
    waves = [  # (centre s, width s, amplitude mV)
        (-0.2 * stretch, 0.035, 0.15),
        (-0.035, 0.012, -0.12),
        (0.0, 0.018, 1.2),
        (0.035, 0.012, -0.3),
        (0.4 * stretch - 0.1, 0.06, 0.3),
    ]
    beat = sum(a * np.exp(-0.5 * ((offset - c) / w) ** 2) for c, w, a in waves)
    leads = []
    for gain in (0.6, 1.0):  # lead I is smaller than lead II on most people
        wander = 0.1 * np.sin(2 * np.pi * 0.25 * timestamps + rng.uniform(0, 2 * np.pi))
        leads.append(gain * beat + wander + rng.normal(0.0, 0.02, len(timestamps)))
    return np.column_stack(leads)


def _halve_rate(rows: np.ndarray) -> np.ndarray:
    """[n, C] → [ceil(n/2), C]: a polyphase anti-alias filter, then every second sample. NaN
    cannot pass a filter, so gaps are bridged linearly for it and put back where the kept
    sample was missing."""
    missing = np.isnan(rows)
    bridged = rows.copy()
    index = np.arange(len(rows))
    for column in np.flatnonzero(missing.any(axis=0)):
        present = ~missing[:, column]
        if present.any():
            bridged[:, column] = np.interp(index, index[present], rows[present, column])
        else:
            bridged[:, column] = 0.0
    halved = resample_poly(bridged, 1, 2, axis=0, padtype="line") if len(rows) > 1 else bridged
    halved[missing[::2]] = np.nan
    return halved


def mhealth_rows(recording: RecordingData, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """One PAMAP2 recording (100 Hz) as MHEALTH values [rows, 23] and labels, at 50 Hz."""
    pamap2 = load_description("pamap2")
    mhealth = load_description("mhealth")
    step = 1.0 / pamap2.sampling_rate_hz
    if not math.isclose(pamap2.sampling_rate_hz, 2 * mhealth.sampling_rate_hz):
        raise ValueError("the conversion halves the rate")
    column = {name: i for i, name in enumerate(recording.channels)}
    heart = fill_and_smooth(recording.values[:, column["heart_rate_bpm"]], True, 1)
    heart = np.where(np.isnan(heart), RESTING_BPM, heart)
    ecg = synthetic_ecg(recording.timestamps, heart, seed)
    source = np.empty((len(heart), len(mhealth.channels)))
    for target, name in enumerate(mhealth.channels):
        if name in ECG:
            source[:, target] = ecg[:, ECG.index(name)]
            continue
        source[:, target] = recording.values[:, column[SOURCES[name]]]
        if "_gyro_" in name:
            source[:, target] = np.degrees(source[:, target])
    labels = np.array([PAMAP2_TO_MHEALTH.get(int(a), NULL) for a in recording.labels])
    steps = np.diff(recording.timestamps)
    cuts = np.flatnonzero((steps <= 0) | (steps > 1.5 * step)) + 1
    runs = zip([0, *cuts], [*cuts, len(labels)], strict=True)
    halves = [(_halve_rate(source[a:b]), labels[a:b:2]) for a, b in runs]
    return _join(halves, mhealth.sampling_rate_hz)


def _join(parts: list[tuple[np.ndarray, np.ndarray]], rate: float) -> tuple[np.ndarray, np.ndarray]:
    """(values, labels) parts one after another, two seconds of null-class rows between (no
    readings: NaN)."""
    rows, width = int(SEPARATOR_SECONDS * rate), parts[0][0].shape[1]
    gap = (np.full((rows, width), np.nan), np.full(rows, NULL))
    joined = [piece for part in parts for piece in (gap, part)][1:]
    return np.concatenate([v for v, _ in joined]), np.concatenate([k for _, k in joined])


def mhealth_subject(pamap2_subject: int) -> int:
    """PAMAP2's subjects 101-109 become MHEALTH-style 1-9."""
    return pamap2_subject - 100 if pamap2_subject > 100 else pamap2_subject


def convert_pamap2(pamap2_dir: Path, out_dir: Path) -> list[Path]:
    """`mHealth_subject<k>.log` in `out_dir` for every PAMAP2 recording in `pamap2_dir`; a
    subject's sessions one after the other, two null-class seconds apart."""
    pamap2, mhealth = load_description("pamap2"), load_description("mhealth")
    by_subject: dict[int, list] = {}
    for recording in find_recordings(pamap2_dir, pamap2):
        by_subject.setdefault(recording.subject, []).append(recording)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for subject, recordings in sorted(by_subject.items()):
        parts = [
            mhealth_rows(read_recording(r.path, pamap2), seed=subject * 10 + i)
            for i, r in enumerate(recordings)
        ]
        path = out_dir / mhealth.files.name_of(mhealth_subject(subject))
        path.write_bytes(mhealth_bytes(*_join(parts, mhealth.sampling_rate_hz)))
        written.append(path)
    return written
