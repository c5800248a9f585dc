"""What every benchmark shares: PAMAP2-format data at a chosen scale, child-process timing with
peak memory, and one table layout (ours, the bare baseline, their ratio, the target).

Benchmarks import `harfusion` from `src/` and need no DVC, so they also run on a bare GPU image.
harfusion's modules are imported where used, so a bare baseline's process never loads them.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

if TYPE_CHECKING:
    from harfusion.params import Params

WORK = ROOT / ".bench"
PAMAP2_SECONDS = 232.0  # seconds per activity that give ~2.9 M raw rows over 9 subjects, as PAMAP2
SMOKE_SECONDS = 6.0


def parser(description: str) -> argparse.ArgumentParser:
    args = argparse.ArgumentParser(description=description)
    args.add_argument(
        "--smoke", action="store_true", help="tiny data and few steps: checks it runs, not speed"
    )
    args.add_argument("--work", type=Path, default=WORK, help="where generated data is kept")
    return args


def machine() -> str:
    from harfusion.threads import usable_cores

    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{usable_cores()} cores, {model}"


def raw_data(work: Path, seconds_per_activity: float) -> Path:
    """The synthetic `.dat` set at this size, generated once and kept under `work`."""
    from harfusion.data.synthetic.generate import generate
    from harfusion.params import SyntheticParams
    from harfusion.threads import usable_cores

    out = work / f"raw-{seconds_per_activity:g}s"
    if not out.exists():
        started = time.perf_counter()
        synthetic = SyntheticParams(seconds_per_activity=seconds_per_activity)
        rows = sum(generate(synthetic, synthetic.seed, out, workers=usable_cores()).values())
        print(f"data: {rows} raw rows in {time.perf_counter() - started:.1f} s → {out}")
    return out


def tensor_data(work: Path, seconds_per_activity: float, params: Params) -> Path:
    """Preprocess → split → tensorize with our stage functions, kept per size and chunk."""
    from harfusion.data.description import load_description
    from harfusion.data.preprocess import preprocess
    from harfusion.data.splits import write_splits
    from harfusion.data.tensorize import tensorize

    name = f"tensors-{seconds_per_activity:g}s-{params.chunk_size}-{params.stride}"
    out = work / name / "tensors"
    if out.exists():
        return out
    raw = raw_data(work, seconds_per_activity)
    processed, splits = work / name / "processed", work / name / "splits"
    started = time.perf_counter()
    shards = preprocess(raw, processed, params.preprocess, load_description(params.data.dataset))
    rows = sum(shard["rows"] for shard in shards)
    print(f"data: preprocessed {rows} rows in {time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    write_splits(processed, splits, params.split)
    manifest = tensorize(splits, processed, out, params.chunk_size, params.stride)
    windows = {split: len(w) for split, w in manifest["windows"].items()}
    print(f"data: windows {windows} in {time.perf_counter() - started:.1f} s → {out}")
    return out


@dataclass(frozen=True)
class Run:
    seconds: float
    peak_mb: float


def run_child(command: list[str], cwd: Path = ROOT) -> Run:
    """The child's time and its own peak RSS (wait4); fails loudly if the child fails.

    The time is what the child reports with `elapsed()` (its work without interpreter start-up
    and imports) or else the wall time of the whole process.
    """
    env = os.environ | {"TQDM_DISABLE": "1"}
    started = time.perf_counter()
    child = subprocess.Popen(
        command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    output = child.stdout.read() if child.stdout else ""
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{output[-3000:]}\nbenchmark child failed: {' '.join(command)}")
    for line in output.splitlines():
        if line.startswith(ELAPSED):
            seconds = float(line.removeprefix(ELAPSED))
    return Run(seconds, usage.ru_maxrss / 1024)


ELAPSED = "elapsed seconds: "


def elapsed(started: float) -> None:
    """Tell `run_child` how long the measured work took."""
    print(f"{ELAPSED}{time.perf_counter() - started}", flush=True)


@dataclass(frozen=True)
class Row:
    name: str
    ours: float
    baseline: float
    unit: str
    target: str = ""

    @property
    def ratio(self) -> float:
        """Ours / baseline, for times and rates alike; the target says which way is good."""
        return self.ours / self.baseline if self.baseline else float("inf")


def report(title: str, rows: list[Row]) -> None:
    print(f"\n{title} — {machine()}, {time.strftime('%Y-%m-%d')}")
    header = f"{'measure':<44} {'ours':>12} {'baseline':>12} {'ratio':>7}  target"
    print(header)
    print("-" * len(header))
    for row in rows:
        print(
            f"{row.name:<44} {row.ours:>9.4g} {row.unit:<2} {row.baseline:>9.4g} {row.unit:<2}"
            f" {row.ratio:>6.2f}x  {row.target}"
        )


def uv() -> str:
    found = os.environ.get("UV") or shutil.which("uv")
    if not found:
        raise SystemExit("needs uv on PATH")
    return found


def fresh_clone(target: Path, overrides: dict) -> Path:
    """A new clone of this commit at `target`, with `overrides` (dotted keys) in its params.yaml."""
    import yaml

    from harfusion.experiments.ablations import assign

    shutil.rmtree(target, ignore_errors=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "clone", "-q", str(ROOT), str(target)], check=True)
    if overrides:
        params = yaml.safe_load((target / "params.yaml").read_text())
        for key, value in overrides.items():
            assign(params, key, value)
        (target / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return target
