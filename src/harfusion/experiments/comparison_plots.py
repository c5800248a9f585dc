"""Cross-experiment figures for `reports/comparison/`: one configuration per row, error bars for
the spread over seeds when more than one seed ran."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

Summary = dict[str, Any]  # {"mean": float, "std": float | None, "n": int}
# a label, metric name → summary, and the forest baseline's macro F1 on the same windows
Row = tuple[str, dict[str, Summary], Summary | None]
BASELINE_LABEL = "forest baseline"

PANELS = (
    ("accuracy", "Accuracy", "fraction of test windows correct"),
    ("f1_macro", "Macro F1", "macro F1 over activities (0–1)"),
    # each run's own bins (its `evaluate.ece_bins`): runs compared may have set another count
    ("ece", "Calibration error (lower is better)", "ECE, evaluate.ece_bins bins (0–1)"),
    ("latency_ms", "Inference latency (lower is better)", "ms per window, batch size 1"),
)
ECE_BARS = (
    ("ece_before", "before temperature scaling"),
    ("ece_after", "after temperature scaling"),
)


def _save(figure: Figure, path: Path) -> None:
    figure.savefig(path, dpi=110, bbox_inches="tight", format="png")  # a temporary's name too
    plt.close(figure)


def _values(summaries: list[Summary]) -> tuple[np.ndarray, np.ndarray]:
    means = np.array([s["mean"] for s in summaries], dtype=float)
    stds = np.array([s["std"] or 0.0 for s in summaries], dtype=float)
    return means, stds


def _bars(axis: Axes, y: np.ndarray, summaries: list[Summary], height: float, **style: Any) -> None:
    means, stds = _values(summaries)
    axis.barh(y, means, height=height, xerr=stds if stds.any() else None, capsize=3, **style)
    for row, (mean, std) in enumerate(zip(means, stds, strict=True)):
        text = f"{mean:.3f}" + (f" ± {std:.3f}" if std else "")
        axis.text(mean + std, y[row], f" {text}", va="center", fontsize=8)


def _baseline_marks(axis: Axes, y: np.ndarray, baselines: list[Summary | None]) -> Any | None:
    """The forest's macro F1 as a diamond on each row that has one; the legend handle."""
    rows = [(row, b["mean"]) for row, b in zip(y, baselines, strict=True) if b is not None]
    if not rows:
        return None
    return axis.scatter(
        [m for _, m in rows],
        [r for r, _ in rows],
        marker="D",
        color="black",
        zorder=3,
        label=BASELINE_LABEL,
    )


def metric_panels(rows: list[Row], title: str, axis_label: str, path: Path) -> None:
    """Accuracy, macro F1 (with the baseline's), ECE before/after temperature scaling and
    latency, 2 × 2."""
    y = np.arange(len(rows))
    figure, axes = plt.subplots(
        2, 2, figsize=(13, 3.2 + 0.9 * len(rows)), sharey=True, layout="constrained"
    )
    for axis, (key, panel_title, unit) in zip(axes.flat, PANELS, strict=True):
        if key == "ece":
            for offset, (metric, label) in zip((-0.2, 0.2), ECE_BARS, strict=True):
                _bars(axis, y + offset, [r[1][metric] for r in rows], 0.38, label=label)
            top = max(r[1][m]["mean"] + (r[1][m]["std"] or 0) for r in rows for m, _ in ECE_BARS)
        else:
            _bars(axis, y, [r[1][key] for r in rows], 0.6, color="tab:blue")
            top = max(r[1][key]["mean"] + (r[1][key]["std"] or 0) for r in rows)
        if key == "f1_macro" and _baseline_marks(axis, y, [r[2] for r in rows]):
            axis.legend(loc="lower right")
        if key in ("accuracy", "f1_macro"):
            axis.set(xlim=(0, 1.25), xticks=np.linspace(0, 1, 6))
        else:
            axis.set(xlim=(0, 1.4 * top or 1.0))
        axis.set(title=panel_title, xlabel=unit)
        axis.grid(axis="x", alpha=0.3)
    for axis in axes[:, 0]:
        axis.set_yticks(y, [label for label, *_ in rows])
    axes[0, 0].invert_yaxis()
    figure.supylabel(axis_label)
    figure.legend(
        *axes[1, 0].get_legend_handles_labels(), title="ECE", loc="outside lower center", ncols=2
    )
    figure.suptitle(f"{title}\ntest split; mean ± std over seeds where several ran")
    _save(figure, path)


