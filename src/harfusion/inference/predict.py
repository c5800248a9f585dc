"""Apply a trained model to raw recordings: a CSV with one row per window (its times on the
recording's own clock, the activity, its calibrated probability and every class's, the
modalities missing) and a timeline figure per recording.

    harfusion predict session.dat                       # models/model.pt, on torch
    harfusion predict a.dat b.dat.gz --out walk.csv     # any names, any folders, gzip too
    harfusion predict session.dat --model exports/model.onnx   # ONNX Runtime, no torch
    harfusion predict session.dat --mc-samples 20       # adds MC-dropout uncertainty

Recordings are read as the dataset description the model carries says (the format of the data
it was trained on) and prepared exactly as training prepared its own (each modality's
preprocessing per recording, windows never across a gap in the clock, the model's normalisation
and calibration). A modality whose sensor sent nothing for most of a window is
masked as modality dropout masks it in training, named in that row's `missing` column, and
said once per recording on stderr. A recording sampled at another rate than the model's, or
lacking channels the model reads, is refused in one line, and nothing is written.

Columns: recording, start_s, end_s (the window's first sample and the end of its last),
activity_id, activity, confidence (the calibrated probability of that activity), p_<activity>
per class, uncertainty (with --mc-samples: predictive entropy in nats of the mean of the
dropout samples), missing (absent modalities, `;`-joined); and where the recording carries
labels, true_activity_id (the activity all of the window's rows share, empty where they
differ), with a summary line per recording on stdout: its windows and the macro F1 over the
windows of one activity the model knows. The timeline is `<out>.<recording>.png` beside the CSV.
"""

from __future__ import annotations

import argparse
import csv
import sys
from contextlib import ExitStack
from pathlib import Path

import numpy as np

from harfusion.atomic import atomic_path
from harfusion.data.window_reader import NO_LABEL, WindowReader, Windows
from harfusion.errors import HarfusionError
from harfusion.evaluation.metrics import classification_metrics
from harfusion.experiments.options import count
from harfusion.inference.prediction import Prediction
from harfusion.inference.runtimes import Runtime, open_model
from harfusion.layout import MODEL_FILE, MODELS
from harfusion.models.model_card import check_fits

BATCH = 256  # windows per forward pass
MAX_MC_SAMPLES = 1000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "recordings",
        nargs="+",
        type=Path,
        metavar="RECORDING",
        help="raw recordings in the format of the model's dataset (any name; .gz is read too)",
    )
    parser.add_argument(
        "--model",
        type=Path,
        default=MODELS / MODEL_FILE,
        help="the model file (default: models/model.pt), or its ONNX export (*.onnx)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("predictions.csv"),
        help="the CSV to write (default: predictions.csv); timelines go beside it",
    )
    parser.add_argument(
        "--stride",
        type=count(1, 10**9, "--stride"),
        metavar="SAMPLES",
        help="samples from one window's start to the next (default: the model's evaluation stride)",
    )
    parser.add_argument(
        "--mc-samples",
        type=count(0, MAX_MC_SAMPLES, "--mc-samples"),
        default=0,
        metavar="K",
        help="MC-dropout samples per window for the uncertainty column (default 0: none; "
        "needs the model file, not the ONNX export)",
    )
    parser.add_argument(
        "--no-timeline",
        action="store_true",
        help="write the CSV only, no timeline figure (drawing one costs about a second a "
        "recording: a batch of many recordings)",
    )


def run(args: argparse.Namespace) -> int:
    runtime = open_model(args.model)
    if args.mc_samples and not runtime.has_dropout:
        raise HarfusionError(
            f"{args.model}: --mc-samples needs the model file (models/model.pt): the ONNX export "
            "runs with dropout off"
        )
    stride = args.stride or runtime.card["stride"]
    predictions = [predict(runtime, path, stride, args.mc_samples) for path in args.recordings]
    timelines = [] if args.no_timeline else _timeline_paths(args.out, args.recordings)
    with ExitStack() as stack:  # every output appears at once, or none does
        out = stack.enter_context(atomic_path(args.out))
        write_csv(out, predictions, runtime.card, args.mc_samples > 0)
        if timelines:
            from harfusion.inference.timeline import draw_timeline  # matplotlib: when drawing

            for prediction, target in zip(predictions, timelines, strict=True):
                draw_timeline(prediction, runtime.card, stack.enter_context(atomic_path(target)))
    for prediction in predictions:
        print(summary(prediction, runtime.card))
    beside = f" and {len(timelines)} timeline(s) beside it" if timelines else ""
    print(f"predict: wrote {args.out}{beside}")
    return 0


