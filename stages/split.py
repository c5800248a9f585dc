"""Stage split: assign shards to `data/splits/{train,val,test}.txt`."""

import json
from pathlib import Path

from harfusion.cli import run_stage
from harfusion.params import Params
from harfusion.splits import write_splits

PROCESSED_DIR = Path("data/processed")
OUT_DIR = Path("data/splits")


def main(params: Params) -> None:
    summary = write_splits(PROCESSED_DIR, OUT_DIR, params.split)
    print(json.dumps(summary["fractions"]))


if __name__ == "__main__":
    run_stage(main)
