"""Stage tidy: keep the temporaries folder as DVC recorded it, so killed stages leave no litter.

Every output is built in `layout.TEMPORARIES` and renamed into place (`harfusion.atomic`); a
stage killed mid-write leaves its temporary there. The folder is this stage's output, so litter
changes it and the next `dvc repro` either restores it from the cache (DVC's checkout deletes
every file the record lacks) or reruns this stage (DVC deletes an output before its stage runs),
also when it restores every other stage from the run-cache instead of running it. A deleted
folder is an output to restore, never a missing dependency.
"""

from harfusion.cli import run_stage
from harfusion.layout import TEMPORARIES
from harfusion.params import Params

README = """\
Outputs are built here and renamed into place (src/harfusion/atomic.py). What a killed stage
left here is removed by the next `dvc repro` (the tidy stage, whose output this folder is).
"""


def main(_: Params) -> None:
    TEMPORARIES.mkdir(exist_ok=True)
    (TEMPORARIES / "README").write_text(README)


if __name__ == "__main__":
    run_stage(main)
