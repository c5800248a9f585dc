"""The LightningDataModule over tensor shards (or the legacy `.npy` layout)."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch
from torch.utils.data import DataLoader

from harfusion.dataset import LegacyNpyWindows, ShardWindows, collate_windows, open_windows
from harfusion.params import Params


class WindowDataModule(L.LightningDataModule):
    def __init__(self, tensor_dir: str | Path, params: Params) -> None:
        super().__init__()
        self.tensor_dir = Path(tensor_dir)
        self.params = params
        self.splits: dict[str, ShardWindows | LegacyNpyWindows] = {}

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        dataset = self.params.dataset
        for split in ("train", "val", "test"):
            self.splits[split] = open_windows(
                self.tensor_dir,
                split,
                self.params.modalities,
                dataset.channel_groups,
                dataset.prefetch_shards,
            )

    @property
    def classes(self) -> list[int]:
        self.setup()
        return self.splits["train"].classes

    @property
    def class_names(self) -> list[str]:
        self.setup()
        return self.splits["train"].class_names

    def loader(self, split: str, shuffle: bool = False) -> DataLoader:
        self.setup()
        dataset = self.params.dataset
        pin = dataset.pin_memory
        generator = torch.Generator().manual_seed(self.params.seed)
        return DataLoader(
            self.splits[split],
            batch_size=dataset.batch_size,
            shuffle=shuffle,
            generator=generator if shuffle else None,
            collate_fn=collate_windows,
            num_workers=dataset.num_workers,
            persistent_workers=dataset.num_workers > 0,
            pin_memory=torch.cuda.is_available() if pin == "auto" else pin,
        )

    def train_dataloader(self) -> DataLoader:
        return self.loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self.loader("val")

    def test_dataloader(self) -> DataLoader:
        return self.loader("test")
