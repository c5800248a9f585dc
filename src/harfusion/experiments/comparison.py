"""Compare the ablation experiments of this commit: `reports/comparison/` (JSON and figures).

    harfusion compare [--out reports/comparison]

Built from `dvc exp show --json` (the headline metrics) and each experiment's own outputs (scores
and missing-modality results, read through DVC) outside the per-run pipeline, so one experiment
stays one pipeline run. It works on whatever subset has finished: configurations without a
successful experiment are listed as failed, pending or not run, and their figures simply have
fewer rows. Experiments named `<config>-s<seed>` are averaged per configuration (mean ± sample
std over seeds).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from harfusion import layout
from harfusion.atomic import atomic_path
from harfusion.data.description import Description, load_description
from harfusion.experiments.ablations import Ablations, load_ablations, yaml_value
from harfusion.experiments.dvc_client import (
    BASELINE_METRICS,
    LATENCY,
    METRICS,
    MISSING_MODALITY,
    SCORES,
    SPLIT_SUMMARY,
    Baseline,
    Experiment,
    read_json,
    show,
)
from harfusion.params import SWEPT, DataParams

# Per configuration, mean ± std over seeds of these (the headline metrics, plus two scores).
HEADLINE = (
    "accuracy",
    "f1_macro",
    "f1_macro_learnable",
    "f1_weighted",
    "ece_before",
    "ece_after",
    "nll_after",
    "brier_after",
    "error_auroc",
    "missing_modality_f1",
    "latency_ms",
    "parameters",
)
FROM_SCORES = ("f1_weighted", "parameters")  # not headline metrics: from scores.json
Reader = Callable[[str, str], Any]  # (output path, experiment rev) → its JSON, or None
SUBSET_METRICS = ("accuracy", "f1_macro", "ece")


def summarize(values: list[float]) -> dict[str, Any]:
    """Mean, sample standard deviation (None for a single run) and the number of runs."""
    std = float(np.std(values, ddof=1)) if len(values) > 1 else None
    return {"mean": float(np.mean(values)), "std": std, "n": len(values)}


def baseline_score(experiment: Experiment, key: str = "f1_macro") -> float | None:
    """The forest's headline `key` in an experiment (its metrics nest it under `baseline`)."""
    value = ((experiment.metrics.get(BASELINE_METRICS) or {}).get("baseline") or {}).get(key)
    return float(value) if isinstance(value, int | float) else None


def _baseline_entry(runs: list[Experiment]) -> dict[str, Any] | None:
    """The forest's macro F1 on each run's windows and the deep model's margin over it."""
    found = [baseline_score(run) for run in runs]
    scores = [score for score in found if score is not None]
    if len(scores) < len(runs):
        return None
    deep = [run.metrics[METRICS]["f1_macro"] for run in runs]
    return {
        "model": (runs[0].params.get("baseline") or {}).get("model"),
        "f1_macro": summarize(scores),
        "margin_f1_macro": summarize([d - b for d, b in zip(deep, scores, strict=True)]),
    }


def _config_entry(
    group: str, overrides: dict[str, Any], runs: list[Experiment], read: Reader
) -> dict[str, Any]:
    metrics = []
    for run in runs:
        scores = read(SCORES, run.rev) or {}
        detail = {key: scores[key] for key in FROM_SCORES if key in scores}
        metrics.append(run.metrics[METRICS] | run.metrics.get(LATENCY, {}) | detail)
    missing = [read(MISSING_MODALITY, run.rev) or {} for run in runs]
    subsets = [s for s in missing[0] if all(s in m for m in missing)]
    return {
        "group": group,
        "overrides": overrides,
        "params": {key: runs[0].params.get(key) for key in SWEPT},
        "experiments": [run.name for run in runs],
        "revs": [run.rev for run in runs],
        "seeds": [run.params.get("seed") for run in runs],
        "metrics": {
            key: summarize([m[key] for m in metrics])
            for key in HEADLINE
            if all(isinstance(m.get(key), int | float) for m in metrics)
        },
        "baseline": _baseline_entry(runs),
        "missing_modality": {
            subset: {"modalities": missing[0][subset]["modalities"]}
            | {key: summarize([m[subset][key] for m in missing]) for key in SUBSET_METRICS}
            for subset in subsets
        },
    }


def reads_synthetic(params: dict[str, Any]) -> bool:
    """Whether the run read the synthesize stage's data: `data.raw_dir` is its folder, however
    spelt, in the params the run used (never assumed from the defaults)."""
    data = params.get("data") or {}
    raw, generated = data.get("raw_dir"), (data.get("synthetic") or {}).get("out_dir")
    return raw is not None and generated is not None and Path(raw) == Path(generated)


