"""Stage train: fit the fusion model (`train.ensemble` members); the model file to `models/`,
epochs and the kept ones to `reports/train/`."""

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
        monitor = summary["monitor"]
        kept = ", ".join(
            f"epoch {m['kept_epoch']} of {m['epochs']} ({monitor} {m['best_' + monitor]:.4f})"
            for m in summary["members"]
        )
        members = len(summary["members"])
        print(
            f"train: kept {kept}"
            + (f" for its {members} members" if members > 1 else "")
            + f", {summary['fit_seconds']:.1f} s; temperature "
            f"{summary['calibration']['temperature']:.3f}"
        )


if __name__ == "__main__":
    run_stage(main)
