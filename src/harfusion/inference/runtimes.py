"""The two ways `harfusion predict` runs a model: the model file on torch, or its ONNX export on
ONNX Runtime, which never imports torch (a deployment may not have it). Both take the same raw
windows and mask and give the same calibrated probabilities (the export's parity check)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Protocol

import numpy as np

from harfusion.errors import HarfusionError
from harfusion.models.model_card import check_card

ONNX_METADATA = "harfusion"  # the metadata_props key holding the model card as JSON
PROBABILITIES = "probabilities"  # the ONNX model's output
MASK = "mask"  # and its last input, after one input per modality


class Runtime(Protocol):
    path: Path
    card: dict
    has_dropout: bool  # whether `dropout_samples` can sample

    def probabilities(self, inputs: dict[str, np.ndarray], mask: np.ndarray) -> np.ndarray:
        """float32 [batch, classes] for raw windows (per modality [batch, window, channels])."""
        ...

    def dropout_samples(
        self, inputs: dict[str, np.ndarray], mask: np.ndarray, samples: int
    ) -> np.ndarray:
        """float32 [samples, batch, classes] with dropout active (MC dropout)."""
        ...


def open_model(path: Path) -> Runtime:
    """An ONNX export (`.onnx`) on ONNX Runtime, anything else as a harfusion model file."""
    if path.suffix == ".onnx":
        return OnnxModel(path)
    return TorchModel(path)


class TorchModel:
    has_dropout = True

    def __init__(self, path: Path) -> None:
        import torch

        from harfusion.models.model_file import load_model

        self.torch = torch
        self.path = path
        self.predictor, self.card = load_model(path)

    def _tensors(self, inputs: dict[str, np.ndarray], mask: np.ndarray) -> list:
        return [self.torch.from_numpy(x) for x in inputs.values()] + [self.torch.from_numpy(mask)]

    def probabilities(self, inputs: dict[str, np.ndarray], mask: np.ndarray) -> np.ndarray:
        with self.torch.no_grad():
            return self.predictor(*self._tensors(inputs, mask)).numpy()

    def dropout_samples(
        self, inputs: dict[str, np.ndarray], mask: np.ndarray, samples: int
    ) -> np.ndarray:
        """Dropout on, everything else (batch norm) in evaluation mode, as evaluate samples."""
        dropouts = [m for m in self.predictor.modules() if isinstance(m, self.torch.nn.Dropout)]
        for module in dropouts:
            module.train()
        try:
            return np.stack([self.probabilities(inputs, mask) for _ in range(samples)])
        finally:
            self.predictor.eval()


class OnnxModel:
    has_dropout = False  # exported in evaluation mode: dropout is the identity there

    def __init__(self, path: Path) -> None:
        import onnxruntime

        self.path = path
        if not path.is_file():
            raise HarfusionError(f"{path}: no such ONNX model; run `dvc repro export`")
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3  # errors only: its warnings are not the user's to act on
        try:
            self.session = onnxruntime.InferenceSession(
                str(path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # ONNX Runtime's own errors (truncated, not protobuf, ...)
            why = " ".join(str(exc).split())[:200]
            raise HarfusionError(
                f"{path}: not an ONNX model ONNX Runtime can load ({why})"
            ) from None
        text = self.session.get_modelmeta().custom_metadata_map.get(ONNX_METADATA)
        if text is None:
            raise HarfusionError(
                f"{path}: an ONNX model without harfusion's metadata (metadata_props "
                f"{ONNX_METADATA!r}); export it from a model file with `dvc repro export`"
            )
        try:
            card = json.loads(text)
        except json.JSONDecodeError as exc:
            raise HarfusionError(
                f"{path}: metadata {ONNX_METADATA!r} is not JSON ({exc})"
            ) from None
        self.card = check_card(card, path, "a harfusion ONNX export")

    def probabilities(self, inputs: dict[str, np.ndarray], mask: np.ndarray) -> np.ndarray:
        return np.asarray(self.session.run([PROBABILITIES], {**inputs, MASK: mask})[0])

    def dropout_samples(
        self, inputs: dict[str, np.ndarray], mask: np.ndarray, samples: int
    ) -> np.ndarray:
        raise NotImplementedError("the ONNX export runs with dropout off (see `has_dropout`)")
