"""Fit a fusion model with Lightning; write its best weights, calibrated on the validation split,
as the model file (`models/model.pt`)."""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
import random
import shutil
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.callbacks import Callback, EarlyStopping, ModelCheckpoint, RichProgressBar
from lightning.pytorch.loggers import Logger

from harfusion.atomic import atomic_path
from harfusion.data.dataset import ShardWindows
from harfusion.errors import HarfusionError, refused_torch_file
from harfusion.layout import EPOCHS, MANIFEST, METRICS, MODEL_FILE, NORM_STATS, RESUME
from harfusion.models.calibrator import fit_calibration
from harfusion.models.fusion import build_model, channels_for
from harfusion.models.model_file import model_card, save_model, training_data
from harfusion.params import Params
from harfusion.threads import configure_threads
from harfusion.training.classifier import FusionClassifier
from harfusion.training.datamodule import WindowDataModule


class _NoAdvert(logging.Filter):
    """Drops Lightning's tip to install its cloud logger, printed at every fit."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("💡 Tip:")


logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(_NoAdvert())


CHECKPOINTS = "checkpoints"  # in RESUME, beside the fingerprint and DVCLive's log


def _precision() -> str:
    return "bf16-mixed" if torch.cuda.is_available() else "32-true"


def progress_bar() -> RichProgressBar:
    """Lightning's default bar redraws 100 times a second from a thread that needs the GIL,
    which a launch-bound loop (a small model on a GPU) feels; four redraws a second read the
    same (benchmarks/progress_bar.py)."""
    return RichProgressBar(refresh_rate=4)


def make_trainer(
    params: Params, callbacks: list[Callback], logger: Logger | bool, **overrides
) -> L.Trainer:
    """The Trainer as the train stage configures it; benchmarks override its length."""
    train = params.train
    # A bar redrawn in place reads only on a terminal; a queued experiment's log has the
    # checkpoint's one line per epoch instead.
    overrides.setdefault("enable_progress_bar", sys.stdout.isatty())
    if overrides["enable_progress_bar"]:
        callbacks = [*callbacks, progress_bar()]
    options: dict[str, Any] = {
        "max_epochs": train.max_epochs,
        "min_epochs": train.min_epochs,
        "accelerator": train.accelerator,
        "devices": train.devices,
        "strategy": train.strategy,
        "num_nodes": train.num_nodes,
        "precision": _precision(),
        "gradient_clip_val": train.gradient_clip_norm,
        "gradient_clip_algorithm": "norm",
        "deterministic": "warn" if torch.cuda.is_available() else True,
        "callbacks": callbacks,
        "logger": logger,
        "log_every_n_steps": 1,
        "enable_model_summary": True,
    }
    if train.limit_train_batches != 1.0:  # passing the default makes Lightning say it is used
        options["limit_train_batches"] = train.limit_train_batches
    try:
        return L.Trainer(**(options | overrides))
    except (MisconfigurationException, ValueError, ImportError) as exc:
        # Valid params this machine cannot run (no GPU, DeepSpeed not installed, FSDP on CPU).
        why = " ".join(str(exc).split())
        raise HarfusionError(
            f"train.accelerator={train.accelerator}, train.strategy={train.strategy}, "
            f"train.devices={train.devices}: Lightning cannot run these here ({why})"
        ) from None


class KeptCheckpoint(ModelCheckpoint):
    """The checkpoint best on `train.monitor`, which also prints one line per epoch: its losses
    and scores, and `kept` when the epoch became the best. A queued experiment's log has no
    progress bar, and this hook is where an epoch is complete: Lightning calls a checkpoint's
    epoch-end hook after the LightningModule logged the epoch's train loss, later than any plain
    callback's."""

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_start(trainer, pl_module)
        self._reported = self.best_model_score  # a resumed fit's best so far

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        kept = self.best_model_score is not self._reported  # a new best: a new tensor
        self._reported = self.best_model_score
        if trainer.is_global_zero:
            print(epoch_line(trainer, kept), flush=True)


def epoch_line(trainer: L.Trainer, kept: bool) -> str:
    scores = trainer.callback_metrics
    names = {
        "train_loss": "train loss",
        "val_loss": "val loss",
        "val_acc": "val accuracy",
        "val_f1_macro": "val macro F1",
    }
    parts = [f"{label} {float(scores[key]):.4f}" for key, label in names.items() if key in scores]
    line = f"train: epoch {trainer.current_epoch + 1}/{trainer.max_epochs}: {', '.join(parts)}"
    return line + (", kept" if kept else "")


