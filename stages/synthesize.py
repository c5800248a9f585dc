"""Stage synthesize: the embedded default data set, raw PAMAP2 `.dat` files."""

from pathlib import Path

from harfusion.cli import run_stage
from harfusion.data.synthetic.generate import generate
from harfusion.params import Params
from harfusion.threads import usable_cores


def main(params: Params) -> None:
    synthetic = params.data.synthetic
    summary = generate(synthetic, synthetic.seed, Path(synthetic.out_dir), usable_cores())
    print(summary)


if __name__ == "__main__":
    run_stage(main)
