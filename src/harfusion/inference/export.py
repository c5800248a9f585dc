"""The model file as ONNX, for deployment: `exports/model.onnx` takes the raw windows (one
float32 [batch, window, channels] input per modality, physical units, NaN where a sensor sent
nothing) and the bool presence mask [batch, modalities], and gives the calibrated class
probabilities [batch, classes], any batch size. It is `models.predictor` exported whole, so
normalisation, the ensemble's mean and the calibration are inside; the model card rides along
as JSON in the ONNX metadata (`metadata_props["harfusion"]`).

Exported with `torch.onnx.export(dynamo=True)`, the torch.export-based exporter that is torch's
default since 2.9: it captures the graph soundly or fails, where the legacy TorchScript tracer
(deprecated, and slated for removal) printed 11 warnings on these models that a Python value
had been frozen into the trace. Before anything is written, ONNX Runtime and torch score the
test split's windows and must agree (`parity.json`).
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from harfusion.atomic import atomic_path
from harfusion.data.dataset import collate_windows, open_windows
from harfusion.errors import HarfusionError
from harfusion.inference.runtimes import MASK, ONNX_METADATA, PROBABILITIES, OnnxModel
from harfusion.layout import ONNX_MODEL, PARITY
from harfusion.models.model_card import card_json, check_fits
from harfusion.models.model_file import load_model
from harfusion.models.predictor import Predictor

TOLERANCE = 1e-4  # the largest difference in any probability ONNX Runtime may make


def export(model_path: Path, tensor_dir: Path, out_dir: Path) -> dict:
    """Write `out_dir/model.onnx` and `out_dir/parity.json` at once; refuse, writing nothing,
    if ONNX Runtime and torch disagree on the test windows."""
    predictor, saved = load_model(model_path)
    program = _exported(predictor, saved)
    test = open_windows(tensor_dir, "test", saved["channel_names"], raw=True)
    check_fits(saved, model_path, test.spec)
    with atomic_path(out_dir) as tmp:
        tmp.mkdir()
        program.save(tmp / ONNX_MODEL)
        parity = compare(predictor, OnnxModel(tmp / ONNX_MODEL), test)
        if parity["max_abs_difference"] > TOLERANCE or parity["argmax_differs"]:
            raise HarfusionError(
                f"{model_path}: the ONNX export disagrees with torch on the test windows "
                f"({json.dumps(parity)}); nothing was written"
            )
        (tmp / PARITY).write_text(json.dumps(parity, indent=2) + "\n")
    return parity


def _exported(predictor: Predictor, saved: dict) -> torch.onnx.ONNXProgram:
    names = [*saved["modalities"], MASK]
    windows = [torch.zeros(2, saved["window"], saved["channels"][m]) for m in saved["modalities"]]
    example = (*windows, torch.ones(2, len(windows), dtype=torch.bool))
    batch = torch.export.Dim("batch")
    with warnings.catch_warnings(), _quiet("torch.onnx"):
        # every input shares the batch axis, which the exporter notes once per input
        warnings.filterwarnings("ignore", "# The axis name: batch will not be used")
        program = torch.onnx.export(
            predictor,
            example,
            dynamo=True,
            input_names=names,
            output_names=[PROBABILITIES],
            dynamic_shapes=(tuple({0: batch} for _ in names),),
            external_data=False,  # one file: the weights inside
            verbose=False,
        )
    predictor.eval()  # the exporter restores the module's training flag; say it again
    if program is None:
        raise HarfusionError("torch.onnx.export returned no program")
    program.model.metadata_props[ONNX_METADATA] = card_json(saved)
    return program


class _quiet:
    """Its loggers' warnings off while exporting (e.g. that torchvision is not installed)."""

    def __init__(self, name: str) -> None:
        self.logger = logging.getLogger(name)

    def __enter__(self) -> None:
        self.level = self.logger.level
        self.logger.setLevel(logging.ERROR)

    def __exit__(self, *exc: object) -> None:
        self.logger.setLevel(self.level)


@torch.no_grad()
def compare(predictor: Predictor, onnx: OnnxModel, windows) -> dict:
    """The largest probability difference and the argmax disagreements between torch and ONNX
    Runtime over every window of `windows` (raw, as predict hands them)."""
    largest, differ, count = 0.0, 0, 0
    loader = DataLoader(windows, batch_size=256, collate_fn=collate_windows)
    for batch in loader:
        inputs = [batch["inputs"][m] for m in predictor.modalities]
        ours = predictor(*inputs, batch["mask"]).numpy()
        theirs = onnx.probabilities(
            {m: x.numpy() for m, x in zip(predictor.modalities, inputs, strict=True)},
            batch["mask"].numpy(),
        )
        largest = max(largest, float(np.abs(ours - theirs).max()))
        differ += int((ours.argmax(axis=1) != theirs.argmax(axis=1)).sum())
        count += len(ours)
    return {
        "windows": count,
        "max_abs_difference": largest,
        "argmax_differs": differ,
        "tolerance": TOLERANCE,
    }