def overview(rows: list[tuple[str, str, Summary, Summary | None]], path: Path) -> None:
    """Macro F1 of every finished configuration, coloured by group, beside its baseline's."""
    groups = list(dict.fromkeys(group for _, group, *_ in rows))
    colours = {group: plt.get_cmap("tab10")(i) for i, group in enumerate(groups)}
    y = np.arange(len(rows))
    figure, axis = plt.subplots(figsize=(10, 1.6 + 0.4 * len(rows)))
    means, stds = _values([summary for _, _, summary, _ in rows])
    axis.barh(
        y,
        means,
        xerr=stds if stds.any() else None,
        capsize=3,
        color=[colours[group] for _, group, _, _ in rows],
    )
    for row, (mean, std) in enumerate(zip(means, stds, strict=True)):
        axis.text(mean + std, row, f" {mean:.3f}" + (f" ± {std:.3f}" if std else ""), va="center")
    axis.set_yticks(y, [name for name, _, _, _ in rows])
    axis.invert_yaxis()
    axis.set(
        xlim=(0, 1.15),
        xlabel="test macro F1 (0–1)",
        ylabel="configuration (experiment name)",
        title="All finished configurations: test macro F1",
    )
    handles: list[Any] = [plt.Rectangle((0, 0), 1, 1, color=colours[group]) for group in groups]
    names = list(groups)
    if marks := _baseline_marks(axis, y, [baseline for *_, baseline in rows]):
        handles.append(marks)
        names.append(BASELINE_LABEL)
    axis.legend(handles, names, title="group", loc="lower right")
    axis.grid(axis="x", alpha=0.3)
    _save(figure, path)


def missing_modality_comparison(
    series: list[tuple[str, dict[str, Any]]],
    subset_labels: dict[str, str],
    title: str,
    legend_title: str,
    path: Path,
) -> None:
    """Macro F1 and ECE per subset of modalities present at test time, one bar per configuration."""
    subsets = list(subset_labels)
    y = np.arange(len(subsets))
    height = 0.8 / len(series)
    figure, axes = plt.subplots(
        1, 2, figsize=(14, 2.0 + 0.5 * len(subsets)), sharey=True, layout="constrained"
    )
    panels = (("f1_macro", "test macro F1 (0–1)"), ("ece", "ECE after temperature scaling (0–1)"))
    for axis, (key, unit) in zip(axes, panels, strict=True):
        for index, (label, results) in enumerate(series):
            offset = (index - (len(series) - 1) / 2) * height
            present = [s for s in subsets if s in results]
            rows = np.array([subsets.index(s) for s in present], dtype=float) + offset
            means, stds = _values([results[s][key] for s in present])
            axis.barh(
                rows, means, height=height * 0.95, xerr=stds if stds.any() else None, label=label
            )
        axis.set(xlabel=unit, xlim=(0, 1.0 if key == "f1_macro" else None))
        axis.grid(axis="x", alpha=0.3)
    axes[0].set(title="Macro F1 (higher is better)", ylabel="modalities present at test time")
    axes[1].set(title="Calibration error (lower is better)")
    axes[0].set_yticks(y, [subset_labels[s] for s in subsets])
    axes[0].invert_yaxis()
    figure.legend(
        *axes[0].get_legend_handles_labels(),
        title=legend_title,
        loc="outside lower center",
        ncols=len(series),
    )
    figure.suptitle(title)
    _save(figure, path)


