"""The training DataLoader against bare slicing of one pre-built [N, T, C] tensor, and the share
of a real training epoch spent waiting for data.

    uv run python benchmarks/loader_speed.py            # default data, window 512, batch 64
    uv run python benchmarks/loader_speed.py --smoke    # tiny, for CI

The per-window row is the loader as it was before batches were gathered in one tensor op
(`ShardWindows.__getitems__`): one Python call and one collate per window.
"""

from __future__ import annotations

import time

import torch
from _common import SMOKE_SECONDS, Row, parser, report, tensor_data
from _loops import lightning_loop
from torch.utils.data import DataLoader, Dataset

from harfusion.data.dataset import Sample, ShardWindows, collate_windows
from harfusion.params import Params
from harfusion.training.datamodule import WindowDataModule

DEFAULT_SECONDS = 60.0


class OneByOne(Dataset):
    """The same windows without the batched-fetch hook."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # ty: ignore[invalid-argument-type]

    def __getitem__(self, index: int) -> Sample:
        return self.dataset[index]


def rate(batches, epochs: int) -> float:
    """Windows per second over `epochs` passes of an iterable factory."""
    windows, started = 0, time.perf_counter()
    for _ in range(epochs):
        for batch in batches():
            windows += len(batch["label"])
    return windows / (time.perf_counter() - started)


def main() -> None:
    args = parser(__doc__ or "")
    args.add_argument("--epochs", type=int, default=5)
    options = args.parse_args()
    params = Params(chunk_size=128) if options.smoke else Params()
    seconds = SMOKE_SECONDS if options.smoke else DEFAULT_SECONDS
    epochs = 1 if options.smoke else options.epochs
    tensors = tensor_data(options.work, seconds, params)
    torch.set_num_threads(1)
    data = WindowDataModule(tensors, params)
    data.setup()
    train = data.splits["train"]
    assert isinstance(train, ShardWindows), "the benchmark reads tensor shards"
    size = params.dataset.batch_size
    generator = torch.Generator().manual_seed(0)
    one_by_one = DataLoader(
        OneByOne(train), size, shuffle=True, generator=generator, collate_fn=collate_windows
    )
    everything = collate_windows(train.__getitems__(list(range(len(train)))))
    stacked = torch.cat(list(everything["inputs"].values()), dim=-1)  # every modality read
    labels = everything["label"]

    def bare():
        order = torch.randperm(len(labels), generator=generator)
        for start in range(0, len(order), size):
            index = order[start : start + size]
            yield {"inputs": stacked[index], "label": labels[index]}

    ours = rate(data.train_dataloader, epochs)
    baseline = rate(bare, epochs)
    before = rate(lambda: one_by_one, epochs)
    steps = len(data.train_dataloader())
    epoch = lightning_loop(params, tensors, steps=steps, warmup=1)
    report(
        f"training DataLoader ({len(train)} windows of {params.chunk_size} steps, batch {size})",
        [
            Row("windows/s: our loader vs bare slicing", ours, baseline, "/s", "~1x"),
            Row("windows/s: per-window fetch vs bare", before, baseline, "/s", "(before)"),
            Row(
                "waiting for data vs whole epoch (hybrid)",
                epoch.waiting_share * epoch.seconds,
                epoch.seconds,
                "s",
                "<= 0.1x",
            ),
        ],
    )


if __name__ == "__main__":
    main()
