"""Figures a reader looks at instead of JSON: rendered offline with matplotlib."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure


def _save(figure: Figure, path: Path) -> None:
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def reliability_diagram(reliability: dict, temperature: float, path: Path) -> None:
    """Accuracy vs confidence per bin, before and after temperature scaling, with bin counts."""
    figure, axes = plt.subplots(2, 2, figsize=(10, 7), height_ratios=[3, 1], sharex=True)
    for column, (key, title) in enumerate(
        (
            ("before", "before temperature scaling"),
            ("after", f"after scaling (T = {temperature:.2f})"),
        )
    ):
        bins = reliability[key]
        width = bins["lower"][1] - bins["lower"][0]
        centres = np.array(bins["lower"]) + width / 2
        counts = np.array(bins["count"])
        shown = counts > 0
        top, bottom = axes[0, column], axes[1, column]
        top.bar(
            centres[shown],
            np.array(bins["accuracy"])[shown],
            width=width * 0.9,
            color="tab:blue",
            edgecolor="black",
            label="accuracy in bin",
        )
        top.plot(
            centres[shown],
            np.array(bins["confidence"])[shown],
            "o",
            color="tab:red",
            label="mean confidence in bin",
        )
        top.plot([0, 1], [0, 1], "--", color="grey", label="perfect calibration")
        top.set(title=f"Reliability {title}", ylabel="accuracy", ylim=(0, 1), xlim=(0, 1))
        top.legend(loc="upper left", fontsize=8)
        bottom.bar(centres, counts, width=width * 0.9, color="grey")
        bottom.set(xlabel="confidence (top-class probability)", ylabel="test windows")
    _save(figure, path)


def _heatmap(axis, values: np.ndarray, rows: list[str], columns: list[str], title: str, label: str):
    image = axis.imshow(
        values, cmap="viridis", vmin=0, vmax=max(1e-9, float(np.nanmax(values))), aspect="auto"
    )
    axis.set_xticks(range(len(columns)), columns, rotation=30, ha="right")
    axis.set_yticks(range(len(rows)), rows)
    axis.set_title(title)
    for (i, j), value in np.ndenumerate(values):
        if not np.isnan(value):
            axis.text(
                j,
                i,
                f"{value:.2f}",
                ha="center",
                va="center",
                fontsize=7,
                color="white" if value < 0.6 * np.nanmax(values) else "black",
            )
    axis.figure.colorbar(image, ax=axis, label=label)


def attention_figure(
    modalities: list[str],
    modality_labels: Mapping[str, str],
    class_names: list[str],
    attention: np.ndarray | None,
    per_class: np.ndarray,
    fusion: str,
    path: Path,
) -> None:
    """Hybrid: mean cross-modal attention and per-activity modality weights. Otherwise: why there
    is no attention, and each modality's own confidence per activity instead."""
    labels = [modality_labels.get(m, m) for m in modalities]
    if attention is not None:
        figure, axes = plt.subplots(1, 2, figsize=(13, max(5, 0.35 * len(class_names) + 2)))
        _heatmap(
            axes[0],
            attention,
            labels,
            labels,
            "Mean cross-modal attention (test set)\nrow = query modality, column = key",
            "attention weight",
        )
        _heatmap(
            axes[1],
            per_class,
            class_names,
            labels,
            "Learned modality weight per activity\n(mean over test windows)",
            "modality weight",
        )
        axes[0].set(xlabel="attended modality (key)", ylabel="attending modality (query)")
        axes[1].set(xlabel="modality", ylabel="true activity")
    else:
        figure, axis = plt.subplots(figsize=(8, max(5, 0.35 * len(class_names) + 2)))
        _heatmap(
            axis,
            per_class,
            class_names,
            labels,
            f"{fusion} fusion has no cross-modal attention to show.\n"
            "Instead: probability of the true activity with only this modality present",
            "mean probability of the true class",
        )
        axis.set(xlabel="the one modality present", ylabel="true activity")
    _save(figure, path)


def missing_modality_bars(
    results: dict, full_key: str, modality_labels: Mapping[str, str], path: Path
) -> None:
    """Macro F1 per modality subset, sorted, with the all-modalities result as a line."""
    ordered = sorted(results.items(), key=lambda item: item[1]["f1_macro"])
    names = [" + ".join(modality_labels.get(m, m) for m in r["modalities"]) for _, r in ordered]
    scores = [r["f1_macro"] for _, r in ordered]
    figure, axis = plt.subplots(figsize=(9, 0.4 * len(names) + 1.8))
    colours = ["tab:orange" if key == full_key else "tab:blue" for key, _ in ordered]
    axis.barh(names, scores, color=colours)
    axis.axvline(
        results[full_key]["f1_macro"],
        color="black",
        linestyle="--",
        label="all trained modalities present",
    )
    for y, score in enumerate(scores):
        axis.text(score + 0.01, y, f"{score:.2f}", va="center", fontsize=8)
    axis.set(xlim=(0, 1.08), xlabel="test macro F1")
    # over the whole figure: centred over the axis alone, it runs off the page when the
    # modality names (the y labels) take most of the width
    figure.suptitle("Missing modalities\ntest macro F1 with only the listed modalities present")
    axis.legend(loc="lower right")
    _save(figure, path)


