"""What the training progress bar costs a launch-bound loop, against no bar at all.

    uv run python benchmarks/progress_bar.py            # 3000 steps, three rounds
    uv run python benchmarks/progress_bar.py --smoke    # a few steps, for CI

Our models are small: on a GPU a step is a few milliseconds of small kernels, so the host's
Python decides the speed, and a thread that takes the GIL to redraw a bar slows every step.
A tiny model on tiny CPU batches reproduces that on any machine. Each round runs Lightning's
default bar, the bar `make_trainer` attaches (`training.fit.progress_bar`) and no bar, in turn;
the median round counts.
"""

from __future__ import annotations

import statistics

import lightning as L
import torch
from _common import Row, parser, report
from _loops import StepTimer
from lightning.pytorch.callbacks import ProgressBar
from torch import nn

from harfusion.training.fit import progress_bar

BATCH = 4


class Tiny(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(*(nn.Linear(16, 16) for _ in range(8)))

    def training_step(self, batch: list[torch.Tensor], batch_idx: int) -> torch.Tensor:
        inputs, targets = batch
        return nn.functional.mse_loss(self.net(inputs), targets)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.AdamW(self.parameters())


def steps_per_second(bar: ProgressBar | bool | None, steps: int, warmup: int) -> float:
    """`bar`: a bar callback, None for Lightning's default, False for none."""
    torch.manual_seed(0)
    data = torch.utils.data.TensorDataset(torch.randn(4096, 16), torch.randn(4096, 16))
    timer = StepTimer(warmup, BATCH)
    trainer = L.Trainer(
        accelerator="cpu",
        max_steps=steps,
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        enable_progress_bar=bar is not False,
        callbacks=[timer, *([bar] if isinstance(bar, ProgressBar) else [])],
    )
    trainer.fit(Tiny(), torch.utils.data.DataLoader(data, batch_size=BATCH))
    return len(timer.timing.starts) / timer.timing.seconds


def main() -> None:
    args = parser(__doc__ or "")
    args.add_argument("--steps", type=int, default=3000)
    args.add_argument("--rounds", type=int, default=3)
    options = args.parse_args()
    steps, warmup, rounds = (40, 10, 1) if options.smoke else (options.steps, 200, options.rounds)
    torch.set_num_threads(1)
    runs: dict[str, list[float]] = {"default": [], "ours": [], "none": []}
    for _ in range(rounds):
        runs["default"].append(steps_per_second(None, steps, warmup))
        runs["ours"].append(steps_per_second(progress_bar(), steps, warmup))
        runs["none"].append(steps_per_second(False, steps, warmup))
    median = {name: statistics.median(rates) for name, rates in runs.items()}
    rows = [
        Row("our bar: steps/s vs no bar", median["ours"], median["none"], "/s"),
        Row("Lightning's default bar: steps/s vs no bar", median["default"], median["none"], "/s"),
    ]
    report(f"progress bar (launch-bound loop, median of {rounds} rounds)", rows)


if __name__ == "__main__":
    main()
