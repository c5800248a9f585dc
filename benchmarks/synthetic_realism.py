"""How close the embedded synthetic PAMAP2 comes to real recordings, on the activities both hold.

    uv run python benchmarks/synthetic_realism.py --real ../shared/pamap2_dev

The synthetic set is what new users, CI and the ablations run on; a conclusion drawn on it only
means something if it is about as hard as real data and ranks the sensors the same way. This
generates the default synthetic set (`data.synthetic` in params.yaml) into a temporary folder,
reads it and the real folder with the project's reader and heart-rate filling, cuts both into
the pipeline's windows (`chunk_size`; training windows at `dataset.train_stride`) and compares,
per shared activity:

- per sensor, the mean, std and dominant frequency of the ±16 g acceleration and gyroscope
  magnitudes in each window, averaged per subject, then over subjects (± their spread);
- heart-rate level and range;
- leave-one-subject-out macro F1 of the `baseline` stage's forest and window statistics
  (`harfusion.evaluation.baseline`) on all modalities and on each one alone, same protocol on
  both sets.

Shared activities: those with a window in at least two subjects of each set (a class only one
subject holds cannot be learned in its own fold, nor spread across subjects). Test folds: every
subject with windows of at least two shared activities; the others always train. Each fold
trains on all other subjects (a forest needs no validation subject), normalised as the pipeline
does (train-fold mean and std, missing values as 0). Prints each calibration target as met or
missed. `--smoke`: a small synthetic set, two folds, a small forest (checks that it runs).
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from _common import ROOT, machine, parser

from harfusion.data.preprocess import fill_and_smooth
from harfusion.data.recordings import find_recordings, read_recording
from harfusion.data.synthetic.generate import generate
from harfusion.data.synthetic.pamap2_format import PAMAP2, RAW_COLUMNS, TRANSIENT_ACTIVITY
from harfusion.data.windows import window_starts
from harfusion.evaluation.baseline import feature_names, make_estimator, window_features
from harfusion.params import Params, load_params
from harfusion.threads import usable_cores

# PAMAP2 by design: it compares the synthetic PAMAP2 set with real PAMAP2 recordings.
IMUS = ("hand", "chest", "ankle")
MODALITIES = PAMAP2.modality_names
activity_name = PAMAP2.activity_name
RATE_HZ = PAMAP2.sampling_rate_hz
HR_WINDOW = PAMAP2.modalities["heart_rate"].preprocess.median_window
_COLUMN = {name: i for i, name in enumerate(RAW_COLUMNS)}
_HR = _COLUMN["heart_rate_bpm"]
SIGNALS = ("acc16", "gyro")  # magnitudes compared; the magnetometer is the room, not the motion
FEATURE_BATCH = 256  # windows per feature batch: memory stays flat

# Calibration targets (issue 13).
F1_TOLERANCE = 0.03
SINGLE_TOLERANCE = 0.08
STD_FACTOR = 1.3
SPREAD_FACTOR = 1.5
HR_TOLERANCE_BPM = 8.0


@dataclass
class Shard:
    """One subject × activity, rows in recording order (as preprocess writes a shard)."""

    subject: int
    activity: int
    rows: np.ndarray  # [n, 54], heart rate filled as preprocess fills it
    raw_hr: np.ndarray  # the heart-rate samples as recorded (NaN between samples)


def load_shards(raw_dir: Path, params: Params) -> list[Shard]:
    """Every labelled subject × activity of `raw_dir`, read and filled like preprocess does."""
    by_subject: dict[int, list[np.ndarray]] = {}
    raw_hr: dict[int, list[np.ndarray]] = {}
    for recording in find_recordings(raw_dir, PAMAP2, params.preprocess.sessions):
        data = read_recording(recording.path, PAMAP2)
        values = np.column_stack([data.timestamps, data.labels, data.values])
        raw_hr.setdefault(recording.subject, []).append(values[:, _HR].copy())
        values[:, _HR] = fill_and_smooth(values[:, _HR], True, HR_WINDOW)
        by_subject.setdefault(recording.subject, []).append(values)
    shards = []
    for subject in sorted(by_subject):
        rows = np.concatenate(by_subject[subject])
        hr = np.concatenate(raw_hr[subject])
        labels = rows[:, _COLUMN["activity_id"]].astype(int)
        for activity in sorted(set(labels.tolist()) - {TRANSIENT_ACTIVITY}):
            keep = labels == activity
            shards.append(Shard(subject, activity, rows[keep], hr[keep]))
    return shards


def starts(shard: Shard, chunk_size: int, stride: int) -> np.ndarray:
    return window_starts(shard.rows[:, _COLUMN["timestamp_s"]], RATE_HZ, chunk_size, stride)


def shared_activities(sets: dict[str, list[Shard]], chunk_size: int) -> list[int]:
    """Activities with a window in at least two subjects of every set."""
    found = []
    for shards in sets.values():
        holders: dict[int, set[int]] = {}
        for shard in shards:
            if len(starts(shard, chunk_size, chunk_size)):
                holders.setdefault(shard.activity, set()).add(shard.subject)
        found.append({a for a, subjects in holders.items() if len(subjects) >= 2})
    return sorted(set.intersection(*found))


# --- Signal statistics ------------------------------------------------------------------------


def _magnitude_stats(windows: np.ndarray) -> np.ndarray:
    """[N, T, 3] → [N, 3]: mean, std and dominant frequency (Hz) of each window's magnitude."""
    magnitude = np.linalg.norm(windows, axis=-1)
    mean = np.nanmean(magnitude, axis=1)
    std = np.nanstd(magnitude, axis=1)
    centred = np.nan_to_num(magnitude - mean[:, None])
    power = np.abs(np.fft.rfft(centred, axis=1)[:, 1:]) ** 2
    dominant = (power.argmax(axis=1) + 1) * 100.0 / magnitude.shape[1]
    return np.column_stack([mean, std, dominant])


