"""Leave-one-subject-out: one DVC experiment per held-out test subject (and seed), validation on
the next subject, then pooled out-of-fold macro F1 and the mean ± std over folds.

    python -m harfusion.loso [--config fusion-hybrid] [--subjects 101,102,...] [--seeds K] [-j N]

Shard splits let one subject's other activities into training; only whole held-out subjects say
how a model does on a person it has never seen, which is what a wearable has to do.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import shlex
import sys
from pathlib import Path
from typing import Any

from sklearn.metrics import f1_score

from harfusion.ablations import Config, Run, check_runs, expand, load_ablations, parse_set
from harfusion.atomic import write_text
from harfusion.comparison import summarize
from harfusion.errors import HarfusionError
from harfusion.experiments import METRICS, Experiment, read_output
from harfusion.params import Params, load_params
from harfusion.sweep import LOG_DIR, default_jobs, queue, report_failures, start, wait

CONFUSION = "reports/eval/confusion.csv"
OUT_DIR = Path("reports/loso")
MARKDOWN = OUT_DIR / "loso.md"  # the ablation report includes it


def subjects_of(params: Params, chosen: list[int] | None) -> list[int]:
    """`--subjects`, or the synthetic set's subjects when the pipeline reads synthetic data."""
    if chosen:
        subjects = chosen
    elif params.data.raw_dir == params.data.synthetic.out_dir:
        subjects = params.data.synthetic.subjects
    else:
        raise HarfusionError("--subjects: name the subjects of your data set, e.g. 101,102,103")
    if len(set(subjects)) < 3:
        raise HarfusionError(f"--subjects: need at least 3 (train, val, test), got {subjects}")
    return sorted(set(subjects))


def folds(
    config: Config, subjects: list[int], seeds: int, extra: dict[str, Any] | None = None
) -> list[Run]:
    """One run per test subject (and seed, named as the sweep names them); the next subject in
    the list validates. The fold's split wins over `extra`."""
    fold_configs = [
        Config(
            f"loso-{config.name}-t{test}",
            config.group,
            config.overrides
            | (extra or {})
            | {
                "split.strategy": "subject",
                "split.test_subjects": [test],
                "split.val_subjects": [subjects[(index + 1) % len(subjects)]],
            },
        )
        for index, test in enumerate(subjects)
    ]
    return expand(fold_configs, seeds)


def _predictions(text: str) -> tuple[list[str], list[str]]:
    rows = list(csv.DictReader(io.StringIO(text)))
    return [row["actual"] for row in rows], [row["predicted"] for row in rows]


def summarize_folds(
    runs: list[Run], finished: dict[str, Experiment], confusion: dict[str, str]
) -> dict[str, Any]:
    """Per fold its metrics; pooled macro F1 per seed over all folds' test windows; mean ± std."""
    rows, pooled_by_seed = [], {}
    for run in runs:
        experiment = finished.get(run.name)
        if experiment is None or experiment.state != "success" or run.name not in confusion:
            continue
        metrics = experiment.metrics[METRICS]
        actual, predicted = _predictions(confusion[run.name])
        seed = run.overrides.get("seed", experiment.params.get("seed"))
        pooled = pooled_by_seed.setdefault(seed, ([], []))
        pooled[0].extend(actual)
        pooled[1].extend(predicted)
        rows.append(
            {
                "experiment": run.name,
                "test_subject": run.overrides["split.test_subjects"][0],
                "val_subject": run.overrides["split.val_subjects"][0],
                "seed": seed,
                "windows": len(actual),
                "accuracy": metrics["accuracy"],
                "f1_macro": metrics["f1_macro"],
            }
        )
    if not rows:
        raise HarfusionError("no LOSO fold finished; nothing to summarize")
    summarized = {row["experiment"] for row in rows}
    pooled_f1 = {
        seed: float(f1_score(actual, predicted, average="macro", zero_division=0))
        for seed, (actual, predicted) in pooled_by_seed.items()
    }
    return {
        "folds": rows,
        "pooled_f1_macro": summarize(list(pooled_f1.values())),
        "pooled_f1_macro_by_seed": {str(seed): value for seed, value in pooled_f1.items()},
        "fold_f1_macro": summarize([row["f1_macro"] for row in rows]),
        "fold_accuracy": summarize([row["accuracy"] for row in rows]),
        "missing": [run.name for run in runs if run.name not in summarized],
    }


