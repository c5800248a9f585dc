"""Stage scripts turn bad input into one clear line on stderr, exit 1, and write nothing."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from harfusion.cli import run_stage
from harfusion.params import Params
from tests.helpers import write_recording

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
