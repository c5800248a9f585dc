"""The trained-model file, `models/model.pt`: the model card (`model_card`) plus the weights of
each ensemble member, plain tensors and containers only (`torch.load(weights_only=True)`).

It is the model: evaluate, predict and export rebuild the network from the file alone, never
from `params.yaml`, so a copy of the file works anywhere.
"""

from __future__ import annotations

import hashlib
from importlib.metadata import version
from pathlib import Path

import torch

from harfusion.atomic import atomic_path
from harfusion.data.description import Description, Inputs
from harfusion.data.presence import MAX_MISSING
from harfusion.errors import HarfusionError, refused_torch_file
from harfusion.layout import MANIFEST, NORM_STATS
from harfusion.models.ensemble import Ensemble
from harfusion.models.fusion import FusionModel, Shape, build_model
from harfusion.models.model_card import FORMAT, FORMAT_VERSION, check_card
from harfusion.models.predictor import Predictor
from harfusion.params import ARCHITECTURE, ModelParams, Params


def architecture(params: Params, inputs: Inputs) -> dict:
    """The params that decide the network's shape, its modalities and their channel groups."""
    return params.model_dump(include=set(ARCHITECTURE)) | {
        "modalities": list(inputs.modalities),
        "channel_groups": inputs.groups,
    }


def trained_inputs(saved: dict) -> Inputs:
    """What the model in `saved` reads of its windows, as its card says."""
    modalities = tuple(saved["modalities"])
    return Inputs(
        modalities,
        channel_names={m: list(saved["channel_names"][m]) for m in modalities},
        kinds=dict(saved["kinds"]),
        triads={m: [] for m in modalities},  # training's only
        groups=dict(saved["preprocessing"]["channel_groups"]),
    )


def modality_labels(saved: dict) -> dict[str, str]:
    """How figures name each modality of the model in `saved` (its dataset's labels)."""
    described = (saved["dataset"] or {}).get("modalities", {})
    return {m: described.get(m, {}).get("label", m) for m in saved["modalities"]}


def training_data(tensor_dir: Path, manifest: dict) -> dict:
    """What the model was trained on: a fingerprint of the windows and their statistics, and
    the windows per split."""
    digest = hashlib.sha256()
    for name in (MANIFEST, NORM_STATS):
        digest.update((tensor_dir / name).read_bytes())
    return {
        "fingerprint": f"sha256:{digest.hexdigest()}",
        "windows": {split: len(windows) for split, windows in manifest["windows"].items()},
    }


def model_card(
    params: Params,
    inputs: Inputs,
    description: Description | None,
    classes: list[int],
    class_names: list[str],
    window: int,
    normalisation: dict[str, tuple[torch.Tensor, torch.Tensor]],
    calibration: dict,
    trained_on: dict,
    summary: dict,
    members: int = 1,
) -> dict:
    """Every field of the card, from what training knows. `description`: the dataset the model
    was trained on (None: the legacy `.npy` layout, which names none)."""
    modalities = list(inputs.modalities)
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "harfusion_version": version("harfusion"),
        "architecture": architecture(params, inputs),
        "classes": list(classes),
        "class_names": list(class_names),
        "modalities": modalities,
        "kinds": dict(inputs.kinds),
        "channels": {m: len(normalisation[m][0]) for m in modalities},
        # the legacy .npy layout does not name its channels
        "channel_names": {
            m: inputs.channel_names[m] or [f"{m}_{i}" for i in range(len(normalisation[m][0]))]
            for m in modalities
        },
        "dataset": None if description is None else description.model_dump(mode="json"),
        "preprocessing": {
            "sampling_rate_hz": float(description.sampling_rate_hz) if description else 0.0,
            "channel_groups": dict(inputs.groups),
            "absent_over": MAX_MISSING,
        },
        "normalisation": {
            "method": "train_split",
            "mean": {m: normalisation[m][0].tolist() for m in modalities},
            "std": {m: normalisation[m][1].tolist() for m in modalities},
        },
        "window": window,
        "stride": params.stride,
        "calibration": calibration,
        "ensemble": {"members": members, "combine": "mean_probability"},
        "params": params.model_dump(),
        "training_data": trained_on,
        "summary": summary,
    }


def save_model(path: Path, members: list[dict[str, torch.Tensor]], card: dict) -> None:
    """Write the card and the members' weights to `path` at once."""
    with atomic_path(path) as tmp:
        torch.save({**card, "members": members}, tmp)


def read_model_file(path: Path) -> dict:
    """The loaded file, checked: a harfusion model of this format whose weights are numbers."""
    try:
        saved = torch.load(path, weights_only=True, map_location="cpu")
    except FileNotFoundError:
        raise HarfusionError(f"{path}: no trained model; run `dvc repro train`") from None
    except Exception as exc:  # UnpicklingError, a truncated zip's RuntimeError, EOFError, ...
        raise refused_torch_file(path, "a harfusion model file", exc) from None
    check_card(saved, path)
    members = saved.get("members")
    if not isinstance(members, list) or len(members) != saved["ensemble"]["members"]:
        raise HarfusionError(f"{path}: not a harfusion model file (no weights of each member)")
    for weights in members:
        if not isinstance(weights, dict) or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in weights.items()
        ):
            raise HarfusionError(
                f"{path}: not a harfusion model file (a member's weights are not a mapping of "
                "weight names to tensors)"
            )
        broken = [k for k, v in weights.items() if not torch.isfinite(v).all()]
        if broken:
            raise HarfusionError(
                f"{path}: {len(broken)} weight tensors hold NaN or inf (first: {broken[0]}); the "
                "training that wrote it diverged: retrain with a lower train.learning_rate"
            )
    return saved


def build_member(saved: dict) -> FusionModel:
    """An untrained network of the architecture the card describes."""
    architecture = saved["architecture"]
    shape = Shape(saved["channels"], saved["kinds"], len(saved["classes"]))
    model = ModelParams.model_validate(architecture["model"])
    return build_model(architecture["fusion"], shape, model, architecture["heads"])


def load_model(path: Path) -> tuple[Predictor, dict]:
    """The model in `path` rebuilt from the file alone (its `ensemble` takes normalised
    windows, as evaluate's loaders give them), and the loaded file."""
    saved = read_model_file(path)
    try:
        members = []
        for weights in saved["members"]:
            member = build_member(saved)
            member.load_state_dict(weights)
            members.append(member)
    except (ValueError, RuntimeError, KeyError) as exc:  # the weights of another network
        why = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
        raise HarfusionError(f"{path}: weights do not fit its architecture ({why[:300]})") from None
    predictor = Predictor(Ensemble(members), saved["normalisation"], saved["calibration"])
    return predictor.eval(), saved
