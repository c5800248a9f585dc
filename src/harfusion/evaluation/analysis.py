"""Per-run figures from the evaluate outputs (the analyze stage)."""

from __future__ import annotations

import json
from pathlib import Path

from harfusion import layout
from harfusion.atomic import atomic_path
from harfusion.evaluation.plots import (
    calibration_change_bars,
    missing_modality_bars,
    per_class_f1_bars,
)


def analyze(eval_dir: Path, out_dir: Path) -> list[Path]:
    metrics = json.loads((eval_dir / layout.METRICS).read_text())
    missing = json.loads((eval_dir / layout.MISSING_MODALITY).read_text())
    full = max(missing, key=lambda key: len(missing[key]["modalities"]))
    names = layout.ANALYSIS_PLOTS
    with atomic_path(out_dir) as tmp:
        tmp.mkdir()
        missing_modality_bars(missing, full, tmp / names[0])
        per_class_f1_bars(metrics["per_class_f1"], tmp / names[1])
        calibration_change_bars(metrics, tmp / names[2])
    return [out_dir / name for name in names]