@dataclass(frozen=True)
class Figure:
    """A per-subject statistic summarised over subjects."""

    mean: float
    spread: float  # std over subjects
    subjects: int


def _over_subjects(per_subject: list[float]) -> Figure:
    values = np.asarray(per_subject)
    spread = float(values.std(ddof=1)) if len(values) > 1 else float("nan")
    return Figure(float(values.mean()), spread, len(values))


def motion_figures(
    shards: list[Shard], activities: list[int], chunk_size: int
) -> dict[tuple[int, str, str, str], Figure]:
    """(activity, sensor, signal, 'mean'|'std'|'dominant_hz') → over-subject figure."""
    per_subject: dict[tuple[int, str, str, str], list[float]] = {}
    for shard in shards:
        if shard.activity not in activities:
            continue
        first = starts(shard, chunk_size, chunk_size)
        if not len(first):
            continue
        index = first[:, None] + np.arange(chunk_size)
        for imu in IMUS:
            for signal in SIGNALS:
                columns = [_COLUMN[f"{imu}_{signal}_{axis}"] for axis in "xyz"]
                stats = np.nanmean(_magnitude_stats(shard.rows[:, columns][index]), axis=0)
                for name, value in zip(("mean", "std", "dominant_hz"), stats, strict=True):
                    key = (shard.activity, imu, signal, name)
                    per_subject.setdefault(key, []).append(float(value))
    return {key: _over_subjects(values) for key, values in per_subject.items()}


def heart_rate_figures(
    shards: list[Shard], activities: list[int]
) -> dict[int, tuple[Figure, float, float]]:
    """activity → (mean bpm over subjects, 5th and 95th percentile of all its samples)."""
    means: dict[int, list[float]] = {}
    samples: dict[int, list[np.ndarray]] = {}
    for shard in shards:
        present = shard.raw_hr[~np.isnan(shard.raw_hr)]
        if shard.activity in activities and len(present):
            means.setdefault(shard.activity, []).append(float(present.mean()))
            samples.setdefault(shard.activity, []).append(present)
    result = {}
    for activity, values in means.items():
        low, high = np.percentile(np.concatenate(samples[activity]), [5, 95])
        result[activity] = (_over_subjects(values), float(low), float(high))
    return result


# --- Leave-one-subject-out baseline -----------------------------------------------------------


def _model_columns(params: Params) -> list[str]:
    groups = params.dataset.channel_groups
    return [c for m in MODALITIES for c in _channels(m, groups)]


def _channels(modality: str, groups) -> list[str]:
    return PAMAP2.inputs([modality], groups).channel_names[modality]


