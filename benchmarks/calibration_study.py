"""Calibration and stability across people (issue 23): the project's LOSO on real PAMAP2, run
in-process with the library's stage functions, every fold's validation and test logits saved, so
that calibrators and ensembles are compared without retraining.

    nice -n 19 uv run python benchmarks/calibration_study.py fit --variant base --seeds 1,2,3 -j 2
    uv run python benchmarks/calibration_study.py analyze [--out benchmarks/calibration_study.md]

The protocol is `harfusion loso`'s as benchmarks/real_quality.py runs it (`--subjects` the six
tested subjects): test 101, 103, 104, 106, 107, 108 in turn, validate on the next of them (108's
fold on 101), all others train (109 always); default params.yaml. Each fit runs in its own child
process with one CPU thread.

Variants (how the folds' models are trained):
- base: the pipeline's recipe, one model per fold and seed;
- crossfit: per fold and seed, one member per training subject, trained without it (it joins the
  test split): its out-of-fold logits calibrate across people, and the members are an ensemble;
- val2: two validation subjects (the next two), one fewer training subject;
- recnorm / recnorm_triad / recnorm_mag: each recording (subject) standardised by its own
  per-channel mean and std (triad: one std per 3-axis sensor, so a rotation stays a rotation;
  mag: only the magnetometers' means subtracted), no labels used;
- chunk1024 (and chunk1024_crossfit): windows of 1024 steps;
- base_val109 / crossfit_val109 (with `--tests 108`): 108's fold validated on 109, who holds one
  activity only, to see how each calibrator copes with a one-class validation subject.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

RAW = ROOT.parent / "shared" / "pamap2_dev"  # real recordings, never copied into the repo
WORK = ROOT / ".bench" / "calibration"
SUBJECTS = [101, 103, 104, 106, 107, 108, 109]
TESTED = [101, 103, 104, 106, 107, 108]


class Variant(NamedTuple):
    overrides: dict  # params
    norm: str | None = None  # per-recording normalisation: channel | triad | mag
    design: str = "fold"  # fold | crossfit | val2
    validation: list[int] | None = None  # fixed validation subjects instead of the next one


VARIANTS: dict[str, Variant] = {
    "base": Variant({}),
    "base_val109": Variant({}, validation=[109]),  # with --tests 108: a one-class validation
    "crossfit": Variant({}, design="crossfit"),
    "crossfit_val109": Variant({}, design="crossfit", validation=[109]),
    "val2": Variant({}, design="val2"),
    "recnorm": Variant({}, "channel"),
    "recnorm_triad": Variant({}, "triad"),
    "recnorm_mag": Variant({}, "mag"),
    "chunk1024": Variant({"chunk_size": 1024}),
    "chunk1024_crossfit": Variant({"chunk_size": 1024}, design="crossfit"),
}


def validation_of(test: int, count: int = 1) -> list[int]:
    """The next `count` tested subjects after `test` (cyclic), as `harfusion loso --subjects
    101,103,104,106,107,108` plans them (real_quality.py): 108's fold validates on 101."""
    index = TESTED.index(test)
    return [TESTED[(index + k) % len(TESTED)] for k in range(1, count + 1)]


def training_of(test: int, val: list[int]) -> list[int]:
    return [s for s in SUBJECTS if s != test and s not in val]


@dataclass(frozen=True)
class Job:
    variant: str
    test: int
    seed: int
    member: int | None = None  # crossfit: the training subject this member leaves out

    @property
    def name(self) -> str:
        left_out = f"-m{self.member}" if self.member is not None else ""
        return f"t{self.test}-s{self.seed}{left_out}"

    @property
    def out(self) -> Path:
        return WORK / "runs" / self.variant / f"{self.name}.npz"

    def split(self) -> tuple[list[int], list[int]]:
        """(validation subjects, test subjects) of this job's split."""
        test = [self.test] + ([self.member] if self.member is not None else [])
        return validation(self.variant, self.test), test


def validation(variant: str, test: int) -> list[int]:
    chosen = VARIANTS[variant]
    return chosen.validation or validation_of(test, 2 if chosen.design == "val2" else 1)