def epoch_table(live: Path, kept_epoch: int) -> list[dict[str, Any]]:
    """One row per epoch from DVCLive's log, which is indexed by step and writes each epoch's
    number twice (once with the validation scores, once with the train loss): epoch (from 1),
    every logged value (`train/loss` as `train_loss`), and `kept` (1 for the kept epoch)."""
    tables = live / "plots" / "metrics"
    epoch_of = {step: int(float(epoch)) for step, epoch in _tsv(tables / "epoch.tsv")}
    rows: dict[int, dict[str, Any]] = {}
    for table in sorted(tables.rglob("*.tsv")):
        name = table.relative_to(tables).with_suffix("").as_posix().replace("/", "_")
        if name != "epoch":
            for step, value in _tsv(table):
                rows.setdefault(epoch_of[step], {})[name] = float(value)
    return [
        {"epoch": epoch + 1, **rows[epoch], "kept": int(epoch + 1 == kept_epoch)}
        for epoch in sorted(rows)
    ]


def _tsv(path: Path) -> list[tuple[int, str]]:
    """(step, value) rows of a DVCLive table: step first, the value last (a timestamp may be
    between)."""
    _, *rows = path.read_text().splitlines()
    return [(int(fields[0]), fields[-1]) for fields in (row.split("\t") for row in rows)]


def write_training_reports(rows: list[dict[str, Any]], out_dir: Path) -> dict[str, Any]:
    """`epochs.csv` (every epoch) and `metrics.json`: the kept epoch and its validation scores,
    the numbers DVC shows for training."""
    kept = next(row for row in rows if row["kept"])
    metrics = {"kept_epoch": kept["epoch"]} | {
        key: kept[key] for key in ("val_loss", "val_f1_macro") if key in kept
    }
    columns = list(dict.fromkeys(key for row in rows for key in row))
    columns.sort(key=lambda c: (c != "epoch", c == "kept", not c.endswith("loss"), c))
    with atomic_path(out_dir) as tmp:
        tmp.mkdir()
        with (tmp / EPOCHS).open("w", newline="") as out:
            table = csv.DictWriter(out, columns, lineterminator="\n")
            table.writeheader()
            table.writerows(rows)
        (tmp / METRICS).write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics


def balanced_class_weights(counts: torch.Tensor) -> torch.Tensor:
    """Inverse-frequency weights, scaled so an average training window weighs 1; a class
    without training windows gets 0 (it never occurs in the loss anyway)."""
    counts = counts.double()
    present = counts > 0
    weights = torch.zeros_like(counts)
    weights[present] = counts.sum() / (present.sum() * counts[present])
    return weights.float()


def make_module(params: Params, data: WindowDataModule) -> FusionClassifier:
    weights = None
    if params.train.class_balance == "loss":
        weights = balanced_class_weights(data.class_counts("train"))
    data.setup()  # opens the splits (no device yet; Lightning's own setup moves them)
    train_windows = data.splits["train"]
    normalisation = train_windows.norm if isinstance(train_windows, ShardWindows) else None
    module = FusionClassifier(
        params, channels_for(params), len(data.classes), weights, normalisation
    )
    if params.train.compile:
        module.model = torch.compile(module.model)  # ty: ignore[invalid-assignment]
    return module