def predict(runtime: Runtime, path: Path, stride: int, mc_samples: int) -> Prediction:
    """One recording's windows through the model, a batch at a time as the file is read; the
    recording refused if it does not fit the model."""
    card = runtime.card
    reader = WindowReader(path, card, stride, BATCH)
    probabilities, uncertainty = [], []
    for batch in reader:
        probabilities.append(runtime.probabilities(batch.inputs, batch.mask))
        if mc_samples:
            mean = runtime.dropout_samples(batch.inputs, batch.mask, mc_samples).mean(axis=0)
            uncertainty.append(-(mean * np.log(np.clip(mean, 1e-12, None))).sum(axis=1))
    recording = reader.recording
    assert recording is not None
    check_fits(card, runtime.path, recording.spec)
    windows = reader.windows()
    _say_missing(windows)
    return Prediction(
        windows,
        np.concatenate(probabilities),
        np.concatenate(uncertainty) if mc_samples else None,
        windows.true_activities() if recording.labelled else None,
    )


def _say_missing(windows: Windows) -> None:
    """Once per recording and modality: how many windows lack it."""
    for modality, absent in windows.absent.items():
        if absent.any():
            print(
                f"predict: {windows.recording.path}: {modality} missing in {int(absent.sum())} "
                f"of {len(absent)} windows (its sensor sent nothing for most of them): masked "
                "there, as modality dropout trained the model to expect",
                file=sys.stderr,
            )


def columns(card: dict, uncertainty: bool, labelled: bool) -> list[str]:
    names = [f"p_{name.replace(' ', '_')}" for name in card["class_names"]]
    head = ["recording", "start_s", "end_s", "activity_id", "activity", "confidence"]
    return (
        head
        + names
        + (["uncertainty"] if uncertainty else [])
        + ["missing"]
        + (["true_activity_id"] if labelled else [])
    )


def write_csv(path: Path, predictions: list[Prediction], card: dict, uncertainty: bool) -> None:
    labelled = any(p.truth is not None for p in predictions)
    classes, names = card["classes"], card["class_names"]
    with path.open("w", newline="") as handle:
        table = csv.writer(handle, lineterminator="\n")
        table.writerow(columns(card, uncertainty, labelled))
        for prediction in predictions:
            windows = prediction.windows
            clock = windows.recording.timestamps
            period = 1.0 / card["preprocessing"]["sampling_rate_hz"]
            starts = clock[windows.starts]
            ends = clock[windows.starts + windows.length - 1] + period
            best = prediction.probabilities.argmax(axis=1)
            missing = np.stack([windows.absent[m] for m in card["modalities"]], axis=1)
            for index in range(len(windows)):
                top = int(best[index])
                row = [
                    str(prediction.path),
                    f"{starts[index]:.3f}",
                    f"{ends[index]:.3f}",
                    classes[top],
                    names[top],
                    f"{prediction.probabilities[index, top]:.6f}",
                    *(f"{p:.6f}" for p in prediction.probabilities[index]),
                ]
                if uncertainty and prediction.uncertainty is not None:
                    row.append(f"{prediction.uncertainty[index]:.6f}")
                gone = missing[index]
                row.append(";".join(m for m, g in zip(card["modalities"], gone, strict=True) if g))
                if labelled:
                    truth = NO_LABEL if prediction.truth is None else int(prediction.truth[index])
                    row.append("" if truth == NO_LABEL else truth)
                table.writerow(row)


def macro_f1(prediction: Prediction, card: dict) -> tuple[int, float | None]:
    """(windows scored, macro F1) over the windows of one activity the model knows, averaged
    over the activities present among them, as evaluate averages over the test split's."""
    if prediction.truth is None:
        return 0, None
    classes = card["classes"]
    scored = np.isin(prediction.truth, classes)
    if not scored.any():
        return 0, None
    index = {activity: position for position, activity in enumerate(classes)}
    labels = np.array([index[int(activity)] for activity in prediction.truth[scored]])
    scores = classification_metrics(prediction.probabilities[scored], labels, card["class_names"])
    return int(scored.sum()), scores["f1_macro"]


def summary(prediction: Prediction, card: dict) -> str:
    line = f"predict: {prediction.path}: {len(prediction.windows)} windows"
    if prediction.truth is None:
        return line + " (no labels in the recording)"
    scored, f1 = macro_f1(prediction, card)
    if f1 is None:
        return line + "; none of one activity the model knows, so no macro F1"
    return line + f"; {scored} of one activity the model knows: macro F1 {f1:.3f}"


def _timeline_paths(out: Path, recordings: list[Path]) -> list[Path]:
    """`<out stem>.<recording name>.png` beside the CSV, numbered where two names meet."""
    paths: list[Path] = []
    for recording in recordings:
        name = recording.name.removesuffix(".gz").rsplit(".", 1)[0]
        path, number = out.with_name(f"{out.stem}.{name}.png"), 1
        while path in paths:
            number += 1
            path = out.with_name(f"{out.stem}.{name}-{number}.png")
        paths.append(path)
    return paths
