"""Training on a CUDA GPU at PAMAP2 scale, bf16 mixed precision: our Lightning loop against a
bare loop, GPU memory, and whether data loading starves the GPU.

    uv run python benchmarks/gpu_training.py             # prints that it skipped without CUDA
    uv run python benchmarks/gpu_training.py --smoke     # tiny data, few steps

Starvation is judged against the bare loop cycling over batches already on the GPU: the loop's
speed with loading taken out. Our loader gathers batches on the GPU by default
(`dataset.gather_on_device: auto`); it is also tried gathering on the host into pinned memory,
in the main process and in worker processes.
"""

from __future__ import annotations

import gc

import torch
from _common import PAMAP2_SECONDS, SMOKE_SECONDS, Row, parser, report, tensor_data
from _loops import bare_loop, lightning_loop

from harfusion.params import Params


def measure(run, *args, repeats: int = 2) -> tuple[float, float]:
    """Best windows per second of `repeats` calls of `run(*args)`, and the peak GPU memory in MB.

    Single runs of a few seconds varied by ±15% between machines' warm-up states (clocks,
    allocator), so the best of several counts, as on the CPU.
    """
    rate, peak = 0.0, 0.0
    for _ in range(repeats):
        gc.collect()  # earlier runs' data modules hold their rows on the GPU until collected
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        rate = max(rate, run(*args).windows_per_second)
        peak = max(peak, torch.cuda.max_memory_allocated() / 2**20)
    return rate, peak


def loading(params: Params, on_device: bool, workers: int) -> Params:
    dataset = params.dataset.model_copy(
        update={"gather_on_device": on_device, "num_workers": workers}
    )
    return params.model_copy(update={"dataset": dataset})


def main() -> None:
    args = parser(__doc__ or "")
    args.add_argument("--steps", type=int, default=300)
    args.add_argument("--warmup", type=int, default=30)
    args.add_argument("--batch-size", type=int, default=256)
    args.add_argument("--workers", type=int, default=4)
    options = args.parse_args()
    if not torch.cuda.is_available():
        print("gpu_training: no CUDA GPU on this machine; skipped")
        return
    steps, warmup = (8, 2) if options.smoke else (options.steps, options.warmup)
    seconds = SMOKE_SECONDS if options.smoke else PAMAP2_SECONDS
    base = Params.model_validate(
        {
            "chunk_size": 128 if options.smoke else 512,
            "dataset": {"batch_size": options.batch_size, "pin_memory": True},
        }
    )
    tensors = tensor_data(options.work, seconds, base)
    rows = []
    for fusion in ("early", "late", "hybrid"):
        params = base.model_copy(update={"fusion": fusion})
        ours, memory, bare, bare_memory = 0.0, 0.0, 0.0, 0.0
        for _ in range(2):  # alternate, so a drift in clocks favours neither loop
            rate, peak = measure(lightning_loop, params, tensors, steps, warmup, repeats=1)
            ours, memory = max(ours, rate), max(memory, peak)
            rate, peak = measure(bare_loop, params, tensors, steps, warmup, repeats=1)
            bare, bare_memory = max(bare, rate), max(bare_memory, peak)
        resident, _ = measure(bare_loop, params, tensors, steps, warmup, True)
        host, _ = measure(lightning_loop, loading(params, False, 0), tensors, steps, warmup)
        pooled, _ = measure(
            lightning_loop, loading(params, False, options.workers), tensors, steps, warmup
        )
        rows += [
            Row(f"{fusion}: windows/s, Lightning vs bare", ours, bare, "/s", ">= 0.9x"),
            Row(f"{fusion}: Lightning vs on-GPU batches", ours, resident, "/s", "~1x"),
            Row(f"{fusion}: same, host gather + pinned", host, resident, "/s"),
            Row(f"{fusion}: same, {options.workers} loader workers", pooled, resident, "/s"),
            Row(f"{fusion}: peak GPU memory, Lightning vs bare", memory, bare_memory, "MB"),
        ]
    name = torch.cuda.get_device_name()
    report(f"GPU training, bf16-mixed, batch {options.batch_size}, {name}", rows)


if __name__ == "__main__":
    main()