def dataset_of(params: dict[str, Any]) -> Description:
    """The dataset description an experiment's params name (older ones name none: the default)."""
    return load_description((params.get("data") or {}).get("dataset") or DataParams().dataset)


def protocol(params: dict[str, Any], seeds: list[Any], split: dict[str, Any] | None) -> dict:
    """What was run on what: data source, split and its subjects, training budget, seeds."""
    data = params.get("data") or {}
    synthetic = data.get("synthetic") or {}
    is_synthetic = reads_synthetic(params)
    dataset = dataset_of(params)
    return {
        "data_source": f"synthetic {dataset.name}"
        if is_synthetic
        else f"{dataset.name} recordings",
        "dataset": dataset.name,
        "sampling_rate_hz": dataset.sampling_rate_hz,
        "modality_labels": dataset.modality_labels,
        "raw_dir": data.get("raw_dir"),
        "synthetic": synthetic if is_synthetic else None,
        "split": params.get("split"),
        "subjects": (split or {}).get("subjects"),
        "split_rows": (split or {}).get("rows"),
        "seeds": sorted({seed for seed in seeds if seed is not None}),
        "train": {k: (params.get("train") or {}).get(k) for k in ("max_epochs", "patience")},
        "channel_groups": (params.get("dataset") or {}).get("channel_groups"),
        "chunk_size": params.get("chunk_size"),
    }


def _relative(path: str | None) -> str | None:
    """A path inside the repository relative to it (reports stay readable); others unchanged."""
    if path is None or not Path(path).is_absolute():
        return path
    try:
        return Path(path).relative_to(Path.cwd()).as_posix()
    except ValueError:
        return path


def build(
    ablations: Ablations,
    baseline: Baseline,
    split: dict[str, Any] | None = None,
    read: Reader = read_json,
) -> dict[str, Any]:
    """The comparison of every experiment that maps to a configuration of `ablations`; `read`
    fetches an experiment's detail outputs."""
    runs: dict[str, list[Experiment]] = {}
    failed: list[dict[str, Any]] = []
    pending: list[dict[str, Any]] = []
    tried: set[str] = set()
    order = {c.name: index for index, c in enumerate(ablations.configs)}
    for exp in baseline.experiments:
        resolved = ablations.resolve(exp.name)
        if resolved is None:
            continue
        config = resolved[0].name
        tried.add(config)
        if exp.state == "success" and METRICS in exp.metrics:
            runs.setdefault(config, []).append(exp)
        elif exp.state in ("success", "failed"):
            failed.append({"name": exp.name, "config": config, "log": _relative(exp.log)})
        else:
            pending.append({"name": exp.name, "config": config})
    configs = {
        c.name: _config_entry(
            c.group,
            c.overrides,
            sorted(runs[c.name], key=lambda e: (e.params.get("seed") or 0, e.name)),
            read,
        )
        for c in ablations.configs
        if c.name in runs
    }
    finished = [exp for c in configs for exp in runs[c]]
    params = finished[0].params if finished else baseline.params
    described = protocol(params, [e.params.get("seed") for e in finished], split)
    return {
        "baseline": {
            "rev": baseline.rev,
            "name": baseline.name,
            "params": {key: baseline.params.get(key) for key in SWEPT},
        },
        "protocol": described,
        "configs": configs,
        "groups": {
            name: {
                "title": group.title,
                "axis": group.axis,
                "configs": [c for c in group.configs if c in configs],
                "reference": group.reference if group.reference in configs else None,
                "missing_modality": group.missing_modality,
                "labels": labels(ablations, name, configs, described["modality_labels"]),
            }
            for name, group in ablations.groups.items()
        },
        "failed": sorted(failed, key=lambda f: (order[f["config"]], f["name"])),
        "pending": [
            p["name"] for p in sorted(pending, key=lambda p: (order[p["config"]], p["name"]))
        ],
        "not_run": [c.name for c in ablations.configs if c.name not in tried],
    }


def modality_label(modalities: list[str] | str, labels: dict[str, str]) -> str:
    """How reports name a `modalities` param, with the dataset's `labels` of each modality."""
    if modalities == "all" or (len(modalities) == len(labels) and set(modalities) == set(labels)):
        return f"all {len(labels)} modalities"
    return " + ".join(labels.get(m, m) for m in modalities)