def loso_folds(folds: list[dict[str, Any]], title: str, path: Path) -> None:
    """Leave-one-subject-out, one row per fold (and seed): the deep model's and the baseline's
    macro F1 over all classes and over the learnable ones, side by side."""
    labels = [
        f"test {f['test_subject']} (val {f['val_subject']})"
        + (f", seed {f['seed']}" if len({g["seed"] for g in folds}) > 1 else "")
        for f in folds
    ]
    y = np.arange(len(folds))
    figure, axes = plt.subplots(
        1, 2, figsize=(13, 2.0 + 0.45 * len(folds)), sharey=True, layout="constrained"
    )
    panels = (("f1_macro", "all classes"), ("f1_macro_learnable", "learnable classes"))
    for axis, (key, subtitle) in zip(axes, panels, strict=True):
        for offset, (prefix, label, colour) in zip(
            (-0.2, 0.2),
            (("", "deep model", "tab:blue"), ("baseline_", BASELINE_LABEL, "dimgrey")),
            strict=True,
        ):
            values = [f.get(prefix + key) for f in folds]
            shown = [(row, v) for row, v in zip(y, values, strict=True) if v is not None]
            axis.barh(
                [row + offset for row, _ in shown],
                [v for _, v in shown],
                height=0.38,
                color=colour,
                label=label,
            )
            for row, value in shown:
                axis.text(value, row + offset, f" {value:.2f}", va="center", fontsize=7)
        axis.set(xlim=(0, 1.12), xlabel="test macro F1 (0–1)", title=f"Macro F1, {subtitle}")
        axis.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(y, labels)
    axes[0].invert_yaxis()
    axes[0].legend(loc="lower right")
    figure.suptitle(f"{title}: each fold's held-out subject")
    _save(figure, path)


def loso_reliability(summary: dict[str, Any], title: str, path: Path) -> None:
    """Leave-one-subject-out calibration: one reliability diagram per fold (every seed's test
    windows together) and one over all folds, before and after calibration, with ECE (the
    mean over seeds per fold; the pooled value over all folds) and the windows drawn (every
    seed's) in each panel's title."""
    calibration = summary["calibration"]
    reliability = calibration["reliability"]
    rows: dict[str, list[dict[str, Any]]] = {}
    for row in summary["folds"]:
        if "ece_before" in row:
            rows.setdefault(str(row["test_subject"]), []).append(row)
    panels = [*rows, *(key for key in reliability if key not in rows)]
    columns = min(len(panels), 4)
    lines = -(-len(panels) // columns)
    figure, axes = plt.subplots(
        lines, columns, figsize=(3.4 * columns, 3.4 * lines), squeeze=False, layout="constrained"
    )
    pooled = calibration["pooled"]
    for axis, key in zip(axes.flat, panels, strict=False):
        if key in rows:
            before = np.mean([r["ece_before"] for r in rows[key]])
            after = np.mean([r["ece_after"] for r in rows[key]])
            name = f"test {key} (val {rows[key][0]['val_subject']})"
        else:
            before, after = pooled["ece_before"]["value"], pooled["ece_after"]["value"]
            name = key
        for when, colour, marker in (("before", "grey", "s"), ("after", "tab:blue", "o")):
            bins = reliability[key][when]
            shown = np.array(bins["count"]) > 0
            axis.plot(
                np.array(bins["confidence"])[shown],
                np.array(bins["accuracy"])[shown],
                marker=marker,
                color=colour,
                linewidth=1,
                markersize=4,
                label=f"{when} calibration",
            )
        axis.plot([0, 1], [0, 1], "--", color="black", linewidth=0.8)
        windows = sum(reliability[key]["before"]["count"])
        title = f"{name}\nECE {before:.3f} → {after:.3f}, {windows} windows"
        axis.set(xlim=(0, 1), ylim=(0, 1), title=title)
        axis.title.set_fontsize(9)
        axis.grid(alpha=0.3)
    for axis in axes.flat[len(panels) :]:
        axis.set_visible(False)
    for axis in axes[:, 0]:
        axis.set_ylabel("accuracy in bin")
    for axis in axes[-1, :]:
        axis.set_xlabel("mean confidence in bin")
    axes.flat[0].legend(loc="upper left", fontsize=7)
    figure.suptitle(f"{title}: reliability of the test windows per fold")
    _save(figure, path)
