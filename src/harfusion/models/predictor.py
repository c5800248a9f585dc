"""A model file's whole inference path as one module: raw windows in (physical units, NaN where
a sensor sent nothing), calibrated class probabilities out.

`harfusion predict` runs it, and the `export` stage writes exactly it to ONNX, so a deployed
model needs no code of ours around it: the normalisation, the ensemble's mean and the
calibration are inside. The presence mask stays an input: which modalities a window lacks is
judged over the whole window (`data.presence`), and a caller may drop a modality on purpose.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from harfusion.models.calibrator import calibrated
from harfusion.models.ensemble import Ensemble


class Predictor(nn.Module):
    def __init__(self, ensemble: Ensemble, normalisation: Mapping, calibration: Mapping) -> None:
        """`normalisation` and `calibration`: the model file's entries of those names."""
        super().__init__()
        self.ensemble = ensemble
        self.modalities = ensemble.modalities
        self.calibration = dict(calibration)
        for modality in self.modalities:
            for key in ("mean", "std"):
                values = torch.tensor(normalisation[key][modality], dtype=torch.float32)
                self.register_buffer(f"{key}_{modality}", values)

    def normalise(self, windows: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """(x - train mean) / train std per channel, NaN and inf as 0: what the dataset does."""
        return {
            m: torch.nan_to_num(
                (windows[m] - self.get_buffer(f"mean_{m}")) / self.get_buffer(f"std_{m}"),
                nan=0.0,
                posinf=0.0,
                neginf=0.0,
            )
            for m in self.modalities
        }

    def forward(self, *inputs: Tensor) -> Tensor:
        """`inputs`: one float32 [batch, window, channels] per modality in `modalities` order,
        then the bool mask [batch, modalities]. Returns probabilities [batch, classes]."""
        *windows, mask = inputs
        normalised = self.normalise(dict(zip(self.modalities, windows, strict=True)))
        log_probs = self.ensemble(normalised, mask).logits.float()
        return calibrated(log_probs, self.calibration).softmax(dim=-1)
