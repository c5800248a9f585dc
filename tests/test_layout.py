"""dvc.yaml names for DVC the paths that `harfusion.layout` names for the code: they must agree,
or DVC would cache, restore and show files the stages no longer write."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from harfusion import layout

ROOT = Path(__file__).resolve().parents[1]
STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def _in(folder: Path, *names: str) -> set[str]:
    return {(folder / name).as_posix() for name in names}


# What each stage writes, in layout's names.
WRITES = {
    "tidy": {layout.TEMPORARIES.as_posix()},
    "plots_template": {layout.PLOTS_TEMPLATE.as_posix()},
    "preprocess": _in(layout.PROCESSED, ""),
    "split": _in(layout.SPLITS, ""),
    "tensorize": _in(layout.TENSORS, ""),
    "train": _in(layout.MODELS, "")
    | _in(layout.TRAIN_REPORTS, layout.METRICS, layout.EPOCHS, layout.MEMBERS),
    "baseline": _in(
        layout.BASELINE, layout.METRICS, layout.SCORES, layout.BASELINE_WINDOWS, layout.CONFUSION
    ),
    "evaluate": _in(
        layout.EVAL,
        layout.METRICS,
        layout.SCORES,
        layout.LATENCY,
        layout.UNCERTAINTY,
        layout.MISSING_MODALITY,
        layout.RELIABILITY,
        layout.CONFUSION,
        layout.PREDICTIONS,
        layout.CALIBRATION_PLOT,
        layout.ATTENTION_PLOT,
    ),
    "analyze": _in(layout.ANALYSIS, *layout.ANALYSIS_PLOTS),
    "export": _in(layout.EXPORTS, ""),
}
# What each stage reads of another's outputs.
READS = {
    "check_params": {layout.USER_DATASETS.as_posix()},
    "preprocess": {layout.USER_DATASETS.as_posix()},
    "plots_template": {"uv.lock"},
    "split": _in(layout.PROCESSED, ""),
    "tensorize": _in(layout.PROCESSED, "") | _in(layout.SPLITS, ""),
    "train": _in(layout.TENSORS, ""),
    "baseline": _in(layout.TENSORS, ""),
    "evaluate": _in(layout.MODELS, "") | _in(layout.TENSORS, ""),
    "export": {"uv.lock"} | _in(layout.MODELS, "") | _in(layout.TENSORS, ""),
    "analyze": _in(layout.EVAL, layout.SCORES, layout.MISSING_MODALITY, layout.CONFUSION)
    | _in(layout.BASELINE, layout.CONFUSION)
    | _in(layout.TRAIN_REPORTS, layout.EPOCHS, layout.MEMBERS)
    | _in(layout.TENSORS, ""),  # its dataset.json
}


def _paths(entries: list) -> set[str]:
    """Entries of a dvc.yaml list (a path, or a one-key mapping of a path to its options)."""
    found = {next(iter(e)) if isinstance(e, dict) else e for e in entries or []}
    return {Path(p).as_posix() for p in found if "${" not in p}


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_dvc_yaml_outputs_are_layouts(stage: str) -> None:
    spec = STAGES[stage]
    written = _paths(spec.get("outs")) | _paths(spec.get("metrics")) | _paths(spec.get("plots"))
    assert written == WRITES.get(stage, set())
    read = {d for d in _paths(spec.get("deps")) if not d.startswith(("stages/", "src/"))}
    assert read == READS.get(stage, set())