def _mean_std(entry: dict[str, Any]) -> str:
    std = f" ± {entry['std']:.3f}" if entry["std"] is not None else ""
    return f"{entry['mean']:.3f}{std} (n={entry['n']})"


def markdown(summary: dict[str, Any], config: Config, params: Params, seeds: int) -> str:
    data = params.data
    source = (
        f"synthetic PAMAP2 (generator seed {data.synthetic.seed}, "
        f"{data.synthetic.seconds_per_activity:g} s per activity and subject)"
        if data.raw_dir == data.synthetic.out_dir
        else f"`{data.raw_dir}`"
    )
    subjects = sorted({row["test_subject"] for row in summary["folds"]})
    lines = [
        f"# Leave-one-subject-out: {config.name}",
        "",
        f"- **Data source:** {source}",
        "- **Split:** `subject`: each fold tests one subject and validates on the next in the "
        "list; all other subjects train",
        f"- **Subjects:** {', '.join(map(str, subjects))}",
        f"- **Seeds:** {seeds} per fold; overrides {json.dumps(config.overrides)}",
        "",
        f"- **Pooled out-of-fold macro F1:** {_mean_std(summary['pooled_f1_macro'])} "
        "(all folds' test windows scored at once; mean ± std over seeds)",
        f"- **Macro F1 per fold:** {_mean_std(summary['fold_f1_macro'])}",
        "",
        "| test subject | val subject | seed | windows | accuracy | macro F1 |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r['test_subject']} | {r['val_subject']} | {r['seed']} | {r['windows']} "
        f"| {r['accuracy']:.3f} | {r['f1_macro']:.3f} |"
        for r in summary["folds"]
    ]
    if summary["missing"]:
        lines += ["", f"Not finished: {', '.join(summary['missing'])}"]
    return "\n".join(lines) + "\n"


def parser() -> argparse.ArgumentParser:
    parse = argparse.ArgumentParser(
        prog="python -m harfusion.loso",
        description="Leave-one-subject-out through DVC's experiment queue.",
    )
    parse.add_argument(
        "--config", help="an ablations.yaml configuration (default: params.yaml as it is)"
    )
    parse.add_argument("--subjects", help="comma-separated subject ids (default: synthetic set's)")
    parse.add_argument("--seeds", type=int, default=1, help="seeds 1..K per fold")
    parse.add_argument("-j", "--jobs", type=int, help="queue workers (default: one per core)")
    parse.add_argument("-S", "--set", action="append", default=[], metavar="KEY=VALUE")
    parse.add_argument("--ablations", type=Path, default=Path("ablations.yaml"))
    parse.add_argument("--params", type=Path, default=Path("params.yaml"))
    parse.add_argument("--poll", type=float, default=10.0)
    parse.add_argument("--out", type=Path, default=OUT_DIR)
    parse.add_argument("--dry-run", action="store_true", help="print the DVC commands only")
    parse.add_argument("--wait-only", action="store_true", help="queue nothing; wait and report")
    return parse


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        params = load_params(args.params)
        config = Config("base", "loso", {})
        if args.config:
            config = load_ablations(args.ablations).config(args.config) or config
            if config.name != args.config:
                raise HarfusionError(f"--config: no configuration {args.config!r} in ablations")
        chosen = [int(s) for s in args.subjects.split(",")] if args.subjects else None
        runs = folds(config, subjects_of(params, chosen), args.seeds, parse_set(args.set))
        check_runs(runs, args.params)
        jobs = args.jobs if args.jobs is not None else default_jobs(len(runs))
        if args.dry_run:
            for run in runs:
                print(shlex.join(["dvc", "exp", "run", "--queue", "-n", run.name, *run.set_args()]))
            return 0
        if not args.wait_only:
            queue(runs)
            start(jobs)
        names = [run.name for run in runs]
        finished = wait(names, args.poll)
        failures = report_failures(names, finished, LOG_DIR)
        confusion = {
            name: text
            for name, exp in finished.items()
            if exp.state == "success" and (text := read_output(CONFUSION, exp.rev)) is not None
        }
        summary = summarize_folds(runs, finished, confusion)
        text = markdown(summary, config, params, args.seeds)
        write_text(args.out / "loso.json", json.dumps(summary, indent=2) + "\n")
        write_text(args.out / MARKDOWN.name, text)
        print(text)
        return 1 if failures else 0
    except HarfusionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