def _vectors(names: list[str]) -> list[list[str]]:
    """The acceleration axes among `names` (±16 g preferred), per IMU: correlated features."""
    found = []
    for modality in MODALITIES:
        for group in ("acc16", "acc6"):
            axes = (
                PAMAP2.channels_of(modality, [group])
                if group in PAMAP2.modalities[modality].groups
                else []
            )
            if axes and all(axis in names for axis in axes):
                found.append(axes)
                break
    return found


def _windows(shards: list[Shard], chunk_size: int, stride: int, columns: list[int]):
    """Stacked windows [N, T, C] and their activity labels."""
    windows, labels = [], []
    for shard in shards:
        first = starts(shard, chunk_size, stride)
        if len(first):
            windows.append(shard.rows[:, columns][first[:, None] + np.arange(chunk_size)])
            labels.append(np.full(len(first), shard.activity))
    return np.concatenate(windows), np.concatenate(labels)


def _features(windows: np.ndarray, mean: np.ndarray, std: np.ndarray, names: list[str]):
    """The baseline's features of windows normalised as the pipeline does (NaN → 0)."""
    out = []
    for i in range(0, len(windows), FEATURE_BATCH):
        x = np.nan_to_num((windows[i : i + FEATURE_BATCH] - mean) / std)
        out.append(window_features(x, names, RATE_HZ, _vectors(names)))
    return np.concatenate(out)


def loso_folds(shards: list[Shard], activities: list[int], chunk_size: int) -> list[int]:
    """Subjects with windows of at least two shared activities: each is a test fold."""
    held: dict[int, int] = {}
    for shard in shards:
        if shard.activity in activities and len(starts(shard, chunk_size, chunk_size)):
            held[shard.subject] = held.get(shard.subject, 0) + 1
    return sorted(s for s, count in held.items() if count >= 2)


def loso_f1(
    shards: list[Shard], activities: list[int], params: Params, folds: list[int], trees: int
) -> dict[str, np.ndarray]:
    """Pooled out-of-fold F1 per shared activity of the forest on all modalities and on each
    modality alone."""
    from sklearn.metrics import f1_score

    chunk = params.chunk_size
    names = _model_columns(params)
    columns = [_COLUMN[name] for name in names]
    feature_index = {name: i for i, name in enumerate(feature_names(names, _vectors(names)))}
    subsets = {"all": list(MODALITIES)} | {m: [m] for m in MODALITIES}
    selected = {}
    for key, mods in subsets.items():
        chosen = [c for m in mods for c in _channels(m, params.dataset.channel_groups)]
        selected[key] = [feature_index[f] for f in feature_names(chosen, _vectors(chosen))]
    baseline = params.baseline.model_copy(update={"trees": trees})
    shared = [s for s in shards if s.activity in activities]
    truth, predicted = [], {key: [] for key in subsets}
    for subject in folds:
        train = [s for s in shared if s.subject != subject]
        test = [s for s in shared if s.subject == subject]
        train_rows = np.concatenate([s.rows[:, columns] for s in train])
        mean = np.nanmean(train_rows, axis=0)
        std = np.nanstd(train_rows, axis=0)
        std[~(std >= 1e-6)] = 1.0
        train_x, train_y = _windows(train, chunk, params.train_stride, columns)
        test_x, test_y = _windows(test, chunk, params.stride, columns)
        train_f = _features(train_x, mean, std, names)
        test_f = _features(test_x, mean, std, names)
        truth.append(test_y)
        for key, index in selected.items():
            forest = make_estimator(baseline, params.seed).fit(train_f[:, index], train_y)
            if "n_jobs" in forest.get_params():  # threads would add the votes in any order
                forest.set_params(n_jobs=1)
            predicted[key].append(forest.predict(test_f[:, index]))
    y = np.concatenate(truth)
    return {
        key: f1_score(y, np.concatenate(p), labels=activities, average=None, zero_division=0)
        for key, p in predicted.items()
    }


# --- Comparison and targets -------------------------------------------------------------------


@dataclass
class Measured:
    motion: dict[tuple[int, str, str, str], Figure]
    heart_rate: dict[int, tuple[Figure, float, float]]
    per_class_f1: dict[str, np.ndarray]  # modalities → F1 per shared activity
    folds: list[int]
    subjects: list[int]

    @property
    def f1(self) -> dict[str, float]:
        """Pooled macro F1 per modality set."""
        return {key: float(f1.mean()) for key, f1 in self.per_class_f1.items()}


