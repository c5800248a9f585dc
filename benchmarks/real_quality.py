"""Real-data quality: leave-one-subject-out on real PAMAP2 recordings, every fusion beside the
forest baseline on the same windows, folds and classes.

    uv run python benchmarks/real_quality.py --raw-dir ../shared/pamap2_dev [--seeds 3] [-j 2]
        [--ensemble K] [--fusions early,late,hybrid]

Runs the project's own LOSO command (`harfusion loso`, through DVC's experiment queue)
in a fresh clone of this commit, once per fusion. Test folds are the subjects with at least two
activities long enough for a window; the others (in pamap2_dev, subject 109) always train. The
baseline runs inside the same experiments (the `baseline` stage), so no second queue.

Prints one table: pooled out-of-fold macro F1 over all classes and over the learnable ones
(mean ± std over seeds), per-fold macro F1 mean ± std, the worst fold, the deep model's pooled
learnable-class F1 as a ratio to the baseline's, and its pooled out-of-fold ECE and NLL before
and after calibration (95% bootstrap interval of the after). `--ensemble K`: members per model
(default: params.yaml's). `--smoke`: 2 folds, 1 seed, 1 epoch, one member.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from _common import ROOT, fresh_clone, parser, uv

from harfusion.experiments.loso.plan import activities_by_subject
from harfusion.params import load_params

FUSIONS = ("early", "late", "hybrid")


def test_subjects(raw_dir: Path, chunk_size: int) -> tuple[list[int], list[int]]:
    """(subjects to test in turn, subjects that only ever train)."""
    params = load_params(ROOT / "params.yaml")
    data = params.data.model_copy(update={"raw_dir": str(raw_dir)})
    rows = activities_by_subject(params.model_copy(update={"data": data})) or {}
    tested = [s for s, acts in rows.items() if sum(n >= chunk_size for n in acts.values()) >= 2]
    return tested, [s for s in rows if s not in tested]


def fmt(entry: dict | None) -> str:
    if not entry:
        return "–"
    std = f" ± {entry['std']:.3f}" if entry.get("std") is not None else ""
    return f"{entry['mean']:.3f}{std}"


def calibration_cells(summary: dict | None) -> str:
    """Pooled ECE and NLL before → after (the after's interval) and the folds ECE fell in; three
    dashes for the forest or folds without predictions."""
    calibration = (summary or {}).get("calibration")
    if not calibration:
        return "– | – | –"
    pooled = calibration["pooled"]

    def change(metric: str) -> str:
        after = pooled[f"{metric}_after"]
        interval = after["ci95"]
        bounds = f" [{interval[0]:.3f}, {interval[1]:.3f}]" if interval else ""
        return f"{pooled[f'{metric}_before']['value']:.3f} → {after['value']:.3f}{bounds}"

    lower = f"{calibration['folds_lower_after']['ece']} of {calibration['folds']}"
    return f"{change('ece')} | {change('nll')} | {lower}"


def main() -> None:
    args = parser("LOSO on real PAMAP2: every fusion against the forest baseline.")
    args.add_argument("--raw-dir", type=Path, required=True, help="folder holding Protocol/")
    args.add_argument("--seeds", type=int, default=3)
    args.add_argument("--fusions", default=",".join(FUSIONS))
    args.add_argument("-j", "--jobs", type=int, default=None, help="queue workers")
    args.add_argument(
        "--ensemble", type=int, default=None, help="members per model (default: params.yaml's)"
    )
    args.add_argument(
        "-S",
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override for every experiment, e.g. to try a recipe before making it the default",
    )
    options = args.parse_args()
    if not options.raw_dir.is_dir():
        print(f"real_quality: skipped: {options.raw_dir} does not exist (real PAMAP2 recordings)")
        return
    raw_dir = options.raw_dir.resolve()
    defaults = load_params(ROOT / "params.yaml")
    tested, train_only = test_subjects(raw_dir, defaults.chunk_size)
    seeds, folds, members = options.seeds, None, options.ensemble or defaults.train.ensemble
    extra = [arg for item in options.set for arg in ("-S", item)]
    if options.smoke:
        seeds, folds, members = 1, 2, options.ensemble or 1
        extra += ["-S", "train.max_epochs=1", "-S", "evaluate.mc_samples=2"]
    extra += ["--ensemble", str(members)]
    print(
        f"real_quality: {raw_dir}: test folds {tested}, always training {train_only}, "
        f"{seeds} seed(s), {members} member(s) per model, fusions {options.fusions}, "
        f"overrides {options.set or 'none'}"
    )
    clone = fresh_clone(options.work / "real_quality" / "repo", {})
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "UV_PROJECT"))}
    results = {}
    for fusion in options.fusions.split(","):
        out = clone / "reports" / "loso" / fusion
        command = [uv(), "run", "harfusion", "loso", "--config", f"fusion-{fusion}"]
        command += ["--subjects", ",".join(map(str, tested)), "--seeds", str(seeds)]
        command += ["-S", f"data.raw_dir={raw_dir}", *extra, "--out", str(out)]
        command += ["--folds", str(folds)] if folds else []
        command += ["-j", str(options.jobs)] if options.jobs else []
        started = time.perf_counter()
        result = subprocess.run(command, cwd=clone, env=env)
        if result.returncode != 0:
            raise SystemExit(f"real_quality: LOSO for {fusion} failed (exit {result.returncode})")
        print(f"real_quality: {fusion}: {time.perf_counter() - started:.0f} s", flush=True)
        results[f"{fusion}, {members} member{'s' if members > 1 else ''}"] = json.loads(
            (out / "loso.json").read_text()
        )
    print_table(results)


def print_table(results: dict[str, dict]) -> None:
    """Deep rows then the baseline's (from the first fusion's experiments: every fusion's folds
    hold the same windows, and the baseline's params do not include the fusion)."""
    lines = [
        "| model | pooled macro F1, all classes | pooled, learnable | per fold, learnable "
        "| worst fold, learnable | per fold, all classes | ratio to baseline (pooled, learnable) "
        "| pooled ECE, before → after [95% CI] | pooled NLL, before → after [95% CI] "
        "| folds with lower ECE after |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    rows = [(fusion, summary["pooled"]["deep"], "", summary) for fusion, summary in results.items()]
    first = next(iter(results.values()), None)
    if first and "baseline" in first["pooled"]:
        rows.append(("baseline (forest)", first["pooled"]["baseline"], "baseline_", first))
    reference = rows[-1][1] if first and "baseline" in first["pooled"] else None
    for name, pooled, key, summary in rows:
        ratio = "–"
        if reference and pooled["f1_macro_learnable"] and reference["f1_macro_learnable"]:
            ours, theirs = pooled["f1_macro_learnable"], reference["f1_macro_learnable"]
            ratio = f"{ours['mean'] / theirs['mean']:.3f}"
        worst = summary[f"worst_fold_{key}f1_macro_learnable"]
        lines.append(
            f"| {name} | {fmt(pooled['f1_macro'])} | {fmt(pooled['f1_macro_learnable'])} "
            f"| {fmt(summary[f'fold_{key}f1_macro_learnable'])} "
            f"| {'–' if worst is None else f'{worst:.3f}'} | {fmt(summary[f'fold_{key}f1_macro'])} "
            f"| {ratio} | {calibration_cells(summary if not key else None)} |"
        )
    print("\n".join(lines))
    for entry in first["excluded_classes"] if first else []:
        print(f"excluded from 'learnable': {entry['class']}: {entry['why']}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
