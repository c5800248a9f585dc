"""Stage preprocess: the recordings `data.dataset` describes → `data/processed/subject_<id>/
activity_<id>.csv`, with the checked description beside them (`dataset.json`)."""

from harfusion import layout
from harfusion.cli import run_stage
from harfusion.data.description import load_description
from harfusion.data.preprocess import preprocess
from harfusion.params import Params


def main(params: Params) -> None:
    description = load_description(params.data.dataset)
    shards = preprocess(params.data.raw_dir, layout.PROCESSED, params.preprocess, description)
    rows = sum(shard["rows"] for shard in shards)
    print(
        f"preprocess: {rows} rows of {description.name} in {len(shards)} shards under "
        f"{layout.PROCESSED}"
    )


if __name__ == "__main__":
    run_stage(main)
