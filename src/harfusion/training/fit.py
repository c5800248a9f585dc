"""Fit a fusion model with Lightning, `train.ensemble` members one after another; write their
best weights, calibrated on the validation split, as the model file (`models/model.pt`)."""

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
from dataclasses import dataclass
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
from harfusion.layout import (
    DATASET,
    EPOCHS,
    MANIFEST,
    MEMBERS,
    METRICS,
    MODEL_FILE,
    NORM_STATS,
    RESUME,
)
from harfusion.models.calibrator import fit_calibration
from harfusion.models.ensemble import Ensemble
from harfusion.models.fusion import Shape, build_model
from harfusion.models.model_file import model_card, save_model, training_data
from harfusion.params import Params, trained_by
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
    callback's. `label` names the ensemble member in each line ("member 2/3"), if any."""

    def __init__(self, label: str = "", **options: Any) -> None:
        super().__init__(**options)
        self.label = label

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_start(trainer, pl_module)
        self._reported = self.best_model_score  # a resumed fit's best so far

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        kept = self.best_model_score is not self._reported  # a new best: a new tensor
        self._reported = self.best_model_score
        if trainer.is_global_zero:
            print(epoch_line(trainer, kept, self.label), flush=True)


def epoch_line(trainer: L.Trainer, kept: bool, label: str = "") -> str:
    scores = trainer.callback_metrics
    names = {
        "train_loss": "train loss",
        "val_loss": "val loss",
        "val_acc": "val accuracy",
        "val_f1_macro": "val macro F1",
    }
    parts = [f"{label} {float(scores[key]):.4f}" for key, label in names.items() if key in scores]
    member = f"{label}: " if label else ""
    epoch = f"epoch {trainer.current_epoch + 1}/{trainer.max_epochs}"
    line = f"train: {member}{epoch}: {', '.join(parts)}"
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


