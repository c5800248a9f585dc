"""Stage evaluate: test metrics, calibration, uncertainty, missing modalities → `reports/eval/`."""

from harfusion import layout
from harfusion.cli import run_stage
from harfusion.evaluation.evaluate import evaluate
from harfusion.params import Params


def main(params: Params) -> None:
    metrics = evaluate(
        params,
        tensor_dir=layout.TENSORS,
        models_dir=layout.MODELS,
        out_dir=layout.EVAL,
    )
    print(
        f"evaluate: accuracy {metrics['accuracy']:.3f}, macro F1 {metrics['f1_macro']:.3f}, "
        f"ECE {metrics['ece_before']:.3f} → {metrics['ece_after']:.3f}"
    )


if __name__ == "__main__":
    run_stage(main)
