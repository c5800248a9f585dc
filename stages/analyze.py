"""Stage analyze: per-run figures from `reports/{train,eval,baseline}/` → `reports/analysis/`."""

from harfusion import layout
from harfusion.cli import run_stage
from harfusion.evaluation.analysis import analyze
from harfusion.params import Params


def main(params: Params) -> None:
    for path in analyze(layout.EVAL, layout.TRAIN_REPORTS, layout.BASELINE, layout.ANALYSIS):
        print(f"analyze: wrote {path}")


if __name__ == "__main__":
    run_stage(main)
