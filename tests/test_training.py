import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from harfusion.errors import HarfusionError
from harfusion.params import Params
from harfusion.training import fit, load_model

ROOT = Path(__file__).resolve().parents[1]
TINY: dict[str, Any] = {
    "chunk_size": 64,
    "model": {"encoder": "cnn", "embed_dim": 16, "conv_channels": [8, 16], "conv_strides": [4, 4]},
    "train": {"max_epochs": 2, "accelerator": "cpu", "jitter_steps": 4},
    "dataset": {"batch_size": 16},
}


def test_fit_exports_best_model_and_dvclive_metrics(tensors: Path) -> None:
    params = Params.model_validate(TINY)
    summary = fit(params, tensors / "tensors", tensors / "models", tensors / "reports" / "train")
    assert summary["epochs"] == 2
    metrics = json.loads((tensors / "reports" / "train" / "metrics.json").read_text())
    assert {"train", "val"} <= set(metrics)
    assert 0.0 <= metrics["val"]["acc"] <= 1.0
    curve = (tensors / "reports" / "train" / "plots" / "metrics" / "val" / "loss.tsv").read_text()
    assert len(curve.splitlines()) == 3  # header + one row per epoch
    model, saved = load_model(params, tensors / "models")
    assert saved["classes"] == [1, 4, 5]
    assert saved["summary"]["best_val_loss"] == pytest.approx(
        min(float(line.split("\t")[-1]) for line in curve.splitlines()[1:]), rel=1e-4
    )
    assert not model.training
    with pytest.raises(HarfusionError, match="dvc repro train"):
        load_model(params.model_copy(update={"fusion": "early"}), tensors / "models")


def test_fit_is_deterministic(tensors: Path) -> None:
    params = Params.model_validate(TINY | {"train": TINY["train"] | {"max_epochs": 1}})
    states = []
    for run in ("a", "b"):
        fit(params, tensors / "tensors", tensors / run, tensors / f"reports-{run}")
        states.append(torch.load(tensors / run / "model.pt", weights_only=True)["state_dict"])
    assert states[0].keys() == states[1].keys()
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])


def test_two_process_ddp_on_cpu(tensors: Path) -> None:
    """Lightning's own DDP launcher re-runs the stage script as a second process."""
    params = TINY | {
        "train": TINY["train"] | {"max_epochs": 1, "strategy": "ddp", "devices": 2},
    }
    (tensors / "params.yaml").write_text(yaml.safe_dump(params))
    (tensors / "data").mkdir()
    (tensors / "data" / "processed_tensors").symlink_to(tensors / "tensors")
    env = os.environ | {"OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT / "src")}
    result = subprocess.run(
        [sys.executable, str(ROOT / "stages" / "train.py")],
        cwd=tensors,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "All distributed processes registered. Starting with 2 processes" in result.stderr
    saved = torch.load(tensors / "models" / "model.pt", weights_only=True)
    assert saved["classes"] == [1, 4, 5] and saved["summary"]["epochs"] == 1
