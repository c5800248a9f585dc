"""Stage preprocess: raw `.dat` files → `data/processed/subject_<id>/activity_<id>.csv`."""

from harfusion import layout
from harfusion.cli import run_stage
from harfusion.data.preprocess import preprocess
from harfusion.params import Params


def main(params: Params) -> None:
    shards = preprocess(params.data.raw_dir, layout.PROCESSED, params.preprocess)
    rows = sum(shard["rows"] for shard in shards)
    print(f"preprocess: {rows} rows in {len(shards)} shards under {layout.PROCESSED}")


if __name__ == "__main__":
    run_stage(main)
