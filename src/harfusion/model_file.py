"""The trained-model file: weights plus what evaluation needs to rebuild and trust them."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from harfusion.atomic import atomic_path
from harfusion.errors import HarfusionError
from harfusion.fusion import FusionModel, build_model
from harfusion.params import Params

MODEL_FILE = "model.pt"


def architecture(params: Params) -> dict:
    """The params that decide the network's shape; evaluation checks them against the file."""
    keys = ("fusion", "heads", "modalities", "model")
    return {key: value for key, value in params.model_dump().items() if key in keys} | {
        "channel_groups": params.dataset.channel_groups
    }


def save_model(models_dir: Path, state_dict: dict, **metadata) -> None:
    """Write `models_dir/model.pt`: plain tensors and containers, loadable with weights_only."""
    with atomic_path(models_dir / MODEL_FILE) as tmp:
        torch.save({"state_dict": state_dict, **metadata}, tmp)


def load_model(params: Params, models_dir: Path) -> tuple[FusionModel, dict]:
    """Rebuild the trained network; refuse a file trained with different architecture params."""
    path = models_dir / MODEL_FILE
    try:
        saved = torch.load(path, weights_only=True, map_location="cpu")
    except FileNotFoundError:
        raise HarfusionError(f"{path}: no trained model; run `dvc repro train`") from None
    except Exception as exc:  # UnpicklingError for anything but plain tensors and containers
        raise HarfusionError(f"{path}: not a model file this project wrote ({exc})") from None
    if saved["architecture"] != architecture(params):
        raise HarfusionError(
            f"{path}: trained with {json.dumps(saved['architecture'])}, "
            f"params.yaml now says {json.dumps(architecture(params))}; run `dvc repro train`"
        )
    model = build_model(params, saved["channels"], len(saved["classes"]))
    model.load_state_dict(saved["state_dict"])
    return model.eval(), saved
