"""Stage scripts turn bad input into one clear line on stderr, exit 1, and write nothing."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from harfusion.cli import run_stage
from harfusion.data.preprocess import preprocess
from harfusion.data.splits import write_splits
from harfusion.data.tensorize import tensorize
from harfusion.layout import MODEL_FILE, MODELS, PROCESSED, SPLITS, TENSORS
from harfusion.params import Params, PreprocessParams, SplitParams
from tests.helpers import PAMAP2, TINY, merge, write_recording

ROOT = Path(__file__).resolve().parents[1]


def _stage(workdir: Path, name: str) -> subprocess.CompletedProcess:
    env = os.environ | {"PYTHONPATH": str(ROOT / "src")}
    return subprocess.run(
        [sys.executable, str(ROOT / "stages" / f"{name}.py")],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_preprocess_bad_row(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    path = write_recording(raw / "Protocol" / "subject103.dat", [(1, 40)])
    lines = path.read_text().splitlines()
    lines[6] = lines[6].replace(" ", " x", 1)
    path.write_text("\n".join(lines) + "\n")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"data": {"raw_dir": str(raw)}}))
    result = _stage(tmp_path, "preprocess")
    assert result.returncode == 1
    assert f"error: {path}:7: field 'activity_id' is not a number" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "data").exists() or not any((tmp_path / "data").rglob("*.csv"))


def test_param_typo_stops_every_stage(tmp_path: Path) -> None:
    (tmp_path / "params.yaml").write_text("fusion: early\ntrain:\n  max_epoch: 3\n")
    result = _stage(tmp_path, "check_params")
    assert result.returncode == 1
    assert "train.max_epoch: unknown key" in result.stderr


def test_preprocess_value_no_sensor_produces(tmp_path: Path) -> None:
    """One 1e300 used to pass preprocess, split and tensorize and blank its channel."""
    raw = tmp_path / "raw"
    path = write_recording(raw / "Protocol" / "subject101.dat", [(1, 40)])
    lines = path.read_text().splitlines()
    tokens = lines[11].split(" ")
    tokens[4] = "1e300"  # hand_acc16_x
    lines[11] = " ".join(tokens)
    path.write_text("\n".join(lines) + "\n")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"data": {"raw_dir": str(raw)}}))
    result = _stage(tmp_path, "preprocess")
    assert result.returncode == 1
    message = f"error: {path}:12: hand_acc16_x: 1e300 m/s² out of range [-200, 200]"
    assert [line for line in result.stderr.splitlines() if "error" in line] == [message]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "data").exists() or not any((tmp_path / "data").rglob("*.csv"))


def test_an_os_error_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    """A read-only `reports/` (or a full disk) ended a stage run in a traceback."""

    def main(params: Params) -> None:
        raise PermissionError(13, "Permission denied", "reports/eval/.metrics.json.x.tmp")

    with pytest.raises(SystemExit) as info:
        run_stage(main, str(ROOT / "params.yaml"))
    assert info.value.code == 1
    err = capsys.readouterr().err
    assert err == "error: reports/eval/.metrics.json.x.tmp: Permission denied\n"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_stage_into_read_only_reports(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    for folder in ("eval", "baseline", "train"):
        (reports / folder).mkdir(parents=True)
    (reports / "eval" / "scores.json").write_text('{"per_class_f1": {}, "class_names": []}')
    (reports / "eval" / "missing_modality.json").write_text('{"all": {"modalities": ["a"]}}')
    for folder in ("eval", "baseline"):
        (reports / folder / "confusion.csv").write_text("actual,predicted\n")
    (reports / "train" / "epochs.csv").write_text("epoch,train_loss,kept\n1,0.5,1\n")
    (tmp_path / "params.yaml").write_text("{}\n")
    (tmp_path / "reports").chmod(0o555)
    try:
        result = _stage(tmp_path, "analyze")
    finally:
        (tmp_path / "reports").chmod(0o755)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("error: ") and "Permission denied" in result.stderr


def test_missing_raw_dir_is_named_before_dvc_checks_dependencies(tmp_path: Path) -> None:
    """`dvc repro` runs check_params first; DVC's own refusal of preprocess's missing dependency
    was `[Errno 2] No such file or directory`, naming no key."""
    missing = tmp_path / "PAMAP2_Dataset"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"data": {"raw_dir": str(missing)}}))
    expected = f"error: data.raw_dir: {missing} is not a directory; point it at the folder"
    for stage in ("check_params", "preprocess"):
        result = _stage(tmp_path, stage)
        assert result.returncode == 1
        assert result.stderr.startswith(expected), result.stderr
        assert len(result.stderr.splitlines()) == 1
    (tmp_path / "params.yaml").write_text("{}\n")  # the synthetic default: synthesize makes it
    assert _stage(tmp_path, "check_params").returncode == 0


SECONDS = "data.synthetic.seconds_per_activity"


@pytest.mark.parametrize(
    ("params", "key"),
    [
        ({"data": {"synthetic": {"subjects": [-5]}}}, "data.synthetic.subjects.0"),
        ({"data": {"synthetic": {"seconds_per_activity": float("inf")}}}, SECONDS),
        ({"data": {"synthetic": {"seconds_per_activity": 1e9}}}, SECONDS),
        # (heart rate's median window is the description's now: tests/test_description.py)
        ({"data": {"dataset": "/etc/mine.yaml"}}, "data.dataset"),
        ({"split": {"test_subjects": [2**40]}}, "split.test_subjects.0"),
        ({"train": {"gradient_clip_norm": float("nan")}}, "train.gradient_clip_norm"),
    ],
    ids=["negative-subject", "inf-seconds", "huge-seconds", "outside-datasets", "huge-id", "nan"],
)
def test_absurd_params_stop_every_stage_in_one_line(tmp_path: Path, params: dict, key: str) -> None:
    """These validated, then ended in numpy's ValueError, OverflowError or MemoryError."""
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    for stage in ("check_params", "synthesize"):
        result = _stage(tmp_path, stage)
        assert result.returncode == 1
        assert result.stderr.startswith(f"error: params.yaml: {key}: "), result.stderr
        assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.stderr


