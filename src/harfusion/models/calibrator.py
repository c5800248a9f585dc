"""The calibration map a model file carries: fitted by training on the validation split, applied
by evaluate, predict and the ONNX export alike, so all three give the same probabilities.

Today a temperature (Guo et al. 2017): softmax(logits / T), one T minimising validation NLL;
the argmax is unchanged. The model file names the method, so another map can take its place.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import DataLoader

from harfusion.models.fusion import FusionModel


def fit_temperature(logits: Tensor, labels: Tensor, max_iter: int = 100) -> float:
    """One temperature T minimising validation NLL of softmax(logits / T); argmax is unchanged."""
    log_t = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.LBFGS([log_t], lr=0.1, max_iter=max_iter, line_search_fn="strong_wolfe")
    logits = logits.detach().float()

    def closure() -> Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(logits / log_t.exp(), labels)
        loss.backward()
        return loss

    optimizer.step(closure)
    return float(log_t.detach().exp())


@torch.no_grad()
def fit_calibration(model: FusionModel, loader: DataLoader) -> dict:
    """The calibration entry of a model file: a temperature fit on `loader`'s windows (the
    validation split), with the validation NLL before and after it."""
    model.eval()
    batches = [(model(b["inputs"], b["mask"]).logits.float().cpu(), b["label"]) for b in loader]
    logits = torch.cat([logits for logits, _ in batches])
    labels = torch.cat([labels for _, labels in batches]).to(torch.long).cpu()
    temperature = fit_temperature(logits, labels)
    return {
        "method": "temperature",
        "temperature": temperature,
        "fitted_on": "validation split",
        "windows": len(labels),
        "val_nll_before": float(F.cross_entropy(logits, labels)),
        "val_nll_after": float(F.cross_entropy(logits / temperature, labels)),
    }


def calibrated(logits: Tensor, calibration: dict) -> Tensor:
    """`logits` (or log-probabilities) mapped by a model file's calibration entry."""
    return logits / calibration["temperature"]
