"""Leave-one-subject-out: fold planning, pooled out-of-fold F1, and the command's checks.

The queue itself is the sweep's (tests/test_sweep.py runs it end to end through real DVC)."""

from __future__ import annotations

from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
import torch
from sklearn.metrics import f1_score

from harfusion.command import main as harfusion
from harfusion.data.description import load_description
from harfusion.errors import HarfusionError
from harfusion.evaluation.calibration import calibration_summary
from harfusion.experiments.ablations import Config
from harfusion.experiments.comparison_plots import loso_folds, loso_reliability
from harfusion.experiments.dvc_client import BASELINE_METRICS, METRICS, Experiment
from harfusion.experiments.loso.outputs import FoldOutputs
from harfusion.experiments.loso.plan import folds, subjects_of, untrainable
from harfusion.experiments.loso.render import markdown
from harfusion.experiments.loso.scores import summarize_folds
from harfusion.params import Params

ROOT = Path(__file__).resolve().parents[1]
HYBRID = Config("fusion-hybrid", "fusion", {"fusion": "hybrid"})


def test_every_subject_is_tested_once_and_validated_by_the_next() -> None:
    runs = folds(HYBRID, [101, 102, 103, 104], seeds=1)
    assert [r.name for r in runs] == [f"loso-fusion-hybrid-t{s}" for s in (101, 102, 103, 104)]
    pairs = [(r.overrides["split.test_subjects"], r.overrides["split.val_subjects"]) for r in runs]
    assert pairs == [([101], [102]), ([102], [103]), ([103], [104]), ([104], [101])]
    assert all(r.overrides["split.strategy"] == "subject" for r in runs)
    assert all(r.overrides["fusion"] == "hybrid" for r in runs)
    assert "-S" in runs[0].set_args() and "split.test_subjects=[101]" in runs[0].set_args()


def test_seeds_multiply_the_folds() -> None:
    runs = folds(HYBRID, [101, 102, 103], seeds=2, extra={"train.max_epochs": 3})
    assert [r.name for r in runs][:2] == [
        "loso-fusion-hybrid-t101-s1",
        "loso-fusion-hybrid-t101-s2",
    ]
    assert [r.overrides["seed"] for r in runs] == [1, 2] * 3
    assert all(r.overrides["train.max_epochs"] == 3 for r in runs)


def test_subjects_default_to_the_synthetic_set_and_need_three() -> None:
    params = Params()
    assert subjects_of(params, None) == list(range(101, 110))
    with pytest.raises(HarfusionError, match="at least 3"):
        subjects_of(params, [101, 102])
    real = Params.model_validate({"data": {"raw_dir": "/data/PAMAP2_Dataset"}})
    with pytest.raises(HarfusionError, match="--subjects"):
        subjects_of(real, None)


def _experiment(name: str, f1: float, baseline: float = 0.5) -> Experiment:
    metrics = {
        METRICS: {"accuracy": f1, "f1_macro": f1},
        BASELINE_METRICS: {"baseline": {"f1_macro": baseline}},
    }
    return Experiment(name, "0" * 40, "success", {"seed": 42}, metrics)


def _windows(train: dict[str, int], test: dict[str, int]) -> dict[str, dict[str, int]]:
    return {"train": train, "val": {}, "test": test}


