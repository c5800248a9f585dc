"""Stage train: fit the fusion model; weights to `models/`, epochs and the kept one to
`reports/train/`."""

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
        print(
            f"train: kept epoch {summary['kept_epoch']} of {summary['epochs']} "
            f"({summary['monitor']} {summary['best_' + summary['monitor']]:.4f}), "
            f"{summary['fit_seconds']:.1f} s"
        )


if __name__ == "__main__":
    run_stage(main)
