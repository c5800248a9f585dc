"""Stage baseline: a forest on window statistics of train's windows → `reports/baseline/`."""

from pathlib import Path

from harfusion.baseline import run_baseline
from harfusion.cli import run_stage
from harfusion.params import Params


def main(params: Params) -> None:
    metrics = run_baseline(
        params, tensor_dir=Path("data/processed_tensors"), out_dir=Path("reports/baseline")
    )
    print(
        f"baseline ({metrics['model']}, {metrics['features']} features): accuracy "
        f"{metrics['accuracy']:.3f}, macro F1 {metrics['f1_macro']:.3f}"
    )


if __name__ == "__main__":
    run_stage(main)
