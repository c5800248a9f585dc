"""Choosing a dataset (`data.dataset`): the sweep and LOSO plan over its modalities, classes
and subjects; `harfusion check-dataset` says what its recordings hold; a wrong choice or a
broken description stops in one line naming the file and key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from harfusion.command import main as harfusion
from harfusion.data.description import load_description
from harfusion.experiments.ablations import dataset_modalities, expand, load_ablations
from harfusion.experiments.loso.plan import activities_by_subject, untrainable
from harfusion.params import Params
from tests.datasets import write_mhealth_log

ROOT = Path(__file__).resolve().parents[1]
MHEALTH = load_description("mhealth")
COMMON = ["--ablations", str(ROOT / "ablations.yaml"), "--params", str(ROOT / "params.yaml")]


def test_the_single_modality_ablations_are_the_datasets_modalities() -> None:
    modalities = dataset_modalities(ROOT / "params.yaml", {"data.dataset": "mhealth"})
    assert modalities == ("imu_chest", "ecg", "imu_ankle", "imu_arm")
    single = load_ablations(ROOT / "ablations.yaml", modalities).select(["single"])
    assert [c.name for c in single] == [f"single-{m}" for m in modalities]
    (ecg,) = [run for run in expand(single, 1) if run.name == "single-ecg"]
    assert ecg.set_args() == ["-S", "fusion=early", "-S", "modalities=[ecg]"]
    pamap2 = dataset_modalities(ROOT / "params.yaml", {})
    names = [c.name for c in load_ablations(ROOT / "ablations.yaml", pamap2).configs]
    assert len(names) == 13 and "single-heart_rate" in names and "single-ecg" not in names


def test_sweep_plans_mhealths_single_modalities(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["sweep", "--dry-run", "--only", "single", "-S", "data.dataset=mhealth", *COMMON]
    assert harfusion(argv) == 0
    queued = [line for line in capsys.readouterr().out.splitlines() if "--queue" in line]
    assert [line.split(" -n ")[1].split()[0] for line in queued] == [
        "single-imu_chest",
        "single-ecg",
        "single-imu_ankle",
        "single-imu_arm",
    ]


def test_loso_plans_with_mhealths_subjects_and_class_names(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = tmp_path / "MHEALTHDATASET"
    write_mhealth_log(raw / "mHealth_subject1.log", [(0, 50), (2, 900), (5, 900)])
    write_mhealth_log(raw / "mHealth_subject2.log", [(5, 900), (11, 900)], seed=1)
    write_mhealth_log(raw / "mHealth_subject3.log", [(5, 900), (11, 900)], seed=2)
    params = Params.model_validate({"data": {"dataset": "mhealth", "raw_dir": str(raw)}})
    rows = activities_by_subject(params)
    assert rows == {1: {2: 900, 5: 900}, 2: {5: 900, 11: 900}, 3: {5: 900, 11: 900}}
    missing = untrainable(rows, [1, 2, 3], 512, MHEALTH)
    # the fold testing 2 validates on 3, so it trains on 1 alone: no running there
    assert missing == {"Sitting and relaxing": [1, 3], "Running": [2]}
    argv = ["loso", "--subjects", "1,2,3", "--dry-run", "-S", "data.dataset=mhealth"]
    assert harfusion([*argv, "-S", f"data.raw_dir={raw}", *COMMON]) == 0
    out, err = capsys.readouterr()
    assert "'Sitting and relaxing' has no training window" in err
    assert "-S data.dataset=mhealth" in out and "loso-base-t1" in out


def test_check_dataset_says_what_the_recordings_hold(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = tmp_path / "MHEALTHDATASET"
    write_mhealth_log(raw / "mHealth_subject1.log", [(0, 100), (4, 500)])
    write_mhealth_log(raw / "mHealth_subject10.log", [(10, 300)], seed=1)
    (raw / "README.txt").write_text("notes\n")
    assert harfusion(["check-dataset", "mhealth", "--raw-dir", str(raw)]) == 0
    out, err = capsys.readouterr()
    assert "MHEALTH, 50 Hz, 12 activities" in out and "ecg (ECG, waveform, 2 channels)" in out
    assert "subject 1, session main, 600 rows, 50 Hz measured" in out
    assert "2 recordings: 2 subjects (1, 10), sessions main, 900 rows" in out
    assert "activity 4 Walking: 500 rows (subjects 1)" in out
    assert "ignored 0 null: 100 rows (subjects 1)" in out
    assert "README.txt: not named mHealth_subject<id>.log" in err


def test_check_dataset_names_the_bad_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = tmp_path / "MHEALTHDATASET"
    path = write_mhealth_log(raw / "mHealth_subject1.log", [(4, 20)])
    lines = path.read_text().splitlines()
    lines[6] += "\t1.0"  # a field too many
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(SystemExit, match="1"):
        harfusion(["check-dataset", "mhealth", "--raw-dir", str(raw)])
    err = capsys.readouterr().err
    assert f"{path}:7: expected 24 tab-separated fields, found 25" in err


def _check_params(clone: Path, params: dict) -> subprocess.CompletedProcess[str]:
    (clone / "params.yaml").write_text(yaml.safe_dump(params))
    return subprocess.run(
        [sys.executable, str(ROOT / "stages" / "check_params.py")],
        cwd=clone,
        env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
    )


def test_a_bad_description_stops_the_run_naming_file_and_key(tmp_path: Path) -> None:
    mine = yaml.safe_load((ROOT / "src/harfusion/data/datasets/mhealth.yaml").read_text())
    mine["modalities"]["ecg"]["groups"]["ecg"]["vector"] = True
    (tmp_path / "datasets").mkdir()
    (tmp_path / "datasets" / "mine.yaml").write_text(yaml.safe_dump(mine))
    (tmp_path / "raw").mkdir()
    result = _check_params(tmp_path, {"data": {"dataset": "datasets/mine.yaml", "raw_dir": "raw"}})
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: datasets/mine.yaml: modalities.ecg.groups.ecg.vector: a 3-axis vector has 3 "
        "channels, not 2 (got True)"
    ]


def test_a_description_outside_datasets_is_refused_with_the_fix(tmp_path: Path) -> None:
    result = _check_params(tmp_path, {"data": {"dataset": str(tmp_path / "mine.yaml")}})
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert "data.dataset: a description of your own goes in datasets/ (e.g. " in line
    assert "datasets/mine.yaml) so that DVC reruns what an edit of it changes" in line


@pytest.mark.parametrize(
    ("params", "why"),
    [
        ({"modalities": ["imu_hand", "ecg"]}, "modalities: ecg not in PAMAP2 (its modalities: "),
        (
            {"dataset": {"channel_groups": {"waveform": ["ecg"]}}},
            "dataset.channel_groups.waveform: PAMAP2 has no waveform modality",
        ),
        (
            {"dataset": {"channel_groups": {"motion": ["acc"]}}},
            "dataset.channel_groups.motion: no motion modality of PAMAP2 has acc",
        ),
        ({"data": {"dataset": "mhealt"}}, "data.dataset: 'mhealt' is not a shipped dataset"),
    ],
)
def test_params_are_checked_against_the_description(tmp_path: Path, params: dict, why: str) -> None:
    result = _check_params(tmp_path, params)
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert why in line