def measure(
    shards: list[Shard], activities: list[int], params: Params, trees: int, fold_limit: int | None
) -> Measured:
    folds = loso_folds(shards, activities, params.chunk_size)[:fold_limit]
    return Measured(
        motion_figures(shards, activities, params.chunk_size),
        heart_rate_figures(shards, activities),
        loso_f1(shards, activities, params, folds, trees),
        folds,
        sorted({s.subject for s in shards if s.activity in activities}),
    )


def _ratio(synthetic: float, real: float) -> float:
    return synthetic / real if real else float("inf")


def _within_factor(ratio: float, factor: float) -> bool:
    return 1 / factor <= ratio <= factor


def targets(real: Measured, synthetic: Measured, activities: list[int]) -> list[tuple[str, bool]]:
    """Each calibration target as (what was measured, met)."""
    out = []
    diff = synthetic.f1["all"] - real.f1["all"]
    out.append(
        (
            f"pooled LOSO macro F1, all modalities: synthetic {synthetic.f1['all']:.3f}, real "
            f"{real.f1['all']:.3f} (difference {diff:+.3f}, target ±{F1_TOLERANCE})",
            abs(diff) <= F1_TOLERANCE,
        )
    )
    singles = [m for m in MODALITIES]
    real_order = sorted(singles, key=lambda m: -real.f1[m])
    synthetic_order = sorted(singles, key=lambda m: -synthetic.f1[m])
    out.append(
        (
            f"single-modality order: synthetic {' > '.join(synthetic_order)}, real "
            f"{' > '.join(real_order)}",
            synthetic_order == real_order,
        )
    )
    for m in singles:
        diff = synthetic.f1[m] - real.f1[m]
        out.append(
            (
                f"{m} alone: synthetic {synthetic.f1[m]:.3f}, real {real.f1[m]:.3f} "
                f"(difference {diff:+.3f}, target ±{SINGLE_TOLERANCE})",
                abs(diff) <= SINGLE_TOLERANCE,
            )
        )
    for activity in activities:
        for imu in IMUS:
            key = (activity, imu, "acc16", "std")
            ours, theirs = synthetic.motion[key], real.motion[key]
            ratio = _ratio(ours.mean, theirs.mean)
            spread = _ratio(ours.spread, theirs.spread)
            name = f"{activity_name(activity)}, {imu}"
            out.append(
                (
                    f"{name}: acc magnitude std {ours.mean:.2f} vs {theirs.mean:.2f} m/s² "
                    f"(×{ratio:.2f}, target within ×{STD_FACTOR})",
                    _within_factor(ratio, STD_FACTOR),
                )
            )
            out.append(
                (
                    f"{name}: its spread over subjects {ours.spread:.2f} vs {theirs.spread:.2f} "
                    f"(×{spread:.2f}, target within ×{SPREAD_FACTOR})",
                    _within_factor(spread, SPREAD_FACTOR),
                )
            )
    for activity in activities:
        ours, theirs = synthetic.heart_rate[activity][0].mean, real.heart_rate[activity][0].mean
        out.append(
            (
                f"{activity_name(activity)}: heart rate {ours:.1f} vs {theirs:.1f} bpm "
                f"(difference {ours - theirs:+.1f}, target ±{HR_TOLERANCE_BPM:g})",
                abs(ours - theirs) <= HR_TOLERANCE_BPM,
            )
        )
    return out


def _cell(figure: Figure, digits: int = 2) -> str:
    return f"{figure.mean:.{digits}f} ± {figure.spread:.{digits}f}"


