"""Stage train: fit the fusion model; weights to `models/`, DVCLive logs to `reports/train/`."""

from harfusion import layout
from harfusion.cli import run_stage
from harfusion.params import Params
from harfusion.training.fit import fit


def main(params: Params) -> None:
    summary = fit(
        params,
        tensor_dir=layout.TENSORS,
        models_dir=layout.MODELS,
        reports_dir=layout.TRAIN_REPORTS,
    )
    if summary:
        print(f"train: {summary}")


if __name__ == "__main__":
    run_stage(main)
