"""Stage tidy: empty the temporaries folder of what killed stages left in it.

Its only dependency is that folder, so it runs exactly when something is left there; the stages
themselves clear their own leftovers when they run, but not when DVC restores them from the
run-cache instead.
"""

from harfusion.atomic import remove
from harfusion.cli import run_stage
from harfusion.layout import TEMPORARIES
from harfusion.params import Params


def main(_: Params) -> None:
    litter = sorted(p for p in TEMPORARIES.iterdir() if p.name != ".gitignore")
    for path in litter:
        remove(path)
    print(f"tidy: removed {len(litter)} leftover temporaries: {[p.name for p in litter]}")


if __name__ == "__main__":
    run_stage(main)