def print_report(real: Measured, synthetic: Measured, activities: list[int]) -> None:
    print(
        "\nMotion per window (W as chunk_size), per subject then over subjects: mean ± spread "
        "across subjects; ratio = synthetic / real"
    )
    print(
        "| activity | sensor | magnitude | mean, real | synthetic | ratio | std, real | synthetic "
        "| ratio | spread ratio | dominant Hz, real | synthetic | ratio |"
    )
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for activity in activities:
        for imu in IMUS:
            for signal in SIGNALS:
                cells = []
                for stat in ("mean", "std", "dominant_hz"):
                    r = real.motion[(activity, imu, signal, stat)]
                    s = synthetic.motion[(activity, imu, signal, stat)]
                    cells += [_cell(r), _cell(s), f"{_ratio(s.mean, r.mean):.2f}"]
                    if stat == "std":
                        cells.append(f"{_ratio(s.spread, r.spread):.2f}")
                unit = "acc (m/s²)" if signal == "acc16" else "gyro (rad/s)"
                print(f"| {activity_name(activity)} | {imu} | {unit} | {' | '.join(cells)} |")
    print("\nHeart rate (bpm): mean ± spread across subjects; 5th–95th percentile of all samples")
    print("| activity | real | synthetic | difference | range, real | synthetic | width ratio |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for activity in activities:
        r, r_low, r_high = real.heart_rate[activity]
        s, s_low, s_high = synthetic.heart_rate[activity]
        print(
            f"| {activity_name(activity)} | {_cell(r, 1)} | {_cell(s, 1)} | "
            f"{s.mean - r.mean:+.1f} | {r_low:.0f}–{r_high:.0f} | {s_low:.0f}–{s_high:.0f} | "
            f"{_ratio(s_high - s_low, r_high - r_low):.2f} |"
        )
    print("\nLOSO macro F1 of the baseline forest, pooled over the test folds")
    names = [activity_name(a) for a in activities]
    print(
        "| modalities | real | synthetic | difference | per activity, real | synthetic |"
        f"  (activities: {', '.join(names)})"
    )
    print("|---|---:|---:|---:|---|---|")
    for key in real.f1:
        print(
            f"| {key} | {real.f1[key]:.3f} | {synthetic.f1[key]:.3f} | "
            f"{synthetic.f1[key] - real.f1[key]:+.3f} | "
            f"{' '.join(f'{f:.2f}' for f in real.per_class_f1[key])} | "
            f"{' '.join(f'{f:.2f}' for f in synthetic.per_class_f1[key])} |"
        )


def main() -> None:
    args = parser("The synthetic default against real recordings, on their shared activities.")
    args.add_argument("--real", type=Path, required=True, help="real recordings (holds Protocol/)")
    args.add_argument("--trees", type=int, default=None, help="forest size (default: params)")
    options = args.parse_args()
    if not (options.real / "Protocol").is_dir():
        print(f"synthetic_realism: skipped: no real recordings at {options.real} (no Protocol/)")
        return
    started = time.perf_counter()
    params = load_params(ROOT / "params.yaml")
    synthetic_params = params.data.synthetic
    trees = options.trees or params.baseline.trees
    fold_limit = None
    if options.smoke:
        synthetic_params = synthetic_params.model_copy(update={"seconds_per_activity": 15.0})
        trees, fold_limit = 20, 2
    with tempfile.TemporaryDirectory(prefix="synthetic_realism-") as tmp:
        generate(synthetic_params, synthetic_params.seed, Path(tmp), workers=usable_cores())
        sets = {
            "synthetic": load_shards(Path(tmp), params),
            "real": load_shards(options.real, params),
        }
    activities = shared_activities(sets, params.chunk_size)
    if not activities:
        raise SystemExit("synthetic_realism: the two sets share no activity with windows")
    real = measure(sets["real"], activities, params, trees, fold_limit)
    synthetic = measure(sets["synthetic"], activities, params, trees, fold_limit)
    print(f"synthetic_realism — {machine()}, {time.strftime('%Y-%m-%d')}")
    print(
        f"shared activities (a window in ≥2 subjects of each set): "
        f"{', '.join(activity_name(a) for a in activities)}"
    )
    print(
        f"protocol: windows of {params.chunk_size} steps (training stride "
        f"{params.train_stride}), channels "
        f"{'+'.join(PAMAP2.inputs(['imu_hand'], params.dataset.channel_groups).groups['imu_hand'])}"
        f" + heart rate, {params.baseline.model} with "
        f"{trees} trees, seed {params.seed}; LOSO test folds = subjects with ≥2 shared "
        "activities, each trained on all other subjects"
    )
    for name, measured in (("real", real), ("synthetic", synthetic)):
        print(f"  {name}: subjects {measured.subjects}, test folds {measured.folds}")
    print(
        f"  synthetic: data.synthetic of params.yaml (seed {synthetic_params.seed}, "
        f"{synthetic_params.seconds_per_activity:g} s per activity)"
    )
    print_report(real, synthetic, activities)
    results = targets(real, synthetic, activities)
    print("\nTargets")
    for text, met in results:
        print(f"  {'met   ' if met else 'MISSED'}  {text}")
    met = sum(ok for _, ok in results)
    print(f"{met} of {len(results)} targets met ({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
