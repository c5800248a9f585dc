"""Stage synthesize: the embedded default data set, raw PAMAP2 `.dat` files."""

import os
from pathlib import Path

from harfusion.cli import run_stage
from harfusion.params import Params
from harfusion.synthetic import generate


def main(params: Params) -> None:
    synthetic = params.data.synthetic
    workers = len(os.sched_getaffinity(0))
    summary = generate(synthetic, synthetic.seed, Path(synthetic.out_dir), workers)
    print(summary)


if __name__ == "__main__":
    run_stage(main)
