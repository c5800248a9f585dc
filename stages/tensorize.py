"""Stage tensorize: tensor shards, window indexes and train-only normalisation statistics."""

from harfusion import layout
from harfusion.cli import run_stage
from harfusion.data.tensorize import tensorize
from harfusion.params import Params


def main(params: Params) -> None:
    manifest = tensorize(
        splits_dir=layout.SPLITS,
        processed_dir=layout.PROCESSED,
        out_dir=layout.TENSORS,
        chunk_size=params.chunk_size,
        stride=params.stride,
        train_stride=params.train_stride,
    )
    counts = {split: len(windows) for split, windows in manifest["windows"].items()}
    print(f"tensorize: windows per split {counts}, {len(manifest['classes'])} classes")


if __name__ == "__main__":
    run_stage(main)
