"""Stage train: fit the fusion model; weights to `models/`, DVCLive logs to `reports/train/`."""

from pathlib import Path

from harfusion.cli import run_stage
from harfusion.params import Params
from harfusion.training import fit


def main(params: Params) -> None:
    summary = fit(
        params,
        tensor_dir=Path("data/processed_tensors"),
        models_dir=Path("models"),
        reports_dir=Path("reports/train"),
    )
    if summary:
        print(f"train: {summary}")


if __name__ == "__main__":
    run_stage(main)
