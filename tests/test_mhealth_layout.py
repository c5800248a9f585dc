"""MHEALTH-layout recordings made from the real PAMAP2 dev recordings: MHEALTH's file names,
format, placements, rate, units and labels, with an ECG that beats at the recorded heart rate."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.signal import find_peaks

from harfusion.data.description import load_description
from harfusion.data.recordings import find_recordings, read_recording
from tests.datasets import NULL, convert_pamap2, mhealth_rows, synthetic_ecg

REAL = Path(__file__).resolve().parents[2] / "shared" / "pamap2_dev"
PAMAP2 = load_description("pamap2")
MHEALTH = load_description("mhealth")


@pytest.fixture
def subject103(tmp_path):
    """A folder holding only subject 103 (stairs up and down), linked, not copied."""
    source = REAL / "Protocol" / "subject103.dat"
    if not source.exists():
        pytest.skip(f"{REAL} is not beside this checkout (real PAMAP2 recordings)")
    (tmp_path / "pamap2" / "Protocol").mkdir(parents=True)
    (tmp_path / "pamap2" / "Protocol" / "subject103.dat").symlink_to(source)
    return tmp_path


def test_a_converted_recording_is_mhealth(subject103) -> None:
    (path,) = convert_pamap2(subject103 / "pamap2", subject103 / "mhealth")
    assert path.name == "mHealth_subject3.log"
    lines = path.read_text().splitlines()
    assert {len(line.split("\t")) for line in lines} == {24}  # no header, no timestamp
    assert [r.path for r in find_recordings(path.parent, MHEALTH)] == [path]
    converted = read_recording(path, MHEALTH)
    source = read_recording(subject103 / "pamap2" / "Protocol" / "subject103.dat", PAMAP2)
    # Stairs up (12) is MHEALTH's climbing (5); stairs down (13) has no MHEALTH label: null.
    assert set(converted.labels.tolist()) == {NULL, 5}
    up, down = (source.labels == 12).sum(), (source.labels == 13).sum()
    assert abs((converted.labels == 5).sum() - up / 2) <= 4  # half the rows, one per run
    assert (converted.labels == NULL).sum() > down / 2
    # Half the rate: the first run, filtered and decimated, follows the source every 20 ms.
    first = int(np.argmax(np.diff(source.timestamps) > 0.015)) + 1
    column = {name: i for i, name in enumerate(source.channels)}
    for mhealth, pamap2, scale in [
        ("arm_acc_x", "hand_acc16_x", 1.0),
        ("ankle_gyro_z", "ankle_gyro_z", 180 / np.pi),
        ("chest_acc_y", "chest_acc16_y", 1.0),
    ]:
        ours = converted.values[: first // 2 - 10, MHEALTH.channels.index(mhealth)]
        theirs = source.values[: first - 20 : 2, column[pamap2]] * scale
        kept = ~np.isnan(ours) & ~np.isnan(theirs)
        assert np.corrcoef(ours[kept], theirs[kept])[0, 1] > 0.9
        assert ours[kept].mean() == pytest.approx(theirs[kept].mean(), abs=0.02 * theirs.std())


def test_the_ecg_beats_at_the_recorded_heart_rate(subject103) -> None:
    source = read_recording(subject103 / "pamap2" / "Protocol" / "subject103.dat", PAMAP2)
    values, labels = mhealth_rows(source, seed=0)
    assert len(values) == len(labels) and values.shape[1] == 23
    lead2 = values[:, MHEALTH.channels.index("ecg_lead2")]
    climbing = np.flatnonzero(labels == 5)
    run = climbing[: np.argmax(np.diff(climbing) > 1) or len(climbing)]  # the first run
    peaks, _ = find_peaks(lead2[run], height=0.6, distance=int(0.25 * 50))
    seconds = len(run) / 50
    heart = source.values[:, source.channels.index("heart_rate_bpm")]
    taken = np.flatnonzero(source.labels == 12)[: 2 * len(run)]
    recorded = np.nanmean(heart[taken])
    assert len(peaks) / seconds * 60 == pytest.approx(recorded, rel=0.05)
    lead1 = values[run, MHEALTH.channels.index("ecg_lead1")]
    assert 0.4 < np.ptp(lead1) / np.ptp(lead2[run]) < 0.8  # lead I smaller than lead II


def test_synthetic_ecg_follows_a_changing_rate() -> None:
    """60 bpm for a minute, then 150 bpm: 60 and 150 R peaks (at 100 Hz, before halving)."""
    t = np.arange(12_000) / 100.0
    bpm = np.where(t < 60, 60.0, 150.0)
    ecg = synthetic_ecg(t, bpm, seed=3)
    counts = [len(find_peaks(ecg[part, 1], height=0.6, distance=25)[0]) for part in (
        slice(0, 6000), slice(6000, 12_000)
    )]  # fmt: skip
    assert abs(counts[0] - 60) <= 1 and abs(counts[1] - 150) <= 1
