"""The trained-model file: weights plus what evaluation needs to rebuild and trust them."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from harfusion.atomic import atomic_path
from harfusion.errors import HarfusionError, refused_torch_file
from harfusion.layout import MODEL_FILE
from harfusion.models.fusion import FusionModel, build_model
from harfusion.params import Params


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
        raise refused_torch_file(path, "a model file this project wrote", exc) from None
    problem = _structure_problem(saved)
    if problem:
        raise HarfusionError(f"{path}: not a model file this project wrote ({problem})")
    if saved["architecture"] != architecture(params):
        raise HarfusionError(
            f"{path}: trained with {json.dumps(saved['architecture'])}, "
            f"params.yaml now says {json.dumps(architecture(params))}; run `dvc repro train`"
        )
    try:
        model = build_model(params, saved["channels"], len(saved["classes"]))
        model.load_state_dict(saved["state_dict"])
    except (ValueError, RuntimeError) as exc:  # channels, or weights, of another network
        why = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
        raise HarfusionError(f"{path}: weights do not fit its architecture ({why[:300]})") from None
    return model.eval(), saved


# What `save_model`'s callers write: key → (type, description).
_FIELDS = {
    "state_dict": (dict, "a mapping of weight names to tensors"),
    "architecture": (dict, "the architecture params"),
    "channels": (dict, "input channels per modality"),
    "classes": (list, "the class ids"),
    "class_names": (list, "the class names"),
}


def _structure_problem(saved: object) -> str | None:
    """What is missing or of the wrong kind in a loaded model file, if anything."""
    if not isinstance(saved, dict):
        return f"holds a {type(saved).__name__}, not a mapping"
    for key, (kind, description) in _FIELDS.items():
        if key not in saved:
            return f"no {key!r} ({description})"
        if not isinstance(saved[key], kind):
            return f"{key!r} is a {type(saved[key]).__name__}, not {description}"
    weights = saved["state_dict"]
    if not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in weights.items()):
        return "'state_dict' is not a mapping of weight names to tensors"
    if not all(isinstance(v, int) and v > 0 for v in saved["channels"].values()):
        return "'channels' is not a positive count per modality"
    return None
