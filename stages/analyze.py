"""Stage analyze: per-run figures from `reports/{train,eval,baseline}/` → `reports/analysis/`,
naming modalities as the dataset description beside the tensors does."""

from harfusion import layout
from harfusion.cli import run_stage
from harfusion.data.description import read_dataset
from harfusion.evaluation.analysis import analyze
from harfusion.params import Params


def main(params: Params) -> None:
    labels = read_dataset(layout.TENSORS).modality_labels
    for path in analyze(
        layout.EVAL, layout.TRAIN_REPORTS, layout.BASELINE, layout.ANALYSIS, labels
    ):
        print(f"analyze: wrote {path}")


if __name__ == "__main__":
    run_stage(main)