def labels(
    ablations: Ablations, group: str, configs: dict[str, Any], modality_labels: dict[str, str]
) -> dict[str, str]:
    """Readable row labels: the value of the param that varies within the group."""
    defined = ablations.groups[group]
    keys = {key for overrides in defined.configs.values() for key in overrides}
    varying = [
        key
        for key in sorted(keys)
        if len({yaml_value(o.get(key)) for o in defined.configs.values()}) > 1
    ]
    names = [*defined.configs, *([defined.reference] if defined.reference else [])]
    result = {}
    for name in (n for n in names if n in configs):
        params = configs[name]["params"]
        parts = [
            modality_label(params[key], modality_labels)
            if key == "modalities"
            else f"{params.get(key)}"
            for key in varying
            if key in params
        ]
        label = ", ".join(parts) if parts else name
        result[name] = f"{label} (reference: {name})" if name == defined.reference else label
    return result


def _baseline(config: dict[str, Any]) -> dict[str, Any] | None:
    return (config.get("baseline") or {}).get("f1_macro")


def write(comparison: dict[str, Any], out_dir: Path) -> dict[str, str]:
    """Write the JSON and every figure there is data for; returns figure key → file name."""
    from harfusion.experiments.comparison_plots import (  # matplotlib: not for `--help`
        metric_panels,
        missing_modality_comparison,
        overview,
    )

    configs = comparison["configs"]
    figures: dict[str, str] = {}
    with atomic_path(out_dir) as tmp:
        tmp.mkdir()
        if configs:
            figures["overview"] = "overview.png"
            overview(
                [
                    (n, c["group"], c["metrics"]["f1_macro"], _baseline(c))
                    for n, c in configs.items()
                ],
                tmp / figures["overview"],
            )
        for name, group in comparison["groups"].items():
            members = group["configs"] + ([group["reference"]] if group["reference"] else [])
            if not group["configs"]:
                continue
            rows = [
                (group["labels"][n], configs[n]["metrics"], _baseline(configs[n])) for n in members
            ]
            figures[name] = f"{name}.png"
            metric_panels(rows, group["title"], group["axis"], tmp / figures[name])
            series = [
                (group["labels"][n], configs[n]["missing_modality"]) for n in group["configs"]
            ]
            if group["missing_modality"] and any(results for _, results in series):
                key = f"{name}_missing_modality"
                figures[key] = f"{key}.png"
                subsets = {s: r["modalities"] for _, results in series for s, r in results.items()}
                ordered = sorted(subsets, key=lambda s: -len(subsets[s]))
                missing_modality_comparison(
                    series,
                    {
                        s: modality_label(subsets[s], comparison["protocol"]["modality_labels"])
                        for s in ordered
                    },
                    f"{group['title']}: modalities removed at test time",
                    group["axis"],
                    tmp / figures[key],
                )
        comparison["figures"] = figures
        (tmp / layout.COMPARISON_JSON).write_text(json.dumps(comparison, indent=2) + "\n")
    return figures


def compare(ablations_path: Path, out: Path) -> None:
    """The comparison of this commit's ablation experiments into `out`: JSON and figures."""
    baseline = show()
    ablations = load_ablations(ablations_path, dataset_of(baseline.params).modality_names)
    first = next(
        (e for e in baseline.experiments if ablations.resolve(e.name) and METRICS in e.metrics),
        None,
    )
    split = read_json(SPLIT_SUMMARY, first.rev) if first else None
    comparison = build(ablations, baseline, split)
    for failure in comparison["failed"]:
        saved = layout.SWEEP_LOGS / f"{failure['name']}.log"  # the sweep's copy
        failure["saved_log"] = saved.as_posix() if saved.is_file() else None
    figures = write(comparison, out)
    done, failed = len(comparison["configs"]), len(comparison["failed"])
    print(
        f"comparison: {done} configurations finished, {failed} failed experiments, "
        f"{len(comparison['pending'])} pending, {len(comparison['not_run'])} not run → "
        f"{out / layout.COMPARISON_JSON} and {len(figures)} figures"
    )


def add_arguments(parse: argparse.ArgumentParser) -> None:
    parse.add_argument(
        "--ablations",
        type=Path,
        default=layout.ABLATIONS,
        help="the configurations experiments are matched to (default: %(default)s)",
    )
    parse.add_argument(
        "--out",
        type=Path,
        default=layout.COMPARISON,
        help="where the JSON and figures go (default: %(default)s)",
    )


def run(args: argparse.Namespace) -> int:
    compare(args.ablations, args.out)
    return 0