def jobs_of(variant: str, seeds: list[int], tests: list[int]) -> list[Job]:
    jobs = []
    for seed in seeds:
        for test in tests:
            if VARIANTS[variant].design == "crossfit":
                held = training_of(test, validation(variant, test))
                jobs += [Job(variant, test, seed, member) for member in held]
            else:
                jobs.append(Job(variant, test, seed))
    return jobs


# ---------------------------------------------------------------- data and one fit (child)


def params_for(job: Job):
    from harfusion.params import Params, load_params

    overrides = VARIANTS[job.variant].overrides
    val, test = job.split()
    tree = load_params(ROOT / "params.yaml").model_dump()
    tree["data"]["raw_dir"] = str(RAW)
    tree["seed"] = job.seed
    # one model per fit (ensembles are averaged from seeds' saved logits), its temperature
    # fitted here from the logits, not by training
    tree["train"] |= {"ensemble": 1}
    tree["split"] |= {"strategy": "subject", "val_subjects": val, "test_subjects": test}
    for key, value in overrides.items():
        tree[key] = value
    return Params.model_validate(tree)


def processed_dir(params) -> Path:
    """Preprocess once (real recordings → shards), shared by every job."""
    from harfusion.data.description import load_description
    from harfusion.data.preprocess import preprocess

    out = WORK / "processed"
    with _lock(WORK / "processed.lock"):
        if not out.exists():
            preprocess(RAW, out, params.preprocess, load_description("pamap2"))
    return out


def tensor_dir(job: Job, params) -> Path:
    """Split + tensorize (+ per-recording normalisation) once per split, chunk and norm."""
    from harfusion.data.splits import write_splits
    from harfusion.data.tensorize import tensorize

    norm = VARIANTS[job.variant].norm
    val, test = job.split()
    key = f"c{params.chunk_size}-v{'_'.join(map(str, val))}-t{'_'.join(map(str, test))}"
    key += f"-n{norm}" if norm else ""
    out = WORK / "tensors" / key
    processed = processed_dir(params)
    with _lock(WORK / "tensors" / f"{key}.lock"):
        if not out.exists():
            staging = WORK / "tensors" / f"{key}.staging"
            shutil.rmtree(staging, ignore_errors=True)
            write_splits(processed, staging / "splits", params.split)
            tensorize(
                staging / "splits",
                processed,
                staging / "tensors",
                params.chunk_size,
                params.stride,
                params.train_stride,
            )
            if norm:
                normalise_recordings(staging / "tensors", norm)
            (staging / "tensors").rename(out)
            shutil.rmtree(staging)
    return out


def normalise_recordings(tensors: Path, mode: str) -> None:
    """Standardise each subject's recording by its own statistics (every row of it, no labels),
    then refit the train-split statistics the dataset normalises with on the result.

    `channel`: per-channel mean and std. `triad`: per-channel mean, one std per 3-axis sensor
    (the root mean square of its axes' stds), so a rotation of the sensor stays a rotation.
    `mag`: only the magnetometers' per-channel means subtracted.
    A recording here is one subject's Protocol session (pamap2_dev has one per subject).
    """
    import torch

    from harfusion.data.description import load_description
    from harfusion.layout import MANIFEST, NORM_STATS

    manifest = json.loads((tensors / MANIFEST).read_text())
    by_subject: dict[int, list[Path]] = {}
    for shard in manifest["shards"]:
        by_subject.setdefault(shard["subject"], []).append(tensors / shard["path"])
    SENSOR_COLUMNS = load_description("pamap2").channels
    triads = _triads(SENSOR_COLUMNS)
    for paths in by_subject.values():
        shards = [torch.load(p, weights_only=True) for p in paths]
        rows = torch.cat([s["features"] for s in shards]).double().numpy()
        mean = np.nanmean(rows, axis=0)
        std = np.nanstd(rows, axis=0)
        if mode == "mag":  # only the magnetometers' offsets (local field, hard iron)
            mean[[i for i, c in enumerate(SENSOR_COLUMNS) if "_mag_" not in c]] = 0.0
            std[:] = 1.0
        if mode == "triad":
            for triad in triads:
                std[triad] = np.sqrt(np.mean(std[triad] ** 2))
        std = np.where(np.isfinite(std) & (std > 1e-6), std, 1.0)
        mean = np.where(np.isfinite(mean), mean, 0.0)
        for path, shard in zip(paths, shards, strict=True):
            values = (shard["features"].double().numpy() - mean) / std
            shard["features"] = torch.from_numpy(values.astype(np.float32))
            torch.save(shard, path)
    train = [tensors / s["path"] for s in manifest["shards"] if s["split"] == "train"]
    rows = torch.cat([torch.load(p, weights_only=True)["features"] for p in train]).double()
    rows = rows.numpy()
    mean, std = np.nanmean(rows, axis=0), np.nanstd(rows, axis=0)
    std = np.where(np.isfinite(std) & (std > 1e-6), std, 1.0)
    stats = json.loads((tensors / NORM_STATS).read_text())
    stats |= {"mean": np.nan_to_num(mean).tolist(), "std": std.tolist(), "per_recording": mode}
    (tensors / NORM_STATS).write_text(json.dumps(stats, indent=1))