class RandomState(Callback):
    """Carries every random stream through `last.ckpt`, so a resumed training draws what the
    uninterrupted one would have: torch's, numpy's and Python's global generators (noise,
    jitter, rotations, modality dropout) and the training loader's own (shuffle or sampler).

    The loader's generator is restored as Lightning loads the checkpoint (a resumed fit creates
    its first epoch's iterator before `on_train_epoch_start`); the global ones at the first
    epoch's start, since the validation sanity check in between draws from torch's."""

    def __init__(self, data: WindowDataModule) -> None:
        self.data = data
        self.pending: dict[str, Any] | None = None

    def state_dict(self) -> dict[str, Any]:
        # the legacy global state is what third-party code draws from
        kind, keys, position, has_gauss, gauss = np.random.get_state(legacy=True)  # noqa: NPY002
        keys = torch.from_numpy(np.asarray(keys, dtype=np.int64))  # weights_only loads tensors
        return {
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "numpy": [kind, keys, position, has_gauss, gauss],
            "python": random.getstate(),
            "loader": self.data.shuffle_generator.get_state(),
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.data.shuffle_generator.set_state(state_dict["loader"])
        self.pending = state_dict

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.pending is None:
            return
        state, self.pending = self.pending, None
        torch.set_rng_state(state["torch"])
        if state["cuda"]:
            torch.cuda.set_rng_state_all(state["cuda"])
        kind, keys, position, has_gauss, gauss = state["numpy"]
        keys = keys.numpy().astype(np.uint32)
        np.random.set_state((kind, keys, position, has_gauss, gauss))  # noqa: NPY002
        version, internal, gauss_next = state["python"]
        random.setstate((version, tuple(internal), gauss_next))


def fingerprint(params: Params, tensor_dir: Path) -> str:
    """What a checkpoint must have been trained on to be resumed: train's params and data."""
    tracked = params.model_dump(include={"seed", "fusion", "heads", "modalities", "dataset"})
    tracked |= params.model_dump(include={"model", "train"}, exclude={"train": {"resume"}})
    digest = hashlib.sha256(json.dumps(tracked, sort_keys=True).encode())
    for name in (MANIFEST, NORM_STATS):
        digest.update((tensor_dir / name).read_bytes())
    return digest.hexdigest()


def _resume_from(params: Params, tensor_dir: Path, work: Path) -> Path | None:
    """`last.ckpt` in `work` if `train.resume` is on and it was trained on the same inputs;
    otherwise `work` is emptied for this run (what a killed run left there is garbage)."""
    stamp, last = work / "fingerprint", work / CHECKPOINTS / "last.ckpt"
    current = fingerprint(params, tensor_dir)
    if params.train.resume and last.exists() and stamp.exists() and stamp.read_text() == current:
        return last
    if os.environ.get("LOCAL_RANK", "0") != "0":
        return None  # DDP workers start after rank 0 prepared the directory; they only read
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    stamp.write_text(current)
    return None


# What Lightning reads from a checkpoint it resumes: key → type.
_CHECKPOINT = {
    "epoch": int,
    "global_step": int,
    "state_dict": dict,
    "loops": dict,
    "callbacks": dict,
    "optimizer_states": list,
    "lr_schedulers": list,
}


def read_checkpoint(path: Path) -> dict:
    """`last.ckpt` of a killed run, or a one-line refusal naming it (torch's or Lightning's own
    refusal of a damaged or foreign file came out as a traceback from deep inside)."""
    fresh = f"remove {path.parent} (or set train.resume: false) to train afresh"
    try:
        restored = torch.load(path, weights_only=True, map_location="cpu")
    except Exception as exc:  # UnpicklingError, RuntimeError of a truncated zip, EOFError, ...
        raise HarfusionError(f"{refused_torch_file(path, 'a checkpoint', exc)}; {fresh}") from None
    wrong = [
        key
        for key, kind in _CHECKPOINT.items()
        if not isinstance(restored, dict) or not isinstance(restored.get(key), kind)
    ]
    if wrong:
        raise HarfusionError(
            f"{path}: not a checkpoint this project wrote (no {', '.join(wrong)}); {fresh}"
        )
    return restored


def rewind_log(live: Path, global_step: int) -> None:
    """Make a killed run's DVCLive folder read as it did at its last checkpoint, so the resumed
    history reads as the uninterrupted one: drop the rows logged after it (the resumed run logs
    them again), and what the kill cut short, since DVCLive rewrites its files in place: a row
    without its line end, a summary (`metrics.json`) that is not whole JSON. The resumed run
    writes the summary anew at its first logged step."""
    for table in live.rglob("*.tsv"):
        header, *rows = table.read_text().splitlines(keepends=True)
        kept = [
            row for row in rows if row.endswith("\n") and int(row.split("\t", 1)[0]) < global_step
        ]
        table.write_text("".join([header, *kept]))
    summary = live / "metrics.json"
    try:
        json.loads(summary.read_text())
    except FileNotFoundError:
        pass
    except json.JSONDecodeError:
        summary.unlink()


def fit(params: Params, tensor_dir: Path, models_dir: Path, reports_dir: Path) -> dict:
    """Train, keep the checkpoint best on `train.monitor`, write `models/model.pt` and
    `reports_dir`: `epochs.csv` and the kept epoch's `metrics.json`.

    Checkpoints and DVCLive's logs are written into `.resume/train/` (git-ignored) while
    training, not into the stage's outputs: DVC deletes those before a stage runs, `persist: true`
    would cost the stage its run-cache, and an interrupted run must leave `reports/train/` as it
    was. The reports are written from the log when training ends. With `train.resume`, a killed
    run picks up from `last.ckpt`, its logs included, if params and tensors are unchanged (a
    fingerprint guards that); without it, the next run starts the folder anew.
    """
    # dvclive imports DVC; importing it here lets benchmarks build the Trainer without it.
    from dvclive.lightning import DVCLiveLogger

    L.seed_everything(params.seed, workers=True, verbose=False)
    configure_threads(params)
    train = params.train
    data = WindowDataModule(tensor_dir, params)
    module = make_module(params, data)
    work = models_dir.parent / RESUME  # beside models/, never a DVC output
    live = work / "dvclive"
    resume = _resume_from(params, tensor_dir, work)
    resumed = None
    if resume is not None:
        restored = read_checkpoint(resume)
        resumed = restored["epoch"] + 1
        rewind_log(live, restored["global_step"])
    mode = "min" if train.monitor == "val_loss" else "max"
    checkpoint = KeptCheckpoint(
        dirpath=work / CHECKPOINTS,  # empty unless resuming: Lightning warns about any file
        filename="best",
        monitor=train.monitor,
        mode=mode,
        save_last=train.resume,
    )
    stopping = EarlyStopping(train.monitor, mode=mode, patience=train.patience)
    logger = DVCLiveLogger(
        dir=str(live), resume=resume is not None, dvcyaml=False, save_dvc_exp=False
    )
    trainer = make_trainer(
        params, callbacks=[stopping, checkpoint, RandomState(data)], logger=logger
    )
    started = time.perf_counter()
    with warnings.catch_warnings():
        # Lightning 2.6 builds torch's deprecated LeafSpec for every loader it combines: a
        # FutureWarning per fit that says nothing about this project. Only it is dropped.
        warnings.filterwarnings("ignore", r"`isinstance\(treespec, LeafSpec\)`", FutureWarning)
        if resume is not None:  # the folder holds the run's own checkpoints, as it should
            warnings.filterwarnings("ignore", "Checkpoint directory .* exists and is not empty")
        trainer.fit(module, datamodule=data, ckpt_path=resume, weights_only=True)
    seconds = time.perf_counter() - started
    if not trainer.is_global_zero:
        return {}
    with atomic_path(models_dir / "checkpoints" / "best.ckpt") as tmp:
        shutil.copyfile(checkpoint.best_model_path, tmp)
    best = torch.load(
        models_dir / "checkpoints" / "best.ckpt", weights_only=True, map_location="cpu"
    )
    kept = write_training_reports(epoch_table(live, best["epoch"] + 1), reports_dir)
    shutil.rmtree(work, ignore_errors=True)
    state = {
        k.removeprefix("model."): v for k, v in best["state_dict"].items() if k.startswith("model.")
    }
    summary = {
        "epochs": trainer.current_epoch,
        "kept_epoch": kept["kept_epoch"],
        "monitor": train.monitor,
        f"best_{train.monitor}": float(checkpoint.best_model_score or float("nan")),
        "fit_seconds": round(seconds, 2),
        "seconds_per_epoch": round(seconds / max(trainer.current_epoch, 1), 3),
        "resumed_at_epoch": resumed,
    }
    save_model(models_dir / MODEL_FILE, [state], _card(params, data, tensor_dir, state, summary))
    return summary


def _card(
    params: Params, data: WindowDataModule, tensor_dir: Path, state: dict, summary: dict
) -> dict:
    """The model file's card: what training knows, and the calibration fit on the validation
    split with the kept weights (evaluate and predict apply it; neither fits one)."""
    member = build_model(params, channels_for(params), len(data.classes))
    member.load_state_dict(state)
    windows = data.splits["train"]
    member.to(windows.device if isinstance(windows, ShardWindows) else torch.device("cpu"))
    calibration = fit_calibration(member, data.loader("val"))
    if isinstance(windows, ShardWindows):
        normalisation = windows.norm
    else:  # the legacy layout's inputs are used as they are
        normalisation = {
            m: (torch.zeros(c), torch.ones(c)) for m, c in channels_for(params).items()
        }
    manifest = tensor_dir / MANIFEST
    trained_on = {"raw_dir": params.data.raw_dir, "split": params.split.strategy}
    if manifest.exists():
        trained_on |= training_data(tensor_dir, json.loads(manifest.read_text()))
    return model_card(
        params,
        data.classes,
        data.class_names,
        windows.chunk_size,
        {m: (mean.cpu(), std.cpu()) for m, (mean, std) in normalisation.items()},
        calibration,
        trained_on,
        summary,
    )
