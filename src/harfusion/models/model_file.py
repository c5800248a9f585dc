"""The trained-model file: weights plus what evaluation needs to rebuild and trust them, and
the check that a model meets the data it is applied to (evaluate; predict on recordings)."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from harfusion.atomic import atomic_path
from harfusion.data.dataset import WindowSpec
from harfusion.data.pamap2 import modality_columns
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


def channel_names(params: Params) -> dict[str, list[str]]:
    """The input columns per modality, by name, that the network reads (as the dataset picks)."""
    return {m: modality_columns(m, params.dataset.channel_groups) for m in params.modalities}


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
    broken = [k for k, v in saved["state_dict"].items() if not torch.isfinite(v).all()]
    if broken:
        raise HarfusionError(
            f"{path}: {len(broken)} weight tensors hold NaN or inf (first: {broken[0]}); the "
            "training that wrote it diverged: retrain with a lower train.learning_rate"
        )
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


def check_fits(saved: dict, path: Path, data: WindowSpec) -> None:
    """Refuse to apply the model in `path` (loaded as `saved`) to windows that differ from the
    ones it was trained on in classes, channels or window length: scores would be silently
    wrong (a model of other classes scored macro F1 0.000 and exited 0). One line, both sides."""
    # What the data do not name (the legacy layout's classes and channels) compares by ids
    # and counts.
    named = data.channel_names is not None
    ours = {
        "classes": _classes(saved["classes"], saved["class_names"] if data.class_names else None),
        "channels": _channels(saved["channels"], saved["channel_names"] if named else None),
        "window": f"{saved['window']} steps",
    }
    theirs = {
        "classes": None if data.classes is None else _classes(data.classes, data.class_names),
        "channels": _channels(data.channels, data.channel_names),
        "window": f"{data.window} steps",
    }
    for what, model_side in ours.items():
        data_side = theirs[what]
        if data_side is not None and data_side != model_side:
            raise HarfusionError(
                f"{path} does not fit {data.source}: {what}: the model has {model_side}, the data "
                f"{data_side}; retrain on these data (`dvc repro train`)"
            )


def _classes(ids: list[int], names: list[str] | None) -> str:
    if names is None or len(names) != len(ids):
        return str(list(ids))
    return "[" + ", ".join(f"{i} {n}" for i, n in zip(ids, names, strict=True)) + "]"


def _channels(counts: dict[str, int], names: dict[str, list[str]] | None) -> str:
    if names is None:
        return ", ".join(f"{m}: {count}" for m, count in counts.items())
    return ", ".join(f"{m}: {' '.join(names[m])}" for m in counts)


# What `save_model`'s callers write: key → (type, description).
_FIELDS = {
    "state_dict": (dict, "a mapping of weight names to tensors"),
    "architecture": (dict, "the architecture params"),
    "channels": (dict, "input channels per modality"),
    "channel_names": (dict, "input channel names per modality"),
    "classes": (list, "the class ids"),
    "class_names": (list, "the class names"),
    "window": (int, "the window length in steps"),
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
    names = saved["channel_names"]
    if names.keys() != saved["channels"].keys() or not all(
        isinstance(v, list)
        and len(v) == saved["channels"][m]
        and all(isinstance(n, str) for n in v)
        for m, v in names.items()
    ):
        return "'channel_names' does not name each modality's channels"
    if len(saved["class_names"]) != len(saved["classes"]):
        return "'class_names' does not name each class"
    return None
