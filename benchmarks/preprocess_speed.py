"""Preprocess at PAMAP2 scale against bare pyarrow: parse only, and parse + CSV write.

    uv run python benchmarks/preprocess_speed.py            # 1x, 2x, 4x PAMAP2 scale
    uv run python benchmarks/preprocess_speed.py --smoke    # tiny, for CI

Scale k repeats every subject's recordings k times under new subject ids (hard links, so the
bytes parsed are real and identical): the data set grows k-fold while the largest subject
stays the same, which is what peak memory should follow. Each measurement is its own process,
so its peak RSS is its own.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

import pyarrow.csv as pacsv
from _common import (
    PAMAP2_SECONDS,
    SMOKE_SECONDS,
    Row,
    elapsed,
    parser,
    raw_data,
    report,
    run_child,
)

TARGET = 1.25


def scaled(raw: Path, scale: int) -> Path:
    """`raw` with each subject repeated `scale` times as subject ids +1000, +2000, ..."""
    out = raw.parent / f"{raw.name}-x{scale}"
    if out.exists():
        return out
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    for path in raw.rglob("*.dat"):
        subject = int(path.stem.removeprefix("subject"))
        for copy in range(scale):
            target = tmp / path.parent.name / f"subject{subject + 1000 * copy}.dat"
            target.parent.mkdir(parents=True, exist_ok=True)
            os.link(path, target)
    tmp.rename(out)
    return out


def count_lines(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(block.count(b"\n") for block in iter(lambda: handle.read(1 << 24), b""))


def bare(raw: Path, out: Path | None) -> None:
    """pyarrow alone: read each `.dat` (space-separated, typed by inference), maybe write it."""
    options = pacsv.ParseOptions(delimiter=" ")
    read = pacsv.ReadOptions(autogenerate_column_names=True)
    for index, path in enumerate(sorted(raw.rglob("*.dat"))):
        table = pacsv.read_csv(path, read_options=read, parse_options=options)
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
            pacsv.write_csv(table, out / f"{index}.csv")


def child(kind: str, raw: Path, out: Path) -> None:
    if kind == "ours":
        from harfusion.data.description import load_description
        from harfusion.data.preprocess import preprocess
        from harfusion.params import PreprocessParams  # imported before the clock starts

        started = time.perf_counter()
        params = PreprocessParams()
        preprocess(raw, out, params, load_description("pamap2"))  # *.dat: PAMAP2 by design
    else:
        started = time.perf_counter()
        bare(raw, out if kind == "parse+write" else None)
    elapsed(started)


def main() -> None:
    args = parser(__doc__ or "")
    args.add_argument("--scales", type=int, nargs="+", default=[1, 2, 4])
    args.add_argument("--child", nargs=3, metavar=("KIND", "RAW", "OUT"), help=argparse.SUPPRESS)
    options = args.parse_args()
    if options.child:
        kind, raw, out = options.child
        return child(kind, Path(raw), Path(out))
    seconds = SMOKE_SECONDS if options.smoke else PAMAP2_SECONDS
    scales = [1, 2] if options.smoke else options.scales
    raw = raw_data(options.work, seconds)
    rows, first = [], {}
    for scale in scales:
        data = scaled(raw, scale)
        rows_in = sum(count_lines(path) for path in data.rglob("*.dat"))
        runs = {}
        for kind in ("ours", "parse", "parse+write"):
            out = options.work / "preprocess-out"
            shutil.rmtree(out, ignore_errors=True)
            os.sync()  # the previous child's writes must not be flushed on this one's time
            runs[kind] = run_child([sys.executable, __file__, "--child", kind, str(data), str(out)])
        shutil.rmtree(options.work / "preprocess-out", ignore_errors=True)
        first = first or runs
        label = f"{scale}x ({rows_in / 1e6:.2f} M rows)"
        rows += [
            Row(f"{label}: time vs parse+write", runs["ours"].seconds,
                runs["parse+write"].seconds, "s", f"<= {TARGET}x"),
            Row(f"{label}: time vs parse only", runs["ours"].seconds, runs["parse"].seconds, "s"),
            Row(f"{label}: peak RSS vs parse+write", runs["ours"].peak_mb,
                runs["parse+write"].peak_mb, "MB"),
            Row(f"{label}: time vs ours at 1x", runs["ours"].seconds, first["ours"].seconds,
                "s", f"~{scale}x (linear)"),
            Row(f"{label}: peak RSS vs ours at 1x", runs["ours"].peak_mb, first["ours"].peak_mb,
                "MB", "~1x (flat)"),
        ]  # fmt: skip
    report("preprocess (PAMAP2-format .dat → CSV shards)", rows)


if __name__ == "__main__":
    main()
