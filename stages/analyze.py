"""Stage analyze: per-run figures from `reports/eval/` → `reports/analysis/`."""

from pathlib import Path

from harfusion.analysis import analyze
from harfusion.cli import run_stage
from harfusion.params import Params


def main(params: Params) -> None:
    for path in analyze(Path("reports/eval"), Path("reports/analysis")):
        print(f"analyze: wrote {path}")


if __name__ == "__main__":
    run_stage(main)
