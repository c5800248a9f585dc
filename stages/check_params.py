"""Validate the whole params.yaml; DVC re-runs this on any change, so a typo in -S fails at once.

It also checks the params against the dataset description `data.dataset` names (modalities,
channel groups), and that `data.raw_dir` exists: `dvc repro` runs this stage first, and
otherwise DVC itself would refuse preprocess's missing dependency with a bare errno message.
"""

from pathlib import Path

from harfusion.cli import run_stage
from harfusion.data.description import load_description
from harfusion.errors import HarfusionError
from harfusion.params import Params


def main(params: Params) -> None:
    data = params.data
    description = load_description(data.dataset)
    description.inputs(params.modalities, params.dataset.channel_groups)
    synthesized = Path(data.raw_dir) == Path(data.synthetic.out_dir)  # synthesize makes it
    if not synthesized and not Path(data.raw_dir).is_dir():
        files = description.files
        holds = f"{files.sessions[0]}/" if files.sessions else f"the {files.name_of('<id>')} files"
        raise HarfusionError(
            f"data.raw_dir: {data.raw_dir} is not a directory; point it at the folder that "
            f"holds {description.name}'s {holds}"
        )
    print(f"params.yaml is valid for {description.name}")


if __name__ == "__main__":
    run_stage(main)
