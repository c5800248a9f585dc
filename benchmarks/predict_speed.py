"""`harfusion predict` end to end (read → CSV) against the bare floor, on torch and on ONNX
Runtime, CPU; the same with the timeline figure drawn (for information); and its peak memory on
a ten-hour recording, timeline included.

    uv run python benchmarks/predict_speed.py            # a 1-hour and a 10-hour recording
    uv run python benchmarks/predict_speed.py --smoke    # minutes, a tiny model; for CI

The floor, measured in the same run on the same recording: a bare pyarrow parse of the file
(every column, as pandas or pyarrow users read it) plus the bare model forward on its windows
(the fusion network on windows already in memory, batches of 256; ONNX Runtime on the same
windows for the ONNX figure). Predict does more than the floor (checks every value, fills
heart rate, finds gaps and missing sensors, normalises, calibrates, writes the CSV): the target
is at least half the floor's windows per second. The timeline (`predict` without
`--no-timeline`) adds about a second a recording, mostly importing matplotlib and writing the
PNG: on a one-hour recording that is a third of the time, so it is measured apart.

The model is a real model file: the default architecture trained for one short epoch on a small
synthetic set (weights do not change the cost), and its ONNX export. The recordings are the
synthetic generator's, a subject's Protocol session cut to one hour, and that hour repeated ten
times on one clock (3.6 M rows) for memory: all 54 columns of ten hours as float64 are 1.55 GB,
so predict reads the file in blocks and keeps only the model's channels. Each measurement is
one child process, with its own peak RSS.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import SMOKE_SECONDS, Row, elapsed, parser, report, run_child, tensor_data

TARGET_SPEED = 0.5  # predict's windows/s at least half the floor's
TARGET_MB = 1500.0  # peak RSS of predict on the ten-hour recording
BATCH = 256
HOUR_ROWS = 360_000  # 100 Hz


def recordings(work: Path, hour_rows: int, hours: int) -> tuple[Path, Path]:
    """An hour of one synthetic subject's Protocol session, and `hours` of it on one clock."""
    one, many = work / f"recording-{hour_rows}.dat", work / f"recording-{hour_rows}x{hours}.dat"
    if one.exists() and many.exists():
        return one, many
    from harfusion.data.dat_writer import format_rows
    from harfusion.data.recordings import read_recording
    from harfusion.data.synthetic.generate import generate
    from harfusion.data.synthetic.pamap2_format import EXACT_COLUMNS, PAMAP2
    from harfusion.params import SyntheticParams

    seconds = round(hour_rows / 100 / 12 * 1.15)  # 12 protocol activities, some cut short
    synthetic = SyntheticParams(
        subjects=[101], seconds_per_activity=seconds, optional_sessions=False
    )
    folder = work / f"subject-{seconds:g}s"
    if not folder.exists():
        generate(synthetic, synthetic.seed, folder)
    source = folder / "Protocol" / "subject101.dat"
    data = read_recording(source, PAMAP2)
    rows = np.column_stack([data.timestamps, data.labels, data.values])[:hour_rows]
    if len(rows) < hour_rows:
        raise SystemExit(f"{source}: {len(rows)} rows, fewer than {hour_rows}")
    one.write_bytes(format_rows(rows, EXACT_COLUMNS))
    span = rows[-1, 0] - rows[0, 0] + 0.01
    with many.open("wb") as out:
        for hour in range(hours):
            shifted = rows.copy()
            shifted[:, 0] = np.round(rows[:, 0] + hour * span, 2)
            out.write(format_rows(shifted, EXACT_COLUMNS))
    return one, many


def model_files(work: Path, smoke: bool) -> tuple[Path, Path]:
    """A model file trained for one short epoch, and its ONNX export."""
    folder = work / ("predict-model-smoke" if smoke else "predict-model")
    model, onnx = folder / "models" / "model.pt", folder / "exports" / "model.onnx"
    if onnx.exists():
        return model, onnx
    from harfusion.inference.export import export
    from harfusion.params import Params
    from harfusion.training.fit import fit

    overrides: dict[str, Any] = {
        "train": {"max_epochs": 1, "limit_train_batches": 2, "accelerator": "cpu"}
    }
    if smoke:
        overrides |= {
            "chunk_size": 128,
            "model": {
                "embed_dim": 16,
                "front": {"motion": {"channels": [8, 16], "strides": [4, 4]}},
            },
        }
    params = Params.model_validate(overrides)
    tensors = tensor_data(work, SMOKE_SECONDS, params)
    fit(params, tensors, folder / "models", folder / "reports")
    export(model, tensors, folder / "exports")
    return model, onnx