def test_pooled_f1_pools_predictions_not_fold_scores() -> None:
    """Pooled F1 is computed over all folds' windows at once, which differs from the mean."""
    runs = folds(HYBRID, [101, 102, 103], seeds=1)
    everything = {"walking": 5, "running": 5, "cycling": 5}
    outputs = {
        runs[0].name: FoldOutputs(
            "actual,predicted\nwalking,walking\nwalking,walking\nrunning,walking\n",
            "actual,predicted\nwalking,walking\nwalking,running\nrunning,running\n",
            _windows(everything, {"walking": 2, "running": 1}),
        ),
        runs[1].name: FoldOutputs(
            "actual,predicted\nrunning,running\ncycling,cycling\n",
            "actual,predicted\nrunning,running\ncycling,running\n",
            _windows(everything, {"running": 1, "cycling": 1}),
        ),
    }
    finished = {
        runs[0].name: _experiment(runs[0].name, 0.4, baseline=0.6),
        runs[1].name: _experiment(runs[1].name, 1.0, baseline=0.3),
    }
    summary = summarize_folds(runs, finished, outputs)
    actual = ["walking", "walking", "running", "running", "cycling"]
    predicted = ["walking", "walking", "walking", "running", "cycling"]
    forest = ["walking", "running", "running", "running", "running"]
    deep, baseline = summary["pooled"]["deep"], summary["pooled"]["baseline"]
    assert deep["f1_macro"]["mean"] == pytest.approx(f1_score(actual, predicted, average="macro"))
    assert baseline["f1_macro"]["mean"] == pytest.approx(f1_score(actual, forest, average="macro"))
    assert deep["f1_macro_learnable"] == deep["f1_macro"]  # every class trained in every fold
    assert summary["learnable_classes"] == ["cycling", "running", "walking"]
    assert summary["excluded_classes"] == []
    walking = f1_score(actual, predicted, labels=["walking"], average=None)[0]
    assert deep["per_class_f1"]["walking"]["mean"] == pytest.approx(walking)
    assert summary["fold_f1_macro"] == {
        "mean": pytest.approx(0.7),
        "std": pytest.approx(0.4243, abs=1e-4),
        "n": 2,
    }
    assert summary["fold_baseline_f1_macro"]["mean"] == pytest.approx(0.45)
    assert summary["worst_fold_f1_macro"] == 0.4 and summary["worst_fold_baseline_f1_macro"] == 0.3
    assert [f["windows"] for f in summary["folds"]] == [3, 2]
    assert summary["missing"] == [runs[2].name]
    text = markdown(summary, HYBRID, Params(), {})
    assert "| all classes | " in text and "| 101 | 102 | 42 | 3 | 0.400 | 0.400 | 0.600 |" in text
    assert "-0.200" in text and "synthetic PAMAP2" in text
    assert "Not finished: loso-fusion-hybrid-t103" in text
    # the seed that ran (not the number of seeds), and no empty mapping for "no overrides"
    assert "- **Seeds:** 42 (each fold once per seed); **overrides:** none" in text
    assert "![Macro F1 per fold, both models](folds.png)" in text


def test_a_class_one_subject_holds_is_excluded_from_the_learnable_score() -> None:
    runs = folds(HYBRID, [101, 102, 103], seeds=1)
    outputs = {
        runs[0].name: FoldOutputs(
            "actual,predicted\nsitting,running\nrunning,running\n",
            None,
            _windows({"running": 9}, {"sitting": 1, "running": 1}),
        ),
        runs[1].name: FoldOutputs(
            "actual,predicted\nrunning,running\nrunning,sitting\n",
            None,
            _windows({"running": 9, "sitting": 4}, {"running": 2}),
        ),
    }
    finished = {r.name: _experiment(r.name, 0.5) for r in runs[:2]}
    summary = summarize_folds(runs, finished, outputs)
    assert summary["learnable_classes"] == ["running"]
    (excluded,) = summary["excluded_classes"]
    assert excluded["class"] == "sitting" and excluded["no_training_windows_in_folds"] == [101]
    assert excluded["test_subjects_with_it"] == [101]
    deep = summary["pooled"]["deep"]
    assert deep["f1_macro_learnable"]["mean"] == pytest.approx(
        f1_score(
            ["sitting", "running", "running", "running"],
            ["running", "running", "running", "sitting"],
            labels=["running"],
            average="macro",
        )
    )
    assert deep["f1_macro"]["mean"] < deep["f1_macro_learnable"]["mean"]
    # per fold too, running only: 101 called its sitting window running, 102 one running sitting
    assert [row["f1_macro_learnable"] for row in summary["folds"]] == pytest.approx([2 / 3, 2 / 3])
    assert summary["worst_fold_f1_macro_learnable"] == pytest.approx(2 / 3)
    assert "sitting" in deep["per_class_f1"]
    real = Params.model_validate({"data": {"raw_dir": "/data/real"}})
    text = markdown(summary, HYBRID, real, {"fusion": "hybrid", "train.max_epochs": 3})
    assert "`/data/real`" in text and "synthetic" not in text
    assert "- **sitting**: no training window in the fold(s) testing 101" in text
    assert '**overrides:** `fusion="hybrid"`, `train.max_epochs=3`' in text
    # the learnable list and the per-class table name the same classes
    assert "| learnable classes (running) |" in text
    assert "| running | yes | " in text and "| sitting | no | " in text


