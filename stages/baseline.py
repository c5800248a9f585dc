"""Stage baseline: a forest on window statistics of train's windows → `reports/baseline/`."""

from harfusion import layout
from harfusion.cli import run_stage
from harfusion.evaluation.baseline import run_baseline
from harfusion.params import Params


def main(params: Params) -> None:
    metrics = run_baseline(params, tensor_dir=layout.TENSORS, out_dir=layout.BASELINE)
    print(
        f"baseline ({metrics['model']}, {metrics['features']} features): accuracy "
        f"{metrics['accuracy']:.3f}, macro F1 {metrics['f1_macro']:.3f}"
    )


if __name__ == "__main__":
    run_stage(main)
