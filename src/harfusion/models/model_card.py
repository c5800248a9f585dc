"""What a model file says about its model, readable without torch: the format and its version,
every field a model needs to be applied to a raw recording, and the check that a model meets
the data it is applied to (evaluate on tensors; predict on recordings, with torch or ONNX).

The card is the model file less its weights (`model_file` adds those); the ONNX export carries
the same card as JSON, so the torch and ONNX paths of `harfusion predict` read one thing.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, TypeGuard

from harfusion.data.windows import WindowSpec
from harfusion.errors import HarfusionError

FORMAT = "harfusion model"
# 1: the weights, classes, channels and window only (no "format" key); 2: PAMAP2's columns
# implied; 3: the dataset description and each modality's kind of signal in the card.
FORMAT_VERSION = 3
RATE_TOLERANCE = 0.02  # a recording sampled 2% off the model's rate is another rate
CALIBRATIONS = ("temperature",)  # the methods this version applies
NORMALISATIONS = ("train_split",)
COMBINATIONS = ("mean_probability",)  # how an ensemble's members are combined

# Every field of the card: key → (type, description).
FIELDS: dict[str, tuple[type | tuple[type, ...], str]] = {
    "format": (str, "the format's name"),
    "format_version": (int, "the format's version"),
    "harfusion_version": (str, "the version of harfusion that wrote it"),
    "architecture": (dict, "the architecture params"),
    "classes": (list, "the class ids, in output order"),
    "class_names": (list, "the class names"),
    "modalities": (list, "the modalities, in input and mask order"),
    "kinds": (dict, "the kind of signal per modality"),
    "channels": (dict, "input channels per modality"),
    "channel_names": (dict, "input channel names per modality"),
    "dataset": ((dict, type(None)), "the dataset description it was trained on"),
    "preprocessing": (dict, "what is done to a recording before windowing"),
    "normalisation": (dict, "the normalisation of the inputs"),
    "window": (int, "the window length in steps"),
    "stride": (int, "the evaluation stride in steps"),
    "calibration": (dict, "the calibration map"),
    "ensemble": (dict, "how many members and how they are combined"),
    "params": (dict, "the params that built it"),
    "training_data": (dict, "what it was trained on"),
    "summary": (dict, "how training went"),
}
PREPROCESSING = {
    "sampling_rate_hz": (float, "the rate of the recordings it was trained on"),
    "channel_groups": (dict, "the channel groups per modality"),
    "absent_over": (float, "the share of missing samples beyond which a modality is absent"),
}


def card_of(saved: dict) -> dict:
    """The card in a loaded model file: every field but the weights."""
    return {key: saved[key] for key in FIELDS}


def card_json(saved: dict) -> str:
    """The card as JSON, its mappings in their order (modalities and channels are ordered)."""
    return json.dumps(card_of(saved))


def check_card(saved: object, path: Path | str, what: str = "a harfusion model file") -> dict:
    """`saved` (a loaded model file or an ONNX model's card), or a one-line refusal: not a model
    file, an older or newer format, or a field missing or of the wrong kind."""
    if not isinstance(saved, dict):
        raise HarfusionError(f"{path}: not {what} (holds a {type(saved).__name__}, not a mapping)")
    if saved.get("format") != FORMAT:
        if "state_dict" in saved and "architecture" in saved:  # what format 1 held
            raise _other_version(path, 1)
        raise HarfusionError(f"{path}: not {what} (no 'format': {FORMAT!r})")
    version = saved.get("format_version")
    if version != FORMAT_VERSION:
        raise _other_version(path, version)
    problem = _card_problem(saved)
    if problem:
        raise HarfusionError(f"{path}: not {what} ({problem})")
    return saved


def _other_version(path: Path | str, version: object) -> HarfusionError:
    if isinstance(version, int) and version > FORMAT_VERSION:
        return HarfusionError(
            f"{path}: model file format {version}, newer than this harfusion reads "
            f"({FORMAT_VERSION}): update harfusion"
        )
    return HarfusionError(
        f"{path}: model file format {version}, older than this harfusion reads "
        f"({FORMAT_VERSION}): retrain it (`dvc repro train`) to write the current format"
    )


def _card_problem(saved: dict) -> str | None:
    """What is missing or of the wrong kind in a card, if anything."""
    for fields, inside in ((FIELDS, saved), (PREPROCESSING, saved.get("preprocessing"))):
        for key, (kind, description) in fields.items():
            if not isinstance(inside, dict) or key not in inside:
                return f"no {key!r} ({description})"
            if not isinstance(inside[key], kind) or isinstance(inside[key], bool):
                return f"{key!r} is a {type(inside[key]).__name__}, not {description}"
    channels, names = saved["channels"], saved["channel_names"]
    if list(channels) != saved["modalities"]:
        return "'channels' does not follow 'modalities'"
    if list(saved["kinds"]) != saved["modalities"]:
        return "'kinds' does not follow 'modalities'"
    if not all(isinstance(v, int) and v > 0 for v in channels.values()):
        return "'channels' is not a positive count per modality"
    if names.keys() != channels.keys() or not all(
        isinstance(v, list) and len(v) == channels[m] and all(isinstance(n, str) for n in v)
        for m, v in names.items()
    ):
        return "'channel_names' does not name each modality's channels"
    if len(saved["class_names"]) != len(saved["classes"]):
        return "'class_names' does not name each class"
    return (
        _normalisation_problem(saved["normalisation"], channels)
        or _unknown("calibration", saved["calibration"].get("method"), CALIBRATIONS)
        or _calibration_problem(saved["calibration"])
        or _unknown("ensemble combination", saved["ensemble"].get("combine"), COMBINATIONS)
        or _ensemble_problem(saved["ensemble"])
    )


def _normalisation_problem(normalisation: dict, channels: dict[str, int]) -> str | None:
    unknown = _unknown("normalisation", normalisation.get("method"), NORMALISATIONS)
    if unknown:
        return unknown
    for key in ("mean", "std"):
        values = normalisation.get(key)
        if not isinstance(values, dict) or values.keys() != channels.keys():
            return f"'normalisation' has no {key} per modality"
        for modality, numbers in values.items():
            if not _finite_numbers(numbers, channels[modality]) or (
                key == "std" and min(numbers) <= 0
            ):
                return f"'normalisation' {key} of {modality} is not {channels[modality]} numbers"
    return None


def _calibration_problem(calibration: dict) -> str | None:
    temperature = calibration.get("temperature")
    if not _is_number(temperature) or temperature <= 0:
        return f"calibration temperature {temperature!r} is not a positive number"
    return None


def _ensemble_problem(ensemble: dict) -> str | None:
    members = ensemble.get("members")
    if not isinstance(members, int) or isinstance(members, bool) or members < 1:
        return f"ensemble of {members!r} members"
    return None


def _unknown(what: str, method: object, known: tuple[str, ...]) -> str | None:
    """A method a newer harfusion wrote (or a damaged name), if `method` is not `known`."""
    if method in known:
        return None
    return f"{what} {method!r}, which this harfusion does not know: update harfusion"


def _finite_numbers(values: Any, count: int) -> bool:
    return isinstance(values, list) and len(values) == count and all(map(_is_number, values))


def _is_number(value: Any) -> TypeGuard[float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_fits(saved: dict, path: Path | str, data: WindowSpec) -> None:
    """Refuse to apply the model in `path` (loaded as `saved`) to windows that differ from the
    ones it was trained on in classes, channels, window length or sampling rate: scores would be
    silently wrong (a model of other classes scored macro F1 0.000 and exited 0). One line, both
    sides."""
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
            lacking = _lacking(saved, data) if what == "channels" else ""
            raise HarfusionError(
                f"{path} does not fit {data.source}: {what}: the model has {model_side}, the data "
                f"{data_side}{lacking}; retrain on these data (`dvc repro train`)"
            )
    rate = float(saved["preprocessing"]["sampling_rate_hz"])
    # rate 0: a model of the legacy .npy layout, which says no rate
    if rate and data.rate_hz is not None and abs(data.rate_hz / rate - 1) > RATE_TOLERANCE:
        raise HarfusionError(
            f"{path} does not fit {data.source}: sampling rate: the model has {rate:g} Hz, the "
            f"data {data.rate_hz:.4g} Hz (measured: median step {1 / data.rate_hz:.4g} s); "
            f"resample the recording to {rate:g} Hz"
        )


def _lacking(saved: dict, data: WindowSpec) -> str:
    """The channels the model reads that the data lack, by name, when both sides name them."""
    if data.channel_names is None:
        return ""
    lacking = [
        name
        for modality, names in saved["channel_names"].items()
        for name in names
        if name not in data.channel_names.get(modality, [])
    ]
    return f" (lacking {', '.join(lacking)})" if lacking else ""


def _classes(ids: list[int], names: list[str] | None) -> str:
    if names is None or len(names) != len(ids):
        return str(list(ids))
    return "[" + ", ".join(f"{i} {n}" for i, n in zip(ids, names, strict=True)) + "]"


def _channels(counts: dict[str, int], names: dict[str, list[str]] | None) -> str:
    if names is None:
        return ", ".join(f"{m}: {count}" for m, count in counts.items())
    return ", ".join(f"{m}: {' '.join(names[m])}" for m in counts)