def _triads(columns: tuple[str, ...]) -> list[list[int]]:
    index = {name: i for i, name in enumerate(columns)}
    return [
        [index[f"{stem}_{axis}"] for axis in "xyz"]
        for stem in sorted({c.rsplit("_", 1)[0] for c in columns if c.endswith("_x")})
    ]


class _lock:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path

    def __enter__(self) -> None:
        self.handle = self.path.open("w")
        fcntl.flock(self.handle, fcntl.LOCK_EX)

    def __exit__(self, *_) -> None:
        fcntl.flock(self.handle, fcntl.LOCK_UN)
        self.handle.close()


def run_job(job: Job) -> None:
    """Fit one model and save its validation and test logits (with labels and subjects)."""
    import torch

    from harfusion.data.dataset import ShardWindows
    from harfusion.data.loaders import SplitLoaders
    from harfusion.evaluation.evaluate import predict
    from harfusion.layout import MODEL_FILE
    from harfusion.models.model_file import load_model
    from harfusion.training.fit import fit

    params = params_for(job)
    tensors = tensor_dir(job, params)
    scratch = WORK / "scratch" / job.variant / job.name
    shutil.rmtree(scratch, ignore_errors=True)
    started = time.perf_counter()
    summary = fit(params, tensors, scratch / "models", scratch / "reports")
    seconds = time.perf_counter() - started
    predictor, saved = load_model(scratch / "models" / MODEL_FILE)
    model = predictor.ensemble
    data = SplitLoaders(tensors, params)
    arrays: dict[str, np.ndarray] = {}
    for split in ("val", "test"):
        run = predict(model, data.loader(split))
        windows = data.splits[split]
        assert isinstance(windows, ShardWindows)
        subjects = [windows.shards[s]["subject"] for s in windows.windows[:, 0].tolist()]
        arrays[f"{split}_logits"] = run.logits.numpy()
        arrays[f"{split}_labels"] = run.labels.numpy()
        arrays[f"{split}_subjects"] = np.array(subjects)
    arrays["train_counts"] = data.class_counts("train").numpy()
    arrays["class_names"] = np.array(saved["class_names"])
    arrays["epochs"] = np.array(summary["epochs"])
    arrays["fit_seconds"] = np.array(seconds)
    arrays["torch_threads"] = np.array(torch.get_num_threads())
    job.out.parent.mkdir(parents=True, exist_ok=True)
    partial = job.out.with_suffix(".partial.npz")
    np.savez(partial, **arrays)  # ty: ignore[invalid-argument-type]
    partial.rename(job.out)
    shutil.rmtree(scratch, ignore_errors=True)
    print(f"{job.variant} {job.name}: {seconds:.0f} s, {summary['epochs']} epochs", flush=True)


