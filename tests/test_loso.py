"""Leave-one-subject-out: fold planning, pooled out-of-fold F1, and the command's checks.

The queue itself is the sweep's (tests/test_sweep.py runs it end to end through real DVC)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sklearn.metrics import f1_score

from harfusion import loso
from harfusion.ablations import Config
from harfusion.errors import HarfusionError
from harfusion.experiments import METRICS, Experiment
from harfusion.params import Params

ROOT = Path(__file__).resolve().parents[1]
HYBRID = Config("fusion-hybrid", "fusion", {"fusion": "hybrid"})


def test_every_subject_is_tested_once_and_validated_by_the_next() -> None:
    runs = loso.folds(HYBRID, [101, 102, 103, 104], seeds=1)
    assert [r.name for r in runs] == [f"loso-fusion-hybrid-t{s}" for s in (101, 102, 103, 104)]
    pairs = [(r.overrides["split.test_subjects"], r.overrides["split.val_subjects"]) for r in runs]
    assert pairs == [([101], [102]), ([102], [103]), ([103], [104]), ([104], [101])]
    assert all(r.overrides["split.strategy"] == "subject" for r in runs)
    assert all(r.overrides["fusion"] == "hybrid" for r in runs)
    assert "-S" in runs[0].set_args() and "split.test_subjects=[101]" in runs[0].set_args()


def test_seeds_multiply_the_folds() -> None:
    runs = loso.folds(HYBRID, [101, 102, 103], seeds=2, extra={"train.max_epochs": 3})
    assert [r.name for r in runs][:2] == [
        "loso-fusion-hybrid-t101-s1",
        "loso-fusion-hybrid-t101-s2",
    ]
    assert [r.overrides["seed"] for r in runs] == [1, 2] * 3
    assert all(r.overrides["train.max_epochs"] == 3 for r in runs)


def test_subjects_default_to_the_synthetic_set_and_need_three() -> None:
    params = Params()
    assert loso.subjects_of(params, None) == list(range(101, 110))
    with pytest.raises(HarfusionError, match="at least 3"):
        loso.subjects_of(params, [101, 102])
    real = Params.model_validate({"data": {"raw_dir": "/data/PAMAP2_Dataset"}})
    with pytest.raises(HarfusionError, match="--subjects"):
        loso.subjects_of(real, None)


def _experiment(name: str, f1: float) -> Experiment:
    return Experiment(
        name, "0" * 40, "success", {"seed": 42}, {METRICS: {"accuracy": f1, "f1_macro": f1}}
    )


def test_pooled_f1_pools_predictions_not_fold_scores() -> None:
    """Pooled F1 is computed over all folds' windows at once, which differs from the mean."""
    runs = loso.folds(HYBRID, [101, 102, 103], seeds=1)
    confusion = {
        runs[0].name: "actual,predicted\nwalking,walking\nwalking,walking\nrunning,walking\n",
        runs[1].name: "actual,predicted\nrunning,running\ncycling,cycling\n",
    }
    finished = {
        runs[0].name: _experiment(runs[0].name, 0.4),
        runs[1].name: _experiment(runs[1].name, 1.0),
    }
    summary = loso.summarize_folds(runs, finished, confusion)
    actual = ["walking", "walking", "running", "running", "cycling"]
    predicted = ["walking", "walking", "walking", "running", "cycling"]
    assert summary["pooled_f1_macro"]["mean"] == pytest.approx(
        f1_score(actual, predicted, average="macro")
    )
    assert summary["fold_f1_macro"] == {
        "mean": pytest.approx(0.7),
        "std": pytest.approx(0.4243, abs=1e-4),
        "n": 2,
    }
    assert [f["windows"] for f in summary["folds"]] == [3, 2]
    assert summary["missing"] == [runs[2].name]
    text = loso.markdown(summary, HYBRID, Params(), seeds=1)
    assert "- **Pooled out-of-fold macro F1:** " in text and "| 101 | 102 | 42 | 3 |" in text
    assert "Not finished: loso-fusion-hybrid-t103" in text


def test_nothing_finished_is_an_error() -> None:
    runs = loso.folds(HYBRID, [101, 102, 103], seeds=1)
    with pytest.raises(HarfusionError, match="no LOSO fold finished"):
        loso.summarize_folds(runs, {}, {})


def test_dry_run_prints_the_queue_commands(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--config", "fusion-early", "--subjects", "101,102,103", "--dry-run"]
    args += ["--ablations", str(ROOT / "ablations.yaml"), "--params", str(ROOT / "params.yaml")]
    assert loso.main(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("dvc exp run --queue -n loso-fusion-early-t101 -S fusion=early")
    assert "-S 'split.val_subjects=[102]'" in lines[0]


def test_unknown_config_and_bad_override_fail_before_queueing(
    capsys: pytest.CaptureFixture[str],
) -> None:
    common = ["--ablations", str(ROOT / "ablations.yaml"), "--params", str(ROOT / "params.yaml")]
    assert loso.main(["--config", "fusion-nope", "--dry-run", *common]) == 1
    assert "fusion-nope" in capsys.readouterr().err
    assert loso.main(["-S", "train.max_epochs=-1", "--dry-run", *common]) == 1
    assert "max_epochs" in capsys.readouterr().err