def write_training_reports(members: list[Member], out_dir: Path) -> dict[str, Any]:
    """`epochs.csv` (member 1's every epoch: one member's curves read as curves),
    `metrics.json` (member 1's kept epoch and its validation scores, the numbers DVC shows for
    training) and `members.csv` (each member's seed and kept epoch with its scores)."""
    rows = members[0].rows
    kept = next(row for row in rows if row["kept"])
    metrics = {"kept_epoch": kept["epoch"]} | {
        key: kept[key] for key in ("val_loss", "val_f1_macro") if key in kept
    }
    columns = list(dict.fromkeys(key for row in rows for key in row))
    columns.sort(key=lambda c: (c != "epoch", c == "kept", not c.endswith("loss"), c))
    kept_rows = [
        {"member": index + 1, "seed": m.summary["seed"], "epochs": len(m.rows)}
        | {f"kept_{k}": v for k, v in next(r for r in m.rows if r["kept"]).items() if k != "kept"}
        for index, m in enumerate(members)
    ]
    with atomic_path(out_dir) as tmp:
        tmp.mkdir()
        for name, table in ((EPOCHS, rows), (MEMBERS, kept_rows)):
            fields = columns if name == EPOCHS else list(kept_rows[0])
            with (tmp / name).open("w", newline="") as out:
                writer = csv.DictWriter(out, fields, lineterminator="\n")
                writer.writeheader()
                writer.writerows(table)
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
    inputs = data.inputs
    module = FusionClassifier(
        params,
        data.channels,
        inputs.kinds,
        inputs.triads,
        len(data.classes),
        weights,
        normalisation,
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
    # data.dataset names the description; the description itself is hashed with the tensors
    digest = hashlib.sha256(json.dumps(trained_by(params), sort_keys=True).encode())
    if (tensor_dir / MANIFEST).exists():  # the manifest holds every shard's hash
        for name in (MANIFEST, NORM_STATS, DATASET):
            if (tensor_dir / name).exists():
                digest.update((tensor_dir / name).read_bytes())
    else:  # the legacy .npy layout: its arrays are the data
        for path in sorted(tensor_dir.glob("*.npy")):
            digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()


def _prepare_work(params: Params, tensor_dir: Path, work: Path) -> bool:
    """True when `train.resume` is on and `work` holds a run on the same inputs (a fingerprint
    guards that): its finished members are kept and the member it was in resumes from its
    `last.ckpt`. Otherwise `work` is emptied for this run (what a killed run left is garbage)."""
    stamp = work / "fingerprint"
    current = fingerprint(params, tensor_dir)
    if params.train.resume and stamp.exists() and stamp.read_text() == current:
        return True
    if os.environ.get("LOCAL_RANK", "0") != "0":
        return False  # DDP workers start after rank 0 prepared the directory; they only read
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    stamp.write_text(current)
    return False


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


MEMBER_SEED_STEP = 1000  # member k's seed is seed + 1000 k: apart from LOSO's seeds 1..100
MEMBER_FILE = "member.pt"  # a finished member's weights and history, kept until the fit ends
KEPT = "kept.ckpt"  # a finished member's best checkpoint, beside MEMBER_FILE


def member_seed(seed: int, member: int) -> int:
    """The seed of member `member` (from 0) of an ensemble trained with `seed`: member 0 is
    `seed` itself, so one member is exactly the single model; replicates with seeds 1, 2, 3
    share no member."""
    return (seed + MEMBER_SEED_STEP * member) % 2**32


@dataclass
class Member:
    """One trained member: its kept weights, its epochs (DVCLive's log as a table) and how its
    training went."""

    state: dict[str, torch.Tensor]
    rows: list[dict[str, Any]]
    summary: dict[str, Any]


def fit(params: Params, tensor_dir: Path, models_dir: Path, reports_dir: Path) -> dict:
    """Train `train.ensemble` members one after another, each kept at its best on
    `train.monitor`; fit the calibration on their averaged validation prediction; write
    `models/model.pt` and `reports_dir`: member 1's `epochs.csv` and kept epoch's
    `metrics.json`, and every member's kept epoch in `members.csv`.

    Checkpoints and DVCLive's logs are written into `.resume/train/member<k>/` (git-ignored)
    while training, not into the stage's outputs: DVC deletes those before a stage runs,
    `persist: true` would cost the stage its run-cache, and an interrupted run must leave
    `reports/train/` as it was. The reports are written from the logs when training ends. With
    `train.resume`, a killed run keeps the members it finished and picks the one it was in up
    from its `last.ckpt`, logs included, if params and tensors are unchanged (a fingerprint
    guards that); without it, the next run starts the folder anew.
    """
    configure_threads(params)
    data = WindowDataModule(tensor_dir, params)
    work = models_dir.parent / RESUME  # beside models/, never a DVC output
    resuming = _prepare_work(params, tensor_dir, work)
    trained = [
        train_member(params, data, index, work / f"member{index + 1}", resuming)
        for index in range(params.train.ensemble)
    ]
    members = [member for member in trained if member is not None]
    if len(members) != len(trained):  # a DDP worker: rank 0 writes the outputs
        return {}
    for index in range(len(members)):
        name = "best.ckpt" if index == 0 else f"best-member{index + 1}.ckpt"
        with atomic_path(models_dir / "checkpoints" / name) as tmp:
            shutil.copyfile(work / f"member{index + 1}" / KEPT, tmp)
    # member 1's figures, as for one model; every member's under "members"
    summary = members[0].summary | {
        "fit_seconds": round(sum(m.summary["fit_seconds"] for m in members), 2),
        "members": [m.summary for m in members],
    }
    card = _card(params, data, tensor_dir, [m.state for m in members], summary)
    save_model(models_dir / MODEL_FILE, [m.state for m in members], card)
    write_training_reports(members, reports_dir)
    shutil.rmtree(work, ignore_errors=True)  # finished: nothing left to resume
    return summary | {"calibration": card["calibration"]}


def train_member(
    params: Params, data: WindowDataModule, index: int, folder: Path, resuming: bool
) -> Member | None:
    """Member `index` (from 0), trained with its own seed into `folder`, or as a killed run
    left it there (finished, or its `last.ckpt` to go on from) when `resuming`. None on a DDP
    worker (rank 0 keeps the result)."""
    # dvclive imports DVC; importing it here lets benchmarks build the Trainer without it.
    from dvclive.lightning import DVCLiveLogger

    count, train = params.train.ensemble, params.train
    label = f"member {index + 1}/{count}" if count > 1 else ""
    finished = folder / MEMBER_FILE
    if resuming and finished.exists():
        saved = torch.load(finished, weights_only=True, map_location="cpu")
        print(f"train: {label or 'the model'}: finished before the interruption, kept", flush=True)
        return Member(saved["state"], saved["rows"], saved["summary"])
    last = folder / CHECKPOINTS / "last.ckpt"
    resume = last if resuming and last.exists() else None
    if resume is None and os.environ.get("LOCAL_RANK", "0") == "0":
        shutil.rmtree(folder, ignore_errors=True)  # what a run killed before its first epoch left
        folder.mkdir(parents=True)
    seed = member_seed(params.seed, index)
    L.seed_everything(seed, workers=True, verbose=False)
    data.shuffle_generator.manual_seed(seed)
    module = make_module(params.model_copy(update={"seed": seed}), data)
    live = folder / "dvclive"
    resumed = None
    if resume is not None:
        restored = read_checkpoint(resume)
        resumed = restored["epoch"] + 1
        rewind_log(live, restored["global_step"])
    mode = "min" if train.monitor == "val_loss" else "max"
    checkpoint = KeptCheckpoint(
        label,
        dirpath=folder / CHECKPOINTS,  # empty unless resuming: Lightning warns about any file
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
        params,
        callbacks=[stopping, checkpoint, RandomState(data)],
        logger=logger,
        enable_model_summary=index == 0,  # every member has the same layers
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
        return None
    with atomic_path(folder / KEPT) as tmp:
        shutil.copyfile(checkpoint.best_model_path, tmp)
    best = torch.load(folder / KEPT, weights_only=True, map_location="cpu")
    state = {
        k.removeprefix("model."): v for k, v in best["state_dict"].items() if k.startswith("model.")
    }
    rows = epoch_table(live, best["epoch"] + 1)
    summary = {
        "seed": seed,
        "epochs": trainer.current_epoch,
        "kept_epoch": best["epoch"] + 1,
        "monitor": train.monitor,
        f"best_{train.monitor}": float(checkpoint.best_model_score or float("nan")),
        "fit_seconds": round(seconds, 2),
        "seconds_per_epoch": round(seconds / max(trainer.current_epoch, 1), 3),
        "resumed_at_epoch": resumed,
    }
    with atomic_path(finished) as tmp:
        torch.save({"state": state, "rows": rows, "summary": summary}, tmp)
    return Member(state, rows, summary)


def _card(
    params: Params, data: WindowDataModule, tensor_dir: Path, states: list[dict], summary: dict
) -> dict:
    """The model file's card: what training knows, and the calibration fitted on the members'
    averaged prediction for the validation split (evaluate and predict apply it; neither fits
    one)."""
    members = []
    for state in states:
        shape = Shape(data.channels, data.inputs.kinds, len(data.classes))
        member = build_model(params.fusion, shape, params.model, params.heads)
        member.load_state_dict(state)
        members.append(member)
    windows = data.splits["train"]
    ensemble = Ensemble(members)
    ensemble.to(windows.device if isinstance(windows, ShardWindows) else torch.device("cpu"))
    calibration = fit_calibration(
        ensemble, data.loader("val"), data.class_counts("train"), params.train.calibration
    )
    if "note" in calibration:
        print(f"train: warning: calibration {calibration['note']}", file=sys.stderr, flush=True)
    if isinstance(windows, ShardWindows):
        normalisation = windows.norm
    else:  # the legacy layout's inputs are used as they are
        normalisation = {m: (torch.zeros(c), torch.ones(c)) for m, c in data.channels.items()}
    manifest = tensor_dir / MANIFEST
    trained_on = {"raw_dir": params.data.raw_dir, "split": params.split.strategy}
    if manifest.exists():
        trained_on |= training_data(tensor_dir, json.loads(manifest.read_text()))
    return model_card(
        params,
        data.inputs,
        data.description,
        data.classes,
        data.class_names,
        windows.chunk_size,
        {m: (mean.cpu(), std.cpu()) for m, (mean, std) in normalisation.items()},
        calibration,
        trained_on,
        summary,
        members=len(states),
    )