def per_class_f1_bars(per_class: dict[str, float], path: Path) -> None:
    ordered = sorted(per_class.items(), key=lambda item: item[1])
    figure, axis = plt.subplots(figsize=(8, 0.35 * len(ordered) + 1.8))
    axis.barh([name for name, _ in ordered], [f for _, f in ordered], color="tab:green")
    for y, (_, score) in enumerate(ordered):
        axis.text(score + 0.01, y, f"{score:.2f}", va="center", fontsize=8)
    axis.set(xlim=(0, 1.08), xlabel="test F1", title="Per-activity F1 on the test split")
    _save(figure, path)


def calibration_change_bars(metrics: dict, path: Path) -> None:
    """NLL, Brier, ECE and MCE before and after temperature scaling, side by side."""
    keys = [("nll", "NLL (nats)"), ("brier", "Brier score"), ("ece", "ECE"), ("mce", "MCE")]
    figure, axes = plt.subplots(1, len(keys), figsize=(12, 3.6))
    for axis, (key, label) in zip(axes, keys, strict=True):
        values = [metrics[f"{key}_before"], metrics[f"{key}_after"]]
        axis.bar(["before", "after"], values, color=["tab:red", "tab:blue"])
        for x, value in enumerate(values):
            axis.text(x, value, f"{value:.3f}", ha="center", va="bottom", fontsize=8)
        axis.set(title=label, ylabel="lower is better")
    figure.suptitle(
        f"Test calibration before / after temperature scaling (T = {metrics['temperature']:.2f})"
    )
    _save(figure, path)


def training_curves(
    rows: list[dict[str, float]], members: list[dict[str, float]], path: Path
) -> None:
    """Train and validation loss, and validation scores, by epoch; the kept epoch marked. For
    an ensemble the first member's curves (the others' differ by their seed only), and every
    member's kept epoch in the title."""
    epochs = [row["epoch"] for row in rows]
    kept = next(row for row in rows if row["kept"])
    figure, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    losses = (("train_loss", "train loss"), ("val_loss", "validation loss"))
    scores = (("val_f1_macro", "validation macro F1"), ("val_acc", "validation accuracy"))
    panels = ((axes[0], losses, "loss"), (axes[1], scores, ""))
    for axis, series, unit in panels:
        for key, label in series:
            if all(key in row for row in rows):
                axis.plot(epochs, [row[key] for row in rows], "o-", markersize=3, label=label)
                axis.plot(kept["epoch"], kept[key], "D", color="black", markersize=7)
        axis.axvline(kept["epoch"], color="grey", linestyle="--", linewidth=1)
        axis.set(xlabel="epoch", ylabel=unit or "score (0–1)")
        axis.xaxis.get_major_locator().set_params(integer=True)
        axis.legend(fontsize=8)
    axes[0].set_title(f"Loss by epoch (◆ the kept checkpoint: epoch {kept['epoch']:g})")
    axes[1].set_title("Validation scores by epoch (◆ the kept epoch)")
    if len(members) > 1:
        epochs_kept = ", ".join(f"{m['kept_epoch']:g}" for m in members)
        figure.suptitle(
            f"Member 1 of an ensemble of {len(members)} (seed {members[0]['seed']:g}); "
            f"kept epochs of the members: {epochs_kept}"
        )
    axes[1].set_ylim(0, 1)
    _save(figure, path)


def confusion_matrices(
    predictions: dict[str, tuple[list[str], list[str]]], classes: list[str], path: Path
) -> None:
    """One test-split confusion matrix per model: colour is the share of the actual class's
    windows (recall along the diagonal), the number is the window count."""
    figure, axes = plt.subplots(
        1, len(predictions), figsize=(7.5 * len(predictions), 0.32 * len(classes) + 3.2)
    )
    index = {name: i for i, name in enumerate(classes)}
    panels = zip(np.atleast_1d(axes), predictions.items(), strict=True)
    for axis, (title, (actual, predicted)) in panels:
        counts = np.zeros((len(classes), len(classes)), dtype=int)
        for a, p in zip(actual, predicted, strict=True):
            counts[index[a], index[p]] += 1
        share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
        axis.imshow(share, cmap="Blues", vmin=0, vmax=1)
        for (i, j), count in np.ndenumerate(counts):
            if count:
                colour = "white" if share[i, j] > 0.6 else "black"
                axis.text(j, i, str(count), ha="center", va="center", fontsize=6, color=colour)
        axis.set_xticks(range(len(classes)), classes, rotation=60, ha="right", fontsize=7)
        axis.set_yticks(range(len(classes)), classes, fontsize=7)
        axis.set(xlabel="predicted", ylabel="actual", title=f"{title}: test split")
    _save(figure, path)
