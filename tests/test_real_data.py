"""Real PAMAP2 recordings through the pipeline's own functions, so real-format regressions fail
CI. Skipped when `../shared/pamap2_dev` is not beside the checkout (a user's clone)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harfusion.data.preprocess import preprocess
from harfusion.data.splits import write_splits
from harfusion.data.tensorize import tensorize
from harfusion.evaluation.baseline import run_baseline
from harfusion.evaluation.evaluate import evaluate
from harfusion.params import Params, PreprocessParams
from harfusion.training.fit import fit
from tests.helpers import PAMAP2, TINY_MODEL

REAL = Path(__file__).resolve().parents[2] / "shared" / "pamap2_dev"
SUBJECTS = (101, 108)  # together: running, stairs up and down, rope jumping


@pytest.fixture
def real_raw(tmp_path: Path) -> Path:
    if not (REAL / "Protocol").is_dir():
        pytest.skip(f"{REAL} is not beside this checkout (real PAMAP2 recordings)")
    raw = tmp_path / "raw" / "Protocol"
    raw.mkdir(parents=True)
    for subject in SUBJECTS:  # linked, not copied: the recordings stay outside the repository
        (raw / f"subject{subject}.dat").symlink_to(REAL / "Protocol" / f"subject{subject}.dat")
    return raw.parent


def test_two_real_subjects_preprocess_tensorize_train_and_evaluate(
    real_raw: Path, tmp_path: Path
) -> None:
    params = Params.model_validate(
        {
            "chunk_size": 256,
            "model": TINY_MODEL,
            "train": {"max_epochs": 1, "accelerator": "cpu"},
            "baseline": {"trees": 20},
            "evaluate": {"mc_samples": 2, "latency_batches": 2},
        }
    )
    shards = preprocess(real_raw, tmp_path / "processed", PreprocessParams(), PAMAP2)
    assert {s["subject"] for s in shards} == set(SUBJECTS)
    write_splits(tmp_path / "processed", tmp_path / "splits", params.split)
    manifest = tensorize(
        tmp_path / "splits", tmp_path / "processed", tmp_path / "tensors", params.chunk_size, 256
    )
    assert manifest["class_names"] == [
        "running",
        "ascending stairs",
        "descending stairs",
        "rope jumping",
    ]
    summary = fit(params, tmp_path / "tensors", tmp_path / "models", tmp_path / "reports" / "train")
    assert summary["epochs"] == 1
    metrics = evaluate(params, tmp_path / "tensors", tmp_path / "models", tmp_path / "eval")
    forest = run_baseline(params, tmp_path / "tensors", tmp_path / "baseline")
    assert metrics["test_windows"] == forest["test_windows"] > 0
    assert 0.0 <= metrics["f1_macro"] <= 1.0 and 0.0 <= forest["f1_macro"] <= 1.0
    stats = json.loads((tmp_path / "tensors" / "norm_stats.json").read_text())
    assert all(std > 0 for std in stats["std"])
