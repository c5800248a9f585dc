import csv
import json
import os
import pickle
import re
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from harfusion.data.dataset import ShardWindows
from harfusion.errors import HarfusionError
from harfusion.evaluation.evaluate import evaluate, predict
from harfusion.models.calibrator import calibration_entry
from harfusion.models.model_file import load_model
from harfusion.params import Params
from harfusion.training.classifier import FusionClassifier
from harfusion.training.datamodule import WindowDataModule
from harfusion.training.fit import (
    balanced_class_weights,
    fingerprint,
    fit,
    make_module,
    rewind_log,
)
from tests.helpers import TINY

ROOT = Path(__file__).resolve().parents[1]


def _epochs(reports: Path) -> list[dict[str, str]]:
    with (reports / "epochs.csv").open(newline="") as table:
        return list(csv.DictReader(table))


def test_fit_exports_best_model_and_the_kept_epochs_metrics(
    tensors: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    params = Params.model_validate(TINY | {"train": TINY["train"] | {"max_epochs": 3}})
    reports = tensors / "reports" / "train"
    summary = fit(params, tensors / "tensors", tensors / "models", reports)
    assert summary["epochs"] == 3
    rows = _epochs(reports)  # one row per epoch (DVCLive's log holds each epoch twice)
    assert [row["epoch"] for row in rows] == ["1", "2", "3"]
    assert list(rows[0]) == ["epoch", "train_loss", "val_loss", "val_acc", "val_f1_macro", "kept"]
    (kept,) = [row for row in rows if row["kept"] == "1"]
    best = min(rows, key=lambda row: float(row["val_loss"]))
    assert kept is best and summary["kept_epoch"] == int(kept["epoch"])
    # the training metrics DVC shows are the kept checkpoint's, not the last epoch's
    metrics = json.loads((reports / "metrics.json").read_text())
    assert metrics == {
        "kept_epoch": int(kept["epoch"]),
        "val_loss": float(kept["val_loss"]),
        "val_f1_macro": float(kept["val_f1_macro"]),
    }
    assert sorted(p.name for p in reports.iterdir()) == [
        "epochs.csv",
        "members.csv",
        "metrics.json",
    ]
    # one line per epoch, what a queued experiment's log shows (no progress bar there)
    lines = [line for line in capsys.readouterr().out.splitlines() if "train: epoch" in line]
    assert [line.split(":")[1] for line in lines] == [" epoch 1/3", " epoch 2/3", " epoch 3/3"]
    assert f"val loss {float(rows[1]['val_loss']):.4f}" in lines[1]
    assert [line.endswith(", kept") for line in lines] == [
        float(row["val_loss"]) == min(float(r["val_loss"]) for r in rows[: i + 1])
        for i, row in enumerate(rows)
    ]
    predictor, saved = load_model(tensors / "models" / "model.pt")
    assert saved["classes"] == [1, 4, 5]
    assert saved["summary"]["best_val_loss"] == pytest.approx(float(kept["val_loss"]), rel=1e-4)
    assert not predictor.training
    # Lightning's own checkpoint rebuilds the module from itself: hyperparameters as plain data
    module = FusionClassifier.load_from_checkpoint(
        tensors / "models" / "checkpoints" / "best.ckpt", map_location="cpu"
    )
    assert module.params == params
    kept_weights = predictor.ensemble.members[0].state_dict()
    assert kept_weights.keys() == module.model.state_dict().keys()
    assert all(torch.equal(module.model.state_dict()[k], v) for k, v in kept_weights.items())


def test_an_ensembles_first_member_is_the_single_model_and_the_others_have_their_own_seeds(
    tensors: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`train.ensemble: 2`: member 1 is trained exactly as one model is (same seed, same
    weights, same epochs table), member 2 with seed + 1000; the file holds both and the
    temperature is fitted on their averaged validation prediction."""
    one = Params.model_validate(TINY | {"train": TINY["train"] | {"max_epochs": 2}})
    two = one.model_copy(update={"train": one.train.model_copy(update={"ensemble": 2})})
    fit(one, tensors / "tensors", tensors / "one", tensors / "reports-one")
    capsys.readouterr()
    summary = fit(two, tensors / "tensors", tensors / "two", tensors / "reports-two")
    out = capsys.readouterr().out
    assert "train: member 1/2: epoch 1/2: " in out and "train: member 2/2: epoch 2/2: " in out
    assert [m["seed"] for m in summary["members"]] == [42, 1042]
    single = torch.load(tensors / "one" / "model.pt", weights_only=True)
    saved = torch.load(tensors / "two" / "model.pt", weights_only=True)
    assert saved["ensemble"]["members"] == 2 and len(saved["members"]) == 2
    first, second = saved["members"]
    assert all(torch.equal(first[k], v) for k, v in single["members"][0].items())
    assert not all(torch.equal(second[k], v) for k, v in first.items())
    for name in ("epochs.csv", "metrics.json"):  # member 1's, as one model's
        ours = (tensors / "reports-two" / name).read_text()
        assert ours == (tensors / "reports-one" / name).read_text(), name
    with (tensors / "reports-two" / "members.csv").open(newline="") as table:
        members = list(csv.DictReader(table))
    assert [(m["member"], m["seed"]) for m in members] == [("1", "42"), ("2", "1042")]
    assert [int(m["kept_epoch"]) for m in members] == [m["kept_epoch"] for m in summary["members"]]
    predictor, _ = load_model(tensors / "two" / "model.pt")
    data = WindowDataModule(tensors / "tensors", two)
    val = predict(predictor.ensemble, data.loader("val"))
    expected = calibration_entry(val.logits, val.labels, data.class_counts(), "trained_classes")
    assert saved["calibration"]["temperature"] == pytest.approx(expected["temperature"], rel=1e-5)
    assert saved["calibration"]["windows"] == len(val.labels)
    assert (tensors / "two" / "checkpoints" / "best-member2.ckpt").exists()


def test_monitor_val_f1_keeps_the_best_f1_epoch(tensors: Path) -> None:
    train = TINY["train"] | {"max_epochs": 3, "patience": 3, "monitor": "val_f1_macro"}
    params = Params.model_validate(TINY | {"train": train})
    summary = fit(params, tensors / "tensors", tensors / "models", tensors / "reports" / "train")
    rows = _epochs(tensors / "reports" / "train")
    scores = [float(row["val_f1_macro"]) for row in rows]
    assert summary["monitor"] == "val_f1_macro" and "best_val_loss" not in summary
    assert summary["best_val_f1_macro"] == pytest.approx(max(scores), rel=1e-4)
    (kept,) = [row for row in rows if row["kept"] == "1"]
    assert float(kept["val_f1_macro"]) == max(scores)


def _imbalanced(tensors: Path, params: Params) -> WindowDataModule:
    """The fixture's train split with all but two windows of class 0 removed."""
    data = WindowDataModule(tensors / "tensors", params)
    data.setup()
    windows = data.splits["train"]
    assert isinstance(windows, ShardWindows)
    labels = data.labels("train")
    keep = (labels != 0) | (torch.cumsum(labels == 0, 0) <= 2)
    windows.windows = windows.windows[keep]
    windows.present = windows.present[keep]
    windows._row_of = windows._row_of[keep]
    return data


def test_class_balanced_sampler_draws_classes_equally(tensors: Path) -> None:
    plain = Params.model_validate(TINY | {"train": TINY["train"] | {"class_balance": "none"}})
    balanced = plain.model_copy(
        update={"train": plain.train.model_copy(update={"class_balance": "sampler"})}
    )
    seen = {}
    for name, params in (("plain", plain), ("balanced", balanced)):
        data = _imbalanced(tensors, params)
        assert data.class_counts("train")[0] == 2
        loader = data.train_dataloader()  # once, as Lightning does: epochs draw anew
        drawn = torch.cat([b["label"] for _ in range(20) for b in loader])
        seen[name] = torch.bincount(drawn, minlength=3).double() / len(drawn)
        assert len(drawn) == 20 * len(data.splits["train"])
    assert seen["plain"][0] < 0.1
    assert torch.allclose(seen["balanced"], torch.full((3,), 1 / 3).double(), atol=0.06)


def test_class_balanced_loss_weights() -> None:
    weights = balanced_class_weights(torch.tensor([2, 6, 0]))
    assert weights.tolist() == pytest.approx([2.0, 2 / 3, 0.0])  # 8 windows: 2*2 + 6*2/3 = 8


def test_class_balanced_loss_reaches_the_module(tensors: Path) -> None:
    plain = Params.model_validate(TINY | {"train": TINY["train"] | {"class_balance": "none"}})
    weighted = plain.model_copy(
        update={"train": plain.train.model_copy(update={"class_balance": "loss"})}
    )
    assert make_module(plain, _imbalanced(tensors, plain)).class_weights is None
    data = _imbalanced(tensors, weighted)
    module = make_module(weighted, data)
    expected = balanced_class_weights(data.class_counts("train"))
    assert module.class_weights is not None and expected[0] > 3 * expected[1]
    assert torch.equal(module.class_weights, expected)
    batch = next(iter(data.train_dataloader()))
    torch.manual_seed(0)
    loss = module.training_loss(batch)
    module.class_weights = None
    torch.manual_seed(0)
    assert not torch.allclose(loss, module.training_loss(batch))


def test_fit_is_deterministic(tensors: Path) -> None:
    params = Params.model_validate(TINY | {"train": TINY["train"] | {"max_epochs": 1}})
    states = []
    for run in ("a", "b"):
        fit(params, tensors / "tensors", tensors / run, tensors / f"reports-{run}")
        states.append(torch.load(tensors / run / "model.pt", weights_only=True)["members"][0])
    assert states[0].keys() == states[1].keys()
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])