def test_a_subject_id_beyond_int32_is_one_line(tmp_path: Path) -> None:
    """`subject99999999999.dat` overflowed the int32 subject column in a traceback."""
    raw = tmp_path / "raw"
    path = write_recording(raw / "Protocol" / "subject99999999999.dat", [(1, 40)])
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"data": {"raw_dir": str(raw)}}))
    result = _stage(tmp_path, "preprocess")
    assert result.returncode == 1
    assert result.stderr == (
        f"error: {path}: subject id 99999999999 is too large (at most 2147483647)\n"
    )


def test_a_diverging_training_exits_non_zero_in_one_line(tmp_path: Path) -> None:
    """The train stage with `train.learning_rate: 1e30`: exit 0 and a NaN model before."""
    raw = tmp_path / "raw"
    for subject in range(101, 106):
        write_recording(raw / "Protocol" / f"subject{subject}.dat", [(1, 200), (4, 200)], subject)
    preprocess(raw, tmp_path / PROCESSED, PreprocessParams(sessions=["Protocol"]), PAMAP2)
    write_splits(tmp_path / PROCESSED, tmp_path / SPLITS, SplitParams())
    tensorize(tmp_path / SPLITS, tmp_path / PROCESSED, tmp_path / TENSORS, 64, 64)
    params = merge(TINY, {"train": {"learning_rate": 1e30, "max_epochs": 1}})
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    result = _stage(tmp_path, "train")
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and "Traceback" not in result.stderr, result.stderr
    assert re.match(r"error: train: the \w+ loss became nan in epoch 0: ", errors[0]), errors
    assert not (tmp_path / MODELS / MODEL_FILE).exists()
