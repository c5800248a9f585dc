"""Validate the whole params.yaml; DVC re-runs this on any change, so a typo in -S fails at once.

It also checks that `data.raw_dir` exists: `dvc repro` runs this stage first, and otherwise
DVC itself would refuse preprocess's missing dependency with a bare errno message.
"""

from pathlib import Path

from harfusion.cli import run_stage
from harfusion.errors import HarfusionError
from harfusion.params import Params


def main(params: Params) -> None:
    data = params.data
    synthesized = Path(data.raw_dir) == Path(data.synthetic.out_dir)  # synthesize makes it
    if not synthesized and not Path(data.raw_dir).is_dir():
        raise HarfusionError(
            f"data.raw_dir: {data.raw_dir} is not a directory; point it at the folder that "
            "holds Protocol/ (and Optional/)"
        )
    print("params.yaml is valid")


if __name__ == "__main__":
    run_stage(main)
