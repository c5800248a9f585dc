"""MHEALTH end to end: recordings in MHEALTH's published layout (made from the real PAMAP2 dev
recordings: IMUs moved to MHEALTH's placements, 50 Hz, an ECG synthesized) train and evaluate
through the whole DVC pipeline with only the dataset, its folder and the split overridden, and
every output speaks MHEALTH: its activities, its modalities, no trace of PAMAP2."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import torch

from harfusion.data.description import load_description
from tests.clones import HARFUSION, env, tiny_clone
from tests.datasets import convert_pamap2

REAL = Path(__file__).resolve().parents[2] / "shared" / "pamap2_dev"
MHEALTH = load_description("mhealth")
PAMAP2 = load_description("pamap2")
# Only the dataset, its folder and the split: MHEALTH's subjects are 1-10, so the subjects the
# split holds out are named too (the default 105 and 106 are PAMAP2's literature holdout).
OVERRIDES = {
    "data.dataset": "mhealth",
    "split.strategy": "subject",
    "split.val_subjects": "[1]",
    "split.test_subjects": "[6]",
}
# Smaller still than the clone's SMOKE params, so the run stays short.
TINY = {"train.max_epochs": "1", "baseline.trees": "10", "evaluate.mc_samples": "2"}
# What must never show in an MHEALTH run's outputs: PAMAP2's modalities, its columns, its
# activities (case-sensitive: MHEALTH's "Running" is not PAMAP2's "running").
PAMAP2_NAMES = [
    "PAMAP2",
    *(m for m in PAMAP2.modality_names if m not in MHEALTH.modalities),
    *(c for c in PAMAP2.channels if c not in MHEALTH.channels),
    *PAMAP2.labels.activities.values(),
]


def _texts(clone: Path) -> dict[str, str]:
    """Every text a person or a tool reads of the run: reports (plots' data included), the
    model card and the ONNX export's parity note."""
    texts = {
        str(path.relative_to(clone)): path.read_text()
        for folder in ("reports", "exports")
        for path in sorted((clone / folder).rglob("*"))
        if path.suffix in {".json", ".csv", ".md", ".tsv", ".yaml"}  # not Vega's own page
    }
    saved = torch.load(clone / "models" / "model.pt", weights_only=True, map_location="cpu")
    texts["models/model.pt (card)"] = json.dumps({k: v for k, v in saved.items() if k != "members"})
    return texts


@pytest.mark.slow
def test_mhealth_trains_and_evaluates_with_mhealth_names(tmp_path: Path) -> None:
    if not REAL.is_dir():
        pytest.skip("../shared/pamap2_dev is not beside this checkout")
    logs = convert_pamap2(REAL, tmp_path / "MHEALTHDATASET")
    assert [p.name for p in logs][:2] == ["mHealth_subject1.log", "mHealth_subject3.log"]
    clone = tiny_clone(tmp_path / "clone")
    sets = {**OVERRIDES, "data.raw_dir": str(tmp_path / "MHEALTHDATASET"), **TINY}
    args = [arg for key, value in sets.items() for arg in ("-S", f"{key}={value}")]
    result = subprocess.run(
        ["dvc", "exp", "run", *args], cwd=clone, env=env(clone), capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    scores = json.loads((clone / "reports/eval/scores.json").read_text())
    mhealth_names = set(MHEALTH.labels.activities.values())
    assert set(scores["class_names"]) <= mhealth_names and len(scores["class_names"]) >= 3
    missing = json.loads((clone / "reports/eval/missing_modality.json").read_text())
    assert len(missing) == 2 ** len(MHEALTH.modalities) - 1 == 15
    assert {m for r in missing.values() for m in r["modalities"]} == set(MHEALTH.modalities)
    saved = torch.load(clone / "models" / "model.pt", weights_only=True, map_location="cpu")
    assert saved["dataset"]["name"] == "MHEALTH"
    assert saved["preprocessing"]["sampling_rate_hz"] == 50.0
    assert saved["kinds"]["ecg"] == "waveform"
    assert saved["channel_names"]["ecg"] == ["ecg_lead1", "ecg_lead2"]
    assert saved["channel_names"]["imu_chest"] == [f"chest_acc_{a}" for a in "xyz"]
    dataset = json.loads((clone / "data/processed_tensors/dataset.json").read_text())
    assert dataset["name"] == "MHEALTH" and dataset["clock"] == "implicit"

    texts = _texts(clone)
    assert "reports/eval/confusion.csv" in texts and "reports/baseline/scores.json" in texts
    for where, text in texts.items():
        found = [name for name in PAMAP2_NAMES if name in text]
        assert not found, f"{where} names {found}"
    assert any(name in texts["reports/eval/confusion.csv"] for name in mhealth_names)

    # predict reads a new MHEALTH recording as the model's description says, torch and ONNX
    for model in ("models/model.pt", "exports/model.onnx"):
        out = tmp_path / f"{Path(model).suffix[1:]}.csv"
        predict = [*HARFUSION, "predict", str(logs[-1]), "--model", model, "--out", str(out)]
        result = subprocess.run(predict, cwd=clone, env=env(clone), capture_output=True, text=True)
        assert result.returncode == 0, result.stderr[-2000:]
        header = out.read_text().splitlines()[0].split(",")
        assert [c for c in header if c.startswith("p_")] == [
            "p_" + name.replace(" ", "_") for name in scores["class_names"]
        ]
        assert not [name for name in PAMAP2_NAMES if name in out.read_text()]