def forest(variant: str, seeds: list[int]) -> None:
    """The `baseline` forest on exactly the variant's windows and folds: learnable macro F1 per
    fold (mean ± std and worst over fold × seed runs) and pooled per seed."""
    from harfusion.evaluation.baseline import run_baseline
    from harfusion.evaluation.metrics import f1_per_class, macro_f1

    learnable = ["ascending stairs", "descending stairs", "rope jumping"]
    rows, pooled = [], []
    for seed in seeds:
        actual_all, predicted_all = [], []
        for test in TESTED:
            job = Job(variant, test, seed)
            params = params_for(job)
            out = WORK / "forest" / variant / job.name
            run_baseline(params, tensor_dir(job, params), out)
            lines = (out / "confusion.csv").read_text().splitlines()[1:]
            actual = [line.split(",")[0] for line in lines]
            predicted = [line.split(",")[1] for line in lines]
            rows.append(macro_f1(f1_per_class(actual, predicted), learnable))
            actual_all += actual
            predicted_all += predicted
        pooled.append(macro_f1(f1_per_class(actual_all, predicted_all), learnable))
    print(
        f"forest on {variant} windows, seeds {seeds}: pooled learnable "
        f"{np.mean(pooled):.3f} ± {np.std(pooled, ddof=1):.3f}, per fold "
        f"{np.mean(rows):.3f} ± {np.std(rows, ddof=1):.3f}, worst {min(rows):.3f}"
    )


def run_jobs(jobs: list[Job], workers: int) -> None:
    """Each job in a child process (one thread, lowest priority), `workers` at a time."""
    todo = [job for job in jobs if not job.out.exists()]
    print(f"{len(todo)} of {len(jobs)} jobs to run, {workers} at a time", flush=True)
    env = os.environ | {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TQDM_DISABLE": "1"}

    def one(job: Job) -> None:
        log = WORK / "logs" / job.variant / f"{job.name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        command = ["nice", "-n", "19", sys.executable, __file__, "job", job.variant]
        command += [str(job.test), str(job.seed), str(job.member if job.member else 0)]
        started = time.perf_counter()
        with log.open("w") as handle:
            result = subprocess.run(command, stdout=handle, stderr=subprocess.STDOUT, env=env)
        took = time.perf_counter() - started
        state = "ok" if result.returncode == 0 else f"FAILED (exit {result.returncode}, {log})"
        print(f"{job.variant} {job.name}: {state} in {took:.0f} s", flush=True)

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(one, todo))


def main() -> None:
    args = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = args.add_subparsers(dest="command", required=True)
    fit_args = commands.add_parser("fit", help="train the folds of a variant")
    fit_args.add_argument("--variant", required=True, choices=sorted(VARIANTS))
    fit_args.add_argument("--seeds", default="1")
    fit_args.add_argument("--tests", default=",".join(map(str, TESTED)))
    fit_args.add_argument("-j", "--jobs", type=int, default=1)
    job_args = commands.add_parser("job", help="one fit (what `fit` runs in a child)")
    job_args.add_argument("variant")
    job_args.add_argument("test", type=int)
    job_args.add_argument("seed", type=int)
    job_args.add_argument("member", type=int)
    forest_args = commands.add_parser("forest", help="the baseline forest on a variant's folds")
    forest_args.add_argument("--variant", required=True, choices=sorted(VARIANTS))
    forest_args.add_argument("--seeds", default="1,2,3")
    analyze_args = commands.add_parser("analyze", help="tables from the saved logits")
    analyze_args.add_argument("--out", type=Path)
    analyze_args.add_argument(
        "--runs", type=Path, default=WORK / "runs", help="the saved logits (default: %(default)s)"
    )
    options = args.parse_args()
    if options.command != "analyze" and not RAW.is_dir():
        raise SystemExit(f"calibration_study: {RAW} does not exist (real PAMAP2 recordings)")
    if options.command == "fit":
        seeds = [int(s) for s in options.seeds.split(",")]
        tests = [int(s) for s in options.tests.split(",")]
        run_jobs(jobs_of(options.variant, seeds, tests), options.jobs)
    elif options.command == "forest":
        forest(options.variant, [int(s) for s in options.seeds.split(",")])
    elif options.command == "job":
        member = options.member or None
        run_job(Job(options.variant, options.test, options.seed, member))
    else:
        from calibration_analysis import analyze

        analyze(options.runs, options.out)


if __name__ == "__main__":
    main()
