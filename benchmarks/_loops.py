"""Our Lightning training loop and a bare PyTorch loop doing the same work, timed alike.

Both take their batches from the same `WindowDataModule`, compute the loss with the same
`FusionClassifier.training_loss` (augmentation and modality dropout included), clip gradients
and step AdamW; the only difference is Lightning and what the train stage attaches to it
(progress bar, logger). Timing starts after `warmup` steps and ends after the last one, with
the GPU synchronised at both ends only, so the host may run ahead as in real training. On the
CPU, the gaps between one step's end and the next one's start are the time spent waiting for
data; on a GPU, compare against `resident=True` (batches already on the device) instead.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import Logger

from harfusion.params import Params
from harfusion.threads import configure_threads
from harfusion.training.datamodule import WindowDataModule
from harfusion.training.fit import make_module, make_trainer


@dataclass
class Timing:
    """Per-step start and end stamps after warm-up, and the batch size."""

    starts: list[float]
    ends: list[float]
    batch_size: int

    @property
    def seconds(self) -> float:
        return self.ends[-1] - self.starts[0]

    @property
    def windows_per_second(self) -> float:
        return len(self.starts) * self.batch_size / self.seconds

    @property
    def waiting_share(self) -> float:
        """Share of the timed span between a step's end and the next step's start."""
        gaps = sum(s - e for s, e in zip(self.starts[1:], self.ends[:-1], strict=True))
        return gaps / self.seconds


def _sync() -> float:
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter()


class StepTimer(Callback):
    def __init__(self, warmup: int, batch_size: int) -> None:
        self.warmup = warmup
        self.timing = Timing([], [], batch_size)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step >= self.warmup:
            starts = self.timing.starts
            starts.append(time.perf_counter() if starts else _sync())

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if len(self.timing.ends) < len(self.timing.starts):
            self.timing.ends.append(time.perf_counter())

    def on_train_end(self, trainer, pl_module) -> None:
        self.timing.ends[-1] = _sync()


def _logger(directory: Path) -> Logger | bool:
    """The train stage's DVCLive logger where dvclive is installed (not on a bare GPU image)."""
    try:
        from dvclive.lightning import DVCLiveLogger
    except ImportError:
        return False
    return DVCLiveLogger(dir=str(directory), dvcyaml=False, save_dvc_exp=False)


def lightning_loop(params: Params, tensor_dir: Path, steps: int, warmup: int) -> Timing:
    """`steps` optimiser steps of our Trainer (no validation, no checkpoints)."""
    L.seed_everything(params.seed, verbose=False)
    configure_threads(params)
    data = WindowDataModule(tensor_dir, params)
    module = make_module(params, data)
    timer = StepTimer(warmup, params.dataset.batch_size)
    with tempfile.TemporaryDirectory() as logs:
        trainer = make_trainer(
            params,
            callbacks=[timer],
            logger=_logger(Path(logs)),
            max_epochs=-1,
            max_steps=steps,
            limit_val_batches=0,
            enable_checkpointing=False,
            enable_model_summary=False,
            default_root_dir=logs,
        )
        trainer.fit(module, datamodule=data)
    return timer.timing


def bare_loop(
    params: Params, tensor_dir: Path, steps: int, warmup: int, resident: bool = False
) -> Timing:
    """The same steps written as a plain PyTorch loop.

    `resident` cycles over a few batches moved to the device beforehand: the loop's speed with
    data loading taken out, against which to judge whether loading starves the device.
    """
    L.seed_everything(params.seed, verbose=False)
    configure_threads(params)
    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    torch.use_deterministic_algorithms(True, warn_only=cuda)
    data = WindowDataModule(tensor_dir, params, device)
    data.setup()
    module = make_module(params, data).to(device).train()
    train = params.train
    optimizer = torch.optim.AdamW(
        module.parameters(), lr=train.learning_rate, weight_decay=train.weight_decay
    )
    timing = Timing([], [], params.dataset.batch_size)
    if resident:
        loader = data.train_dataloader()
        staged = [_to(batch, device) for batch, _ in zip(loader, range(8), strict=False)]
        epochs = [staged] * steps
    else:
        epochs = (data.train_dataloader() for _ in range(steps))
    step = 0
    for epoch in epochs:
        for batch in epoch:
            if step >= warmup:
                timing.starts.append(time.perf_counter() if timing.starts else _sync())
            batch = _to(batch, device)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
                loss = module.training_loss(batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(module.parameters(), train.gradient_clip_norm)
            optimizer.step()
            if step >= warmup:
                timing.ends.append(time.perf_counter())
            step += 1
            if step == steps:
                timing.ends[-1] = _sync()
                return timing
    return timing


def _to(batch: dict, device: torch.device) -> dict:
    return {
        "inputs": {m: x.to(device, non_blocking=True) for m, x in batch["inputs"].items()},
        "mask": batch["mask"].to(device, non_blocking=True),
        "label": batch["label"].to(device, non_blocking=True),
    }
