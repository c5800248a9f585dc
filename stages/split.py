"""Stage split: assign shards to `data/splits/{train,val,test}.txt`."""

import json
import sys

from harfusion import layout
from harfusion.cli import run_stage
from harfusion.data.splits import write_splits
from harfusion.params import Params


def main(params: Params) -> None:
    summary = write_splits(layout.PROCESSED, layout.SPLITS, params.split)
    print(json.dumps(summary["fractions"]))
    if params.split.strategy == "shard" and summary["max_fraction_error"] > 0.01:
        print(
            f"warning: split fractions {summary['fractions']} miss the target by more than one "
            "point: too few shards to keep every activity in every split and hit the fractions",
            file=sys.stderr,
        )


if __name__ == "__main__":
    run_stage(main)
