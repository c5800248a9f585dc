"""Stage plots_template: the page `dvc plots show/diff` fill, with Vega inline (draws offline)."""

from harfusion import layout
from harfusion.cli import run_stage
from harfusion.evaluation.plots_template import write_page
from harfusion.params import Params


def main(_: Params) -> None:
    size = write_page(layout.PLOTS_TEMPLATE)
    print(f"plots_template: wrote {layout.PLOTS_TEMPLATE} ({size / 1e6:.1f} MB, Vega inline)")


if __name__ == "__main__":
    run_stage(main)