@pytest.mark.slow
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


def _train_in_child(tensors: Path, params: dict[str, Any]) -> subprocess.Popen:
    (tensors / "params.yaml").write_text(yaml.safe_dump(params))
    link = tensors / "data" / "processed_tensors"
    if not link.exists():
        link.parent.mkdir(exist_ok=True)
        link.symlink_to(tensors / "tensors")
    env = os.environ | {"OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT / "src")}
    return subprocess.Popen(
        [sys.executable, str(ROOT / "stages" / "train.py")],
        cwd=tensors,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


# Augmentation and modality dropout on, so every random stream matters; one thread, so the
# child process and this one compute alike.
RESUMABLE = TINY | {
    "train": TINY["train"]
    | {"max_epochs": 6, "patience": 10, "resume": True, "cpu_threads": 1, "noise_std": 0.1}
}


@pytest.mark.slow
@pytest.mark.parametrize(("members", "kill_in", "kill_after"), [(1, 1, 1), (1, 1, 3), (2, 2, 1)])
def test_a_killed_training_resumed_gives_the_uninterrupted_result(
    tensors: Path, members: int, kill_in: int, kill_after: int
) -> None:
    """SIGKILL in member `kill_in` after its epoch `kill_after`, resume from its
    `.resume/train/member<k>/checkpoints/last.ckpt` (an earlier member kept as it finished):
    the same weights, training reports and bytes of reports/eval/metrics.json as a run never
    interrupted."""
    config = RESUMABLE | {"train": RESUMABLE["train"] | {"ensemble": members}}
    params = Params.model_validate(config)
    previous = tensors / "reports" / "train" / "metrics.json"  # what the stage's last run wrote
    previous.parent.mkdir(parents=True)
    previous.write_text('{"val": {"loss": 0.5}}')
    child = _train_in_child(tensors, config)
    work = tensors / ".resume" / "train"
    last = work / f"member{kill_in}" / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 300
    while child.poll() is None and time.monotonic() < deadline:
        if last.exists() and torch.load(last, weights_only=True)["epoch"] >= kill_after:
            break
        time.sleep(0.1)
    assert child.poll() is None, "training ended before it could be killed"
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert not (tensors / "models" / "model.pt").exists()
    # the interrupted run's logs stay out of the stage's outputs
    assert previous.read_text() == '{"val": {"loss": 0.5}}'
    assert list(previous.parent.iterdir()) == [previous]
    killed_at = torch.load(last, weights_only=True)["epoch"]
    # as if the kill cut DVCLive's in-place rewrite of its summary short (it happened in CI)
    (work / f"member{kill_in}" / "dvclive" / "metrics.json").write_text("")
    reports = tensors / "reports" / "train"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        summary = fit(params, tensors / "tensors", tensors / "models", reports)
    # its own checkpoints are in the folder, as they should be: nothing to warn about
    assert not [w for w in caught if "Checkpoint directory" in str(w.message)]
    resumed = summary["members"][kill_in - 1]
    assert resumed["resumed_at_epoch"] == killed_at + 1 >= kill_after + 1
    assert [m["resumed_at_epoch"] for m in summary["members"][: kill_in - 1]] == [None] * (
        kill_in - 1
    )  # finished before the kill: kept, not trained again
    assert [m["epochs"] for m in summary["members"]] == [6] * members
    assert not work.exists()  # finished: nothing left to resume
    _, saved = load_model(tensors / "models" / "model.pt")
    assert saved["summary"]["members"][kill_in - 1]["resumed_at_epoch"] == killed_at + 1

    whole = tensors / "uninterrupted"
    fit(params, tensors / "tensors", whole / "models", whole / "reports" / "train")
    for log in ("epochs.csv", "members.csv", "metrics.json"):  # the resumed history, epochs
        # before the kill included, reads the same
        ours = (tensors / "reports" / "train" / log).read_bytes()
        assert ours == (whole / "reports" / "train" / log).read_bytes(), log
    assert len(_epochs(whole / "reports" / "train")) == 6
    ours, theirs = (
        torch.load(d / "model.pt", weights_only=True)
        for d in (tensors / "models", whole / "models")
    )
    assert len(ours["members"]) == len(theirs["members"]) == members
    for mine, other in zip(ours["members"], theirs["members"], strict=True):
        assert all(torch.equal(mine[k], other[k]) for k in mine)
    assert ours["calibration"]["temperature"] == theirs["calibration"]["temperature"]
    for models, out in ((tensors / "models", tensors / "eval"), (whole / "models", whole / "eval")):
        evaluate(params, tensors / "tensors", models, out)
    assert (tensors / "eval" / "metrics.json").read_bytes() == (
        whole / "eval" / "metrics.json"
    ).read_bytes()


def test_rewinding_the_log_keeps_what_the_checkpoint_saw(tmp_path: Path) -> None:
    """Rows up to the checkpoint's step stay; later rows, a row cut short and a summary cut
    short go (a killed run's DVCLive folder, rewound before resuming)."""
    table = tmp_path / "plots" / "metrics" / "train_loss.tsv"
    table.parent.mkdir(parents=True)
    rows = "".join(f"{step}\t1700000000\t0.{step}\n" for step in range(6))
    table.write_text("step\ttimestamp\ttrain_loss\n" + rows + "1")  # "1": the kill hit "12\t..."
    (tmp_path / "metrics.json").write_text('{"step": 5, "train_lo')
    rewind_log(tmp_path, global_step=3)
    assert table.read_text() == "step\ttimestamp\ttrain_loss\n" + "".join(
        f"{step}\t1700000000\t0.{step}\n" for step in range(3)
    )
    assert not (tmp_path / "metrics.json").exists()
    (tmp_path / "metrics.json").write_text('{"step": 2}')
    rewind_log(tmp_path, global_step=3)
    assert (tmp_path / "metrics.json").read_text() == '{"step": 2}'  # whole: DVCLive resumes it


def test_resume_refuses_a_checkpoint_of_other_params(tensors: Path) -> None:
    params = TINY | {"train": TINY["train"] | {"max_epochs": 2, "resume": True}}
    first = Params.model_validate(params)
    work = tensors / ".resume" / "train"
    (work / "member1" / "checkpoints").mkdir(parents=True)
    (work / "member1" / "checkpoints" / "last.ckpt").write_bytes(b"a checkpoint of some other run")
    (work / "fingerprint").write_text(fingerprint(first, tensors / "tensors"))
    changed = first.model_copy(
        update={"train": first.train.model_copy(update={"learning_rate": 1e-4})}
    )
    summary = fit(changed, tensors / "tensors", tensors / "models", tensors / "reports")
    assert summary["resumed_at_epoch"] is None and summary["epochs"] == 2


def test_a_diverging_run_fails_naming_the_epoch_and_writes_no_model(tensors: Path) -> None:
    """`train.learning_rate: 1e30` finished with exit 0 and a NaN model."""
    params = Params.model_validate(TINY | {"train": TINY["train"] | {"learning_rate": 1e30}})
    with pytest.raises(HarfusionError) as info:
        fit(params, tensors / "tensors", tensors / "models", tensors / "reports" / "train")
    message = str(info.value)
    assert "\n" not in message
    assert re.match(r"train: the (training|validation) loss became nan in epoch 0: ", message)
    assert "train.learning_rate (1e+30) is too high" in message
    assert not (tensors / "models").exists() and not (tensors / "reports").exists()


def test_an_earlier_finite_checkpoint_is_not_promoted(
    tensors: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Epoch 0 finite and checkpointed, epoch 1 diverges: the run fails rather than exporting
    epoch 0's weights as if training had ended well."""
    finite = FusionClassifier.training_loss

    def diverging(self: FusionClassifier, batch: dict) -> torch.Tensor:
        loss = finite(self, batch)
        return loss * float("inf") if self.current_epoch == 1 else loss

    monkeypatch.setattr(FusionClassifier, "training_loss", diverging)
    params = Params.model_validate(TINY | {"train": TINY["train"] | {"max_epochs": 3}})
    with pytest.raises(HarfusionError, match=r"the training loss became (inf|nan) in epoch 1"):
        fit(params, tensors / "tensors", tensors / "models", tensors / "reports" / "train")
    assert not (tensors / "models").exists()
    assert (tensors / ".resume" / "train" / "member1" / "checkpoints" / "best.ckpt").exists()


@pytest.mark.parametrize("damage", ["truncated", "pickled", "foreign"])
def test_a_damaged_checkpoint_to_resume_is_refused_in_one_line(tensors: Path, damage: str) -> None:
    """A truncated or malicious `last.ckpt` ended in `Invalid argument` from deep inside."""
    params = Params.model_validate(TINY | {"train": TINY["train"] | {"resume": True}})
    work = tensors / ".resume" / "train"
    last = work / "member1" / "checkpoints" / "last.ckpt"
    last.parent.mkdir(parents=True)
    (work / "fingerprint").write_text(fingerprint(params, tensors / "tensors"))
    if damage == "pickled":
        last.write_bytes(pickle.dumps({"epoch": Runs()}, protocol=2))
    else:
        torch.save({"epoch": 3, "state_dict": {"w": torch.zeros(1000)}}, last)
        if damage == "truncated":
            last.write_bytes(last.read_bytes()[:500])
    with pytest.raises(HarfusionError) as info:
        fit(params, tensors / "tensors", tensors / "models", tensors / "reports" / "train")
    message = str(info.value)
    assert message.startswith(f"{last}: not a") and "\n" not in message, message
    assert message.endswith(f"remove {last.parent} (or set train.resume: false) to train afresh")
    assert "weights_only" not in message
    assert not (tensors / "ran").exists()


class Runs:
    """Unpickling this would run code."""

    def __reduce__(self) -> tuple:
        return (exec, ("open('ran', 'w').close()",))
