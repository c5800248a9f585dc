"""The splits' windows and their DataLoaders, as training and evaluation read them.

Free of Lightning, so `evaluate` starts without importing it (benchmarks/startup.py).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch.utils.data import DataLoader, WeightedRandomSampler

from harfusion.data.dataset import LegacyNpyWindows, ShardWindows, collate_windows, open_windows
from harfusion.data.description import Description, Inputs, read_dataset
from harfusion.errors import HarfusionError
from harfusion.layout import DATASET
from harfusion.params import Params


def model_inputs(description: Description | None, params: Params) -> Inputs:
    """What the model reads (`modalities`, `dataset.channel_groups`) of the dataset the tensors
    were made from. The legacy `.npy` layout names no dataset (`description` None): its
    modalities are the listed ones, their channels unnamed, each a `motion` signal with no
    3-axis vector known."""
    if description is not None:
        return description.inputs(params.modalities, params.dataset.channel_groups)
    if params.modalities == "all":
        raise HarfusionError(
            f"no {DATASET} beside the windows (the legacy .npy layout?): list the modalities to "
            "read in `modalities`"
        )
    modalities = tuple(params.modalities)
    return Inputs(
        modalities,
        channel_names={m: [] for m in modalities},
        kinds=dict.fromkeys(modalities, "motion"),
        triads={m: [] for m in modalities},
        groups={m: [] for m in modalities},
    )


class SplitLoaders:
    def __init__(
        self,
        tensor_dir: str | Path,
        params: Params,
        device: torch.device | None = None,
        inputs: Inputs | None = None,
    ) -> None:
        """`device`: where the model runs; on CUDA, batches may be gathered there. `inputs`:
        what to read of the windows (a trained model's), instead of what params select."""
        self.tensor_dir = Path(tensor_dir)
        self.params = params
        self.device = device
        self.splits: dict[str, ShardWindows | LegacyNpyWindows] = {}
        # One generator for the training loader's shuffle or sampler, kept here so a resumed
        # training can restore its state (training.RandomState) into the loader it reads.
        self.shuffle_generator = torch.Generator().manual_seed(params.seed)
        # The dataset the tensors were made from (None: the legacy .npy layout names none).
        self.description = (
            read_dataset(self.tensor_dir) if (self.tensor_dir / DATASET).exists() else None
        )
        self.inputs = inputs or model_inputs(self.description, params)

    def setup(self, stage: str | None = None) -> None:
        dataset = self.params.dataset
        if not self.splits:
            for split in ("train", "val", "test"):
                self.splits[split] = open_windows(
                    self.tensor_dir, split, self.inputs.channel_names, dataset.prefetch_shards
                )
        device = self._gather_device()
        for windows in self.splits.values():
            if device is not None and isinstance(windows, ShardWindows):
                windows.to(device)

    def target_device(self) -> torch.device | None:
        """Where the model runs (the DataModule asks its Trainer when not told)."""
        return self.device

    def _gather_device(self) -> torch.device | None:
        """The CUDA device to gather batches on, if `dataset.gather_on_device` allows it.

        Loading, not the GPU, limited GPU training (benchmarks/gpu_training.py): a batch
        gathered from rows already on the device costs no host work and no copy.
        """
        dataset = self.params.dataset
        device = self.target_device()
        if dataset.gather_on_device is False or device is None:
            return None
        if device.type != "cuda" or dataset.num_workers > 0 or not dataset.prefetch_shards:
            if dataset.gather_on_device is True:
                raise HarfusionError(
                    "dataset.gather_on_device: true needs a CUDA device, num_workers: 0 and "
                    "prefetch_shards: true"
                )
            return None
        return device

    @property
    def channels(self) -> dict[str, int]:
        """Input channels per modality, in mask order."""
        self.setup()
        return dict(self.splits["train"].spec.channels)

    @property
    def classes(self) -> list[int]:
        self.setup()
        return self.splits["train"].classes

    @property
    def class_names(self) -> list[str]:
        self.setup()
        return self.splits["train"].class_names

    def labels(self, split: str) -> torch.Tensor:
        """Every window's class index in `split`, without reading a sample."""
        self.setup()
        windows = self.splits[split]
        if isinstance(windows, ShardWindows):
            return windows.shard_labels.cpu()[windows.windows[:, 0]]
        return windows.targets

    def class_counts(self, split: str = "train") -> torch.Tensor:
        """Windows per class in `split`; zero for a class the split lacks."""
        return torch.bincount(self.labels(split), minlength=len(self.classes))

    def loader(self, split: str, shuffle: bool = False) -> DataLoader:
        """`shuffle` marks the training loader; with `train.class_balance: sampler` it draws
        windows with replacement, each class equally often on average."""
        self.setup()
        dataset = self.params.dataset
        pin = dataset.pin_memory
        windows = self.splits[split]
        on_device = isinstance(windows, ShardWindows) and windows.device.type != "cpu"
        generator = self.shuffle_generator
        sampler = None
        if shuffle and self.params.train.class_balance == "sampler":
            labels = self.labels(split)
            per_class = 1.0 / torch.bincount(labels).clamp_min(1).double()
            sampler = WeightedRandomSampler(
                per_class[labels].tolist(), len(labels), replacement=True, generator=generator
            )
        return DataLoader(
            windows,
            batch_size=dataset.batch_size,
            # A final batch of one window gives batch norm one value per channel wherever a
            # conv front end shortens windows to one step, which it cannot normalise: drop it.
            drop_last=shuffle and len(windows) % dataset.batch_size == 1,
            shuffle=shuffle and sampler is None,
            sampler=sampler,
            # also the iterator's base seed: from our generator, never torch's global one
            generator=generator if shuffle else None,
            collate_fn=collate_windows,
            num_workers=dataset.num_workers,
            persistent_workers=dataset.num_workers > 0,
            pin_memory=not on_device and (torch.cuda.is_available() if pin == "auto" else pin),
        )