def test_learnable_classes_are_among_those_tested() -> None:
    """A class every fold trained on but none tested is in no score: not listed as learnable."""
    runs = folds(HYBRID, [101, 102, 103], seeds=1)
    everything = {"walking": 5, "running": 5, "sitting": 5}
    outputs = {
        runs[0].name: FoldOutputs(
            "actual,predicted\nwalking,walking\n", None, _windows(everything, {"walking": 1})
        )
    }
    summary = summarize_folds(runs, {runs[0].name: _experiment(runs[0].name, 1.0)}, outputs)
    assert summary["learnable_classes"] == ["walking"] and summary["excluded_classes"] == []


def test_the_per_fold_chart_draws_both_models(tmp_path: Path) -> None:
    rows = [
        {"test_subject": 101, "val_subject": 102, "seed": 1, "f1_macro": 0.8,
         "baseline_f1_macro": 0.7, "f1_macro_learnable": 0.9, "baseline_f1_macro_learnable": None},
        {"test_subject": 102, "val_subject": 101, "seed": 1, "f1_macro": 0.4,
         "baseline_f1_macro": 0.6, "f1_macro_learnable": 0.5, "baseline_f1_macro_learnable": 0.6},
    ]  # fmt: skip
    loso_folds(rows, "LOSO", tmp_path / "folds.png")
    height, width = matplotlib.image.imread(tmp_path / "folds.png").shape[:2]
    assert height > 200 and width > 800


def test_planning_names_the_folds_that_cannot_learn_a_class() -> None:
    rows = {101: {2: 5000, 5: 4000}, 102: {5: 3000}, 103: {5: 100, 12: 900}, 109: {24: 700}}
    missing = untrainable(rows, [101, 102, 103], 512, load_description("pamap2"))
    # sitting (2) only in 101; stairs (12) only in 103; 103's running is shorter than a window,
    # so the fold testing 101 (validating on 102) trains on no running either
    assert missing == {"sitting": [101, 103], "running": [101], "ascending stairs": [102, 103]}


def test_nothing_finished_is_an_error() -> None:
    runs = folds(HYBRID, [101, 102, 103], seeds=1)
    with pytest.raises(HarfusionError, match="no LOSO fold finished"):
        summarize_folds(runs, {}, {})


def test_dry_run_prints_the_queue_commands(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)  # no DVC remote here, so no `--pull`
    args = ["--config", "fusion-early", "--subjects", "101,102,103", "--dry-run"]
    args += ["--ablations", str(ROOT / "ablations.yaml"), "--params", str(ROOT / "params.yaml")]
    assert harfusion(["loso", *args]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4 and lines[-1].startswith("dvc queue start -j ")
    assert lines[0].startswith("dvc exp run --queue -n loso-fusion-early-t101 -S fusion=early")
    assert "-S 'split.val_subjects=[102]'" in lines[0]


def test_unknown_config_and_bad_override_fail_before_queueing(
    capsys: pytest.CaptureFixture[str],
) -> None:
    common = ["--ablations", str(ROOT / "ablations.yaml"), "--params", str(ROOT / "params.yaml")]
    with pytest.raises(SystemExit, match="1"):
        harfusion(["loso", "--config", "fusion-nope", "--dry-run", *common])
    assert "fusion-nope" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="1"):
        harfusion(["loso", "-S", "train.max_epochs=-1", "--dry-run", *common])
    assert "max_epochs" in capsys.readouterr().err


