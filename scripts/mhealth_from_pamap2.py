"""Make MHEALTH-layout recordings (`mHealth_subject<k>.log`) from PAMAP2 ones, for trying the
pipeline on MHEALTH's format without the real files:

    uv run python scripts/mhealth_from_pamap2.py --pamap2 ../shared/pamap2_dev --out /tmp/mh
    uv run dvc exp run -S data.dataset=mhealth -S data.raw_dir=/tmp/mh \
        -S split.strategy=subject -S 'split.val_subjects=[1]' -S 'split.test_subjects=[8]'

The conversion (placements, 100 → 50 Hz, deg/s, a synthesized ECG, the activity mapping) is
described in `tests/datasets.py` and docs/datasets.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' helpers

import numpy as np

from harfusion.data.description import load_description
from harfusion.data.recordings import read_recording
from tests.datasets import convert_pamap2


def main() -> int:
    parse = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parse.add_argument("--pamap2", type=Path, required=True, help="folder holding Protocol/")
    parse.add_argument("--out", type=Path, required=True, help="folder for the .log files")
    args = parse.parse_args()
    mhealth = load_description("mhealth")
    for path in convert_pamap2(args.pamap2, args.out):
        labels = read_recording(path, mhealth).labels
        found, counts = np.unique(labels, return_counts=True)
        rows = ", ".join(
            f"{mhealth.activity_name(int(a))} {n}" for a, n in zip(found, counts, strict=True)
        )
        print(f"{path}: {len(labels)} rows ({rows})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