def child(kind: str, model: Path, recording: Path, out: Path) -> None:
    """One measurement: `csv` (the command as a user runs it, `--no-timeline`), `timeline` (the
    command drawing its figure too) or `floor` (bare parse, then the bare forward), on the
    runtime `model`'s suffix names."""
    import pyarrow.csv as pacsv

    import harfusion.inference.predict  # noqa: F401  (imports before the clock starts)

    onnx = model.suffix == ".onnx"
    if not onnx:
        import torch

        from harfusion.models.model_file import load_model
    if kind in ("csv", "timeline"):
        from harfusion.command import main

        argv = ["predict", str(recording), "--model", str(model), "--out", str(out)]
        started = time.perf_counter()
        main([*argv, "--no-timeline"] if kind == "csv" else argv)
        elapsed(started)
        return
    from harfusion.inference.runtimes import open_model

    runtime = open_model(model)  # the session or network, built before the clock starts
    card = runtime.card
    if not onnx:
        network = load_model(model)[0].ensemble
    started = time.perf_counter()
    table = pacsv.read_csv(
        recording,
        read_options=pacsv.ReadOptions(autogenerate_column_names=True),
        parse_options=pacsv.ParseOptions(delimiter=" "),
    )
    parsed = time.perf_counter() - started
    from harfusion.data.synthetic.pamap2_format import RAW_COLUMNS

    columns = {
        m: np.column_stack(
            [table.column(RAW_COLUMNS.index(n)).to_numpy() for n in card["channel_names"][m]]
        ).astype(np.float32)
        for m in card["modalities"]
    }
    del table
    length = card["window"]
    starts = np.arange(0, len(next(iter(columns.values()))) - length + 1, card["stride"])
    windows = [
        {m: x[starts[i : i + BATCH, None] + np.arange(length)] for m, x in columns.items()}
        for i in range(0, len(starts), BATCH)
    ]
    started = time.perf_counter()
    for batch in windows:
        mask = np.ones((len(next(iter(batch.values()))), len(batch)), dtype=bool)
        if onnx:
            runtime.probabilities(batch, mask)
        else:
            with torch.no_grad():
                network({m: torch.from_numpy(x) for m, x in batch.items()}, torch.from_numpy(mask))
    print(f"windows: {len(starts)}")
    print(f"elapsed seconds: {parsed + time.perf_counter() - started}", flush=True)


def windows_of(out: Path) -> int:
    with out.open() as handle:
        return sum(1 for _ in handle) - 1


def main() -> None:
    args = parser(__doc__ or "")
    args.add_argument("--hours", type=int, default=10, help="length of the long recording")
    args.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args.add_argument("--prepare", nargs=3, help=argparse.SUPPRESS)
    options = args.parse_args()
    if options.prepare:
        folder, hour_rows, hours = options.prepare
        recordings(Path(folder), int(hour_rows), int(hours))
        model_files(Path(folder), options.smoke)
        return None
    if options.child:
        kind, model, recording, out = options.child
        return child(kind, Path(model), Path(recording), Path(out))
    work: Path = options.work
    work.mkdir(parents=True, exist_ok=True)
    hour_rows = 12_000 if options.smoke else HOUR_ROWS
    hours = 3 if options.smoke else options.hours
    # Made in a child: a process that trained a model would pass its size on to the children
    # it starts (Linux counts the forked parent's pages in a child's peak RSS).
    prepare = [sys.executable, __file__, "--prepare", str(work), str(hour_rows), str(hours)]
    if options.smoke:
        prepare.append("--smoke")
    run_child(prepare)
    hour, long = recordings(work, hour_rows, hours)
    models = model_files(work, options.smoke)
    out = work / "predict-out" / "predictions.csv"
    out.parent.mkdir(exist_ok=True)
    rows = []
    label = f"{hour_rows / 360_000:.3g} h"
    for model in models:
        runtime = "ONNX Runtime" if model.suffix == ".onnx" else "torch"
        ours, drawn, floor = (
            run_child([sys.executable, __file__, "--child", kind, *map(str, (model, hour, out))])
            for kind in ("csv", "timeline", "floor")
        )
        windows = windows_of(out)
        rows += [
            Row(f"{label}, {runtime}: windows/s vs parse + forward", windows / ours.seconds,
                windows / floor.seconds, "/s", f">= {TARGET_SPEED}x"),
            Row(f"{label}, {runtime}, with the timeline", windows / drawn.seconds,
                windows / floor.seconds, "/s", "(information)"),
        ]  # fmt: skip
        print(f"{label}, {runtime}: {windows} windows in {ours.seconds:.2f} s, "
              f"{drawn.seconds:.2f} s with the timeline; floor {floor.seconds:.2f} s")  # fmt: skip
    bare = run_child(
        [sys.executable, __file__, "--child", "floor", str(models[1]), str(long), str(out)]
    )
    for model in models:
        runtime = "ONNX Runtime" if model.suffix == ".onnx" else "torch"
        ours = run_child(
            [sys.executable, __file__, "--child", "timeline", *map(str, (model, long, out))]
        )
        rows.append(
            Row(f"{hours * hour_rows / 360_000:.3g} h, {runtime}: peak RSS vs the floor",
                ours.peak_mb, bare.peak_mb, "MB", f"< {TARGET_MB:g} MB")
        )  # fmt: skip
        print(f"{hours} x {label}, {runtime}: {windows_of(out)} windows in {ours.seconds:.1f} s, "
              f"peak {ours.peak_mb:.0f} MB")  # fmt: skip
    report("predict (raw recording → CSV), CPU", rows)


if __name__ == "__main__":
    main()
