"""LOSO's summary as files: `loso.json` (every score), `loso.md` (the tables the ablation report
includes) and its two figures, macro F1 per fold and reliability per fold."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harfusion import layout
from harfusion.atomic import atomic_path, write_text
from harfusion.data.description import load_description
from harfusion.experiments.ablations import Config
from harfusion.experiments.comparison import reads_synthetic
from harfusion.params import Params


def join(values: list[Any]) -> str:
    return ", ".join(map(str, values))


def _mean_std(entry: dict[str, Any] | None) -> str:
    if entry is None:
        return "–"
    std = f" ± {entry['std']:.3f}" if entry["std"] is not None else ""
    return f"{entry['mean']:.3f}{std} (n={entry['n']})"


def _score(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def data_source(params: Params) -> str:
    data = params.data
    name = load_description(data.dataset).name
    if reads_synthetic(params.model_dump()):
        return (
            f"synthetic {name} (generator seed {data.synthetic.seed}, "
            f"{data.synthetic.seconds_per_activity:g} s per activity and subject)"
        )
    return f"{name} recordings in `{data.raw_dir}`"


def _overrides(overrides: dict[str, Any]) -> str:
    return ", ".join(f"`{key}={json.dumps(value)}`" for key, value in overrides.items()) or "none"


def markdown(
    summary: dict[str, Any], config: Config, params: Params, overrides: dict[str, Any]
) -> str:
    """`params`: as the folds' experiments ran them; `overrides`: the configuration's and `-S`'s
    (the fold's split aside)."""
    subjects = sorted({row["test_subject"] for row in summary["folds"]})
    seeds = sorted({row["seed"] for row in summary["folds"]})
    pooled = summary["pooled"]
    deep, baseline = pooled.get("deep"), pooled.get("baseline")
    learnable = summary["learnable_classes"]
    lines = [
        f"# Leave-one-subject-out: {config.name}",
        "",
        f"- **Data source:** {data_source(params)}",
        "- **Split:** `subject`: each fold tests one subject and validates on the next in the "
        "list; all other subjects train",
        f"- **Test subjects:** {join(subjects)}",
        f"- **Seeds:** {join(seeds)} (each fold once per seed); **overrides:** "
        f"{_overrides(overrides)}",
        f"- **Window:** {params.chunk_size} steps; fusion {params.fusion}; modalities "
        f"{join(list(load_description(params.data.dataset).select(params.modalities)))}",
        "",
        "| pooled out-of-fold macro F1 (mean ± std over seeds) | deep model | baseline "
        f"({params.baseline.model}) |",
        "|---|---:|---:|",
        f"| all classes | {_mean_std(deep and deep['f1_macro'])} "
        f"| {_mean_std(baseline and baseline['f1_macro'])} |",
        f"| learnable classes ({join(learnable) or 'none'}) "
        f"| {_mean_std(deep and deep['f1_macro_learnable'])} "
        f"| {_mean_std(baseline and baseline['f1_macro_learnable'])} |",
        f"| per fold | {_mean_std(summary['fold_f1_macro'])} "
        f"| {_mean_std(summary['fold_baseline_f1_macro'])} |",
        f"| worst fold | {_score(summary['worst_fold_f1_macro'])} "
        f"| {_score(summary['worst_fold_baseline_f1_macro'])} |",
        f"| per fold, learnable classes | {_mean_std(summary['fold_f1_macro_learnable'])} "
        f"| {_mean_std(summary['fold_baseline_f1_macro_learnable'])} |",
        f"| worst fold, learnable classes | {_score(summary['worst_fold_f1_macro_learnable'])} "
        f"| {_score(summary['worst_fold_baseline_f1_macro_learnable'])} |",
        "",
    ]
    lines += [f"![Macro F1 per fold, both models]({layout.LOSO_FOLDS_PLOT})", ""]
    if summary["excluded_classes"]:
        lines.append("Excluded from the learnable-class score (still in the all-class score):")
        lines += [f"- **{e['class']}**: {e['why']}" for e in summary["excluded_classes"]]
        lines.append("")
    classes = sorted(
        set(deep["per_class_f1"] if deep else {})
        | set(baseline["per_class_f1"] if baseline else {})
    )
    lines += [
        "| class | learnable | pooled F1, deep | pooled F1, baseline |",
        "|---|---|---:|---:|",
    ]
    lines += [
        f"| {c} | {'yes' if c in learnable else 'no'} "
        f"| {_mean_std(deep and deep['per_class_f1'].get(c))} "
        f"| {_mean_std(baseline and baseline['per_class_f1'].get(c))} |"
        for c in classes
    ]
    lines += [
        "",
        "| test subject | val subject | seed | windows | accuracy | macro F1 | baseline macro F1 "
        "| margin |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r['test_subject']} | {r['val_subject']} | {r['seed']} | {r.get('windows', '–')} "
        f"| {r['accuracy']:.3f} | {r['f1_macro']:.3f} | {_score(r['baseline_f1_macro'])} "
        f"| {_margin(r['f1_macro'], r['baseline_f1_macro'])} |"
        for r in summary["folds"]
    ]
    if summary["missing"]:
        lines += ["", f"Not finished: {', '.join(summary['missing'])}"]
    if summary.get("calibration"):
        lines += ["", *calibration_markdown(summary)]
    return "\n".join(lines) + "\n"


def _interval(entry: dict[str, Any], sign: str = "") -> str:
    value = f"{entry['value']:{sign}.3f}"
    if entry["ci95"] is None:
        return value
    low, high = entry["ci95"]
    return f"{value} [{low:{sign}.3f}, {high:{sign}.3f}]"


def calibration_markdown(summary: dict[str, Any]) -> list[str]:
    """Pooled out-of-fold calibration with its intervals, then per fold with the mean."""
    calibration = summary["calibration"]
    pooled = calibration["pooled"]
    names = {"ece": "ECE", "nll": "NLL", "brier": "Brier"}
    lines = [
        "## Calibration across people",
        "",
        f"Test windows' ECE ({calibration['bins']} bins), NLL and Brier score before and after "
        "each fold's calibration (its model file's temperature, fitted by training on the "
        "validation subject). Pooled: every fold's test windows at once per seed, the mean "
        f"over seeds ({join(pooled['seeds'])}); 95% intervals from {pooled['bootstrap']} "
        "bootstrap resamples of the windows within each fold.",
        "",
        "| pooled out-of-fold | before | after | change |",
        "|---|---:|---:|---:|",
    ]
    lines += [
        f"| {label} | {_interval(pooled[f'{key}_before'])} | {_interval(pooled[f'{key}_after'])} "
        f"| {_interval(pooled[f'{key}_change'], '+')} |"
        for key, label in names.items()
    ]
    lower = calibration["folds_lower_after"]
    lines += [
        "",
        f"Lower after calibration, per fold (mean over seeds): ECE in {lower['ece']} of "
        f"{calibration['folds']} folds, NLL in {lower['nll']}, Brier in {lower['brier']}.",
        "",
        "| test subject | val subject | seed | windows | of untrained classes | temperature "
        "| ECE before | ECE after | NLL before | NLL after | Brier before | Brier after |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    keys = [f"{m}_{when}" for m in names for when in ("before", "after")]
    for row in summary["folds"]:
        if "ece_before" in row:
            lines.append(
                f"| {row['test_subject']} | {row['val_subject']} | {row['seed']} "
                f"| {row.get('windows', '–')} | {row.get('untrained_windows', '–')} "
                f"| {row['temperature']:.3f} | "
                + " | ".join(f"{row[key]:.3f}" for key in keys)
                + " |"
            )
    mean = calibration["fold_mean"]
    lines += [
        "| **mean** | | | | | | " + " | ".join(f"**{mean[key]:.3f}**" for key in keys) + " |",
        "",
        f"![Reliability per fold, before and after calibration]({layout.LOSO_CALIBRATION_PLOT})",
        "",
    ]
    return lines


def _margin(deep: float, baseline: float | None) -> str:
    return "–" if baseline is None else f"{deep - baseline:+.3f}"


def write(out: Path, summary: dict[str, Any], title: str, text: str) -> None:
    """`loso.json`, the figures, then `loso.md` (`text`), each whole or not at all."""
    write_text(out / layout.LOSO_JSON, json.dumps(summary, indent=2) + "\n")
    from harfusion.experiments.comparison_plots import loso_folds  # matplotlib

    with atomic_path(out / layout.LOSO_FOLDS_PLOT) as tmp:
        loso_folds(summary["folds"], title, tmp)
    if summary["calibration"]:
        from harfusion.experiments.comparison_plots import loso_reliability

        with atomic_path(out / layout.LOSO_CALIBRATION_PLOT) as tmp:
            loso_reliability(summary, title, tmp)
    write_text(out / layout.LOSO_MARKDOWN, text)
