"""Stage evaluate: test metrics, calibration, uncertainty, missing modalities → `reports/eval/`."""

from pathlib import Path

from harfusion.cli import run_stage
from harfusion.evaluation import evaluate
from harfusion.params import Params


def main(params: Params) -> None:
    metrics = evaluate(
        params,
        tensor_dir=Path("data/processed_tensors"),
        models_dir=Path("models"),
        out_dir=Path("reports/eval"),
    )
    print(
        f"evaluate: accuracy {metrics['accuracy']:.3f}, macro F1 {metrics['f1_macro']:.3f}, "
        f"ECE {metrics['ece_before']:.3f} → {metrics['ece_after']:.3f}"
    )


if __name__ == "__main__":
    run_stage(main)
