"""The LightningDataModule: `SplitLoaders` with the Trainer's device and Lightning's hooks."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch
from torch.utils.data import DataLoader

from harfusion.data.loaders import SplitLoaders
from harfusion.params import Params


class WindowDataModule(SplitLoaders, L.LightningDataModule):
    def __init__(
        self, tensor_dir: str | Path, params: Params, device: torch.device | None = None
    ) -> None:
        L.LightningDataModule.__init__(self)
        SplitLoaders.__init__(self, tensor_dir, params, device)

    def target_device(self) -> torch.device | None:
        if self.device is None and self.trainer is not None:
            return self.trainer.strategy.root_device
        return self.device

    def train_dataloader(self) -> DataLoader:
        return self.loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self.loader("val")

    def test_dataloader(self) -> DataLoader:
        return self.loader("test")
