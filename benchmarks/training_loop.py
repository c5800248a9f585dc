"""Training throughput: our Lightning loop against a bare PyTorch loop, per fusion type.

    uv run python benchmarks/training_loop.py            # default data, 120 steps each
    uv run python benchmarks/training_loop.py --smoke    # tiny, for CI

Same process, model, data, batch size and threads for both; each loop runs twice, alternating,
and the faster run of each counts (this machine's neighbours make single runs noisy).
"""

from __future__ import annotations

from _common import SMOKE_SECONDS, Row, parser, report, tensor_data
from _loops import bare_loop, lightning_loop

from harfusion.params import Params

DEFAULT_SECONDS = 60.0  # the default synthetic set; throughput does not depend on its size
TARGET = 0.9


def main() -> None:
    args = parser(__doc__ or "")
    args.add_argument("--steps", type=int, default=120)
    args.add_argument("--warmup", type=int, default=10)
    args.add_argument("--fusion", nargs="+", default=["early", "late", "hybrid"])
    options = args.parse_args()
    steps, warmup = (6, 2) if options.smoke else (options.steps, options.warmup)
    seconds = SMOKE_SECONDS if options.smoke else DEFAULT_SECONDS
    base = Params(chunk_size=128) if options.smoke else Params()
    tensors = tensor_data(options.work, seconds, base)
    rows = []
    for fusion in options.fusion:
        params = base.model_copy(update={"fusion": fusion})
        ours, bare = 0.0, 0.0
        for _ in range(2):
            ours = max(ours, lightning_loop(params, tensors, steps, warmup).windows_per_second)
            bare = max(bare, bare_loop(params, tensors, steps, warmup).windows_per_second)
        rows.append(Row(f"{fusion}: windows/s, Lightning vs bare", ours, bare, "/s", ">= 0.9x"))
    report(f"training loop (batch {base.dataset.batch_size}, {steps - warmup} timed steps)", rows)


if __name__ == "__main__":
    main()
