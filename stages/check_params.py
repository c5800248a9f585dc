"""Validate the whole params.yaml; DVC re-runs this on any change, so a typo in -S fails at once."""

from harfusion.cli import run_stage

if __name__ == "__main__":
    run_stage(lambda params: print("params.yaml is valid"))