CLASSES = ["walking", "running", "sitting"]


def _predictions(rng: np.random.Generator, labels: list[int], sharpness: float) -> str:
    """An evaluate `predictions.csv`: validation rows (to be skipped) then the test windows,
    right four times in five with logits `sharpness` times a random draw's."""
    header = "split,actual,predicted," + ",".join(f"logit_{c}" for c in CLASSES)
    lines = [header, "val,walking,walking,5,0,0"]
    for label in labels:
        logits = rng.normal(size=3)
        logits[label if rng.random() < 0.8 else (label + 1) % 3] += 2.0
        logits *= sharpness
        predicted = CLASSES[int(np.argmax(logits))]
        lines.append(f"test,{CLASSES[label]},{predicted}," + ",".join(f"{v:.9g}" for v in logits))
    return "\n".join(lines) + "\n"


def _calibrated_folds(seeds: int) -> tuple[list, dict, dict]:
    """Two folds (and seeds) whose model files carry a temperature of 0.5 or 2."""
    rng = np.random.default_rng(0)
    runs = folds(HYBRID, [101, 102, 103], seeds=seeds)[: 2 * seeds]
    outputs, finished = {}, {}
    for index, run in enumerate(runs):
        labels = [int(v) for v in rng.integers(0, 3, 40 + 20 * (index // seeds))]
        predictions = _predictions(rng, labels, sharpness=3.0)
        confusion = "actual,predicted\n" + "".join(
            f"{row.split(',')[1]},{row.split(',')[2]}\n" for row in predictions.splitlines()[2:]
        )
        scores = {"class_names": CLASSES, "calibration": {"method": "temperature",
                  "temperature": 2.0 if index % 2 else 0.5}}  # fmt: skip
        counts = {c: 5 for c in CLASSES[:2]}
        outputs[run.name] = FoldOutputs(confusion, None, _windows(counts, {}), predictions, scores)
        finished[run.name] = Experiment(
            run.name, "0" * 40, "success", {"seed": run.overrides.get("seed", 1),
            "evaluate": {"ece_bins": 10}}, {METRICS: {"accuracy": 0.8, "f1_macro": 0.8}},
        )  # fmt: skip
    return runs, finished, outputs


def test_each_fold_carries_its_calibration_scores_as_evaluate_computes_them() -> None:
    runs, finished, outputs = _calibrated_folds(seeds=1)
    summary = summarize_folds(runs, finished, outputs)
    for row in summary["folds"]:
        out = outputs[row["experiment"]]
        test = [line.split(",") for line in out.predictions.splitlines()[2:]]
        logits = torch.tensor([[float(v) for v in fields[3:]] for fields in test])
        labels = torch.tensor([CLASSES.index(fields[1]) for fields in test])
        temperature = out.scores["calibration"]["temperature"]
        before = calibration_summary(logits, labels, 10)  # the fold's ece_bins
        after = calibration_summary(logits / temperature, labels, 10)
        for metric in ("ece", "nll", "brier"):
            assert row[f"{metric}_before"] == pytest.approx(before[metric], abs=1e-6)
            assert row[f"{metric}_after"] == pytest.approx(after[metric], abs=1e-6)
        assert row["temperature"] == temperature
        # sitting had no training window: its windows are counted
        assert row["untrained_windows"] == sum(fields[1] == "sitting" for fields in test) > 0
    calibration = summary["calibration"]
    assert calibration["bins"] == 10 and calibration["folds"] == 2
    rows = summary["folds"]
    assert calibration["fold_mean"]["ece_after"] == pytest.approx(
        np.mean([r["ece_after"] for r in rows])
    )
    # T = 0.5 sharpens logits already too sharp: NLL rises in that fold; T = 2 lowers it
    assert (
        rows[0]["nll_after"] > rows[0]["nll_before"]
        and rows[1]["nll_after"] < rows[1]["nll_before"]
    )
    assert calibration["folds_lower_after"]["nll"] == 1


def test_pooled_calibration_pools_windows_and_bootstraps_within_folds() -> None:
    """Pooled: one score over every fold's windows per seed (not the mean of the folds'), the
    mean over seeds; the interval brackets it, and the same folds give the same figures."""
    runs, finished, outputs = _calibrated_folds(seeds=2)
    summary = summarize_folds(runs, finished, outputs)
    pooled = summary["calibration"]["pooled"]
    assert pooled["seeds"] == [1, 2] and pooled["bootstrap"] == 1000
    assert pooled["windows"] == 40 + 60
    per_seed = []
    for seed in (1, 2):
        rows = [r for r in summary["folds"] if r["seed"] == seed]
        logits, labels = [], []
        for row in rows:
            out = outputs[row["experiment"]]
            test = [line.split(",") for line in out.predictions.splitlines()[2:]]
            fold = torch.tensor([[float(v) for v in fields[3:]] for fields in test])
            logits.append((fold / out.scores["calibration"]["temperature"]).log_softmax(1))
            labels.append(torch.tensor([CLASSES.index(fields[1]) for fields in test]))
        per_seed.append(calibration_summary(torch.cat(logits), torch.cat(labels), 10)["ece"])
    assert pooled["ece_after"]["value"] == pytest.approx(np.mean(per_seed), abs=1e-6)
    fold_mean = np.mean([r["ece_after"] for r in summary["folds"]])
    assert pooled["ece_after"]["value"] != pytest.approx(fold_mean, abs=1e-4)
    for metric in ("ece", "nll", "brier"):
        for when in ("before", "after", "change"):
            low, high = pooled[f"{metric}_{when}"]["ci95"]
            assert low <= pooled[f"{metric}_{when}"]["value"] <= high
        change = pooled[f"{metric}_change"]["value"]
        after, before = pooled[f"{metric}_after"]["value"], pooled[f"{metric}_before"]["value"]
        assert change == pytest.approx(after - before)
    again = summarize_folds(runs, finished, outputs)["calibration"]["pooled"]
    assert again == pooled


def test_loso_md_shows_calibration_per_fold_and_its_figure(tmp_path: Path) -> None:
    runs, finished, outputs = _calibrated_folds(seeds=1)
    summary = summarize_folds(runs, finished, outputs)
    text = markdown(summary, HYBRID, Params(), {})
    assert "## Calibration across people" in text
    ece = summary["calibration"]["pooled"]["ece_after"]
    low, high = ece["ci95"]
    assert "| ECE | " in text and f"{ece['value']:.3f} [{low:.3f}, {high:.3f}]" in text
    first = summary["folds"][0]
    assert (
        f"| 101 | 102 | 1 | 40 | {first['untrained_windows']} | 0.500 | {first['ece_before']:.3f} "
        f"| {first['ece_after']:.3f} |" in text
    )
    mean = summary["calibration"]["fold_mean"]
    assert f"| **mean** | | | | | | **{mean['ece_before']:.3f}** |" in text
    assert "![Reliability per fold, before and after calibration](calibration.png)" in text
    loso_reliability(summary, "LOSO", tmp_path / "calibration.png")
    height, width = matplotlib.image.imread(tmp_path / "calibration.png").shape[:2]
    assert height > 250 and width > 700
    assert set(summary["calibration"]["reliability"]) == {"101", "102", "all folds"}


def test_folds_of_an_older_harfusion_have_no_calibration() -> None:
    runs, finished, outputs = _calibrated_folds(seeds=1)
    for out in outputs.values():
        out.predictions = None
    summary = summarize_folds(runs, finished, outputs)
    assert summary["calibration"] is None and "ece_before" not in summary["folds"][0]
    assert "Calibration across people" not in markdown(summary, HYBRID, Params(), {})
