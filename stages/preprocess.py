"""Stage preprocess: raw `.dat` files → `data/processed/subject_<id>/activity_<id>.csv`."""

from harfusion.cli import run_stage
from harfusion.params import Params
from harfusion.preprocess import preprocess

OUT_DIR = "data/processed"


def main(params: Params) -> None:
    shards = preprocess(
        params.data.raw_dir,
        OUT_DIR,
        sessions=params.preprocess.sessions,
        hr_median_window=params.preprocess.hr_median_window,
        max_shard_mb=params.preprocess.max_shard_mb,
    )
    rows = sum(shard["rows"] for shard in shards)
    print(f"preprocess: {rows} rows in {len(shards)} shards under {OUT_DIR}")


if __name__ == "__main__":
    run_stage(main)
