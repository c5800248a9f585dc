"""Stage tensorize: tensor shards, window indexes and train-only normalisation statistics."""

from pathlib import Path

from harfusion.cli import run_stage
from harfusion.params import Params
from harfusion.tensorize import tensorize


def main(params: Params) -> None:
    manifest = tensorize(
        splits_dir=Path("data/splits"),
        processed_dir=Path("data/processed"),
        out_dir=Path("data/processed_tensors"),
        chunk_size=params.chunk_size,
        stride=params.stride,
        train_stride=params.train_stride,
    )
    counts = {split: len(windows) for split, windows in manifest["windows"].items()}
    print(f"tensorize: windows per split {counts}, {len(manifest['classes'])} classes")


if __name__ == "__main__":
    run_stage(main)
