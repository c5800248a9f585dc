"""The timeline figure of one predicted recording: the activity predicted for each window over
the recording's own clock, coloured by its calibrated confidence, the true activity beside it
where the recording carries labels, and the confidence with the windows that lacked a
modality underneath."""

from __future__ import annotations

from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.collections import LineCollection

from harfusion.data.window_reader import NO_LABEL

if TYPE_CHECKING:
    from pathlib import Path

    from harfusion.inference.prediction import Prediction


def draw_timeline(prediction: Prediction, card: dict, path: Path) -> None:
    windows = prediction.windows
    clock = windows.recording.timestamps
    starts = clock[windows.starts]
    ends = (
        clock[windows.starts + windows.length - 1] + 1.0 / card["preprocessing"]["sampling_rate_hz"]
    )
    names = card["class_names"]
    predicted = prediction.probabilities.argmax(axis=1)
    confidence = prediction.probabilities.max(axis=1)
    figure, (top, bottom) = plt.subplots(
        2,
        1,
        figsize=(12, 2.2 + 0.35 * len(names)),
        height_ratios=[3, 1],
        sharex=True,
        layout="constrained",
    )
    bars = LineCollection(
        [[(s, y), (e, y)] for s, e, y in zip(starts, ends, predicted, strict=True)],
        array=confidence,
        cmap="viridis",
        norm=plt.Normalize(0, 1),
        linewidths=9,
        label="predicted (colour: confidence)",
    )
    top.add_collection(bars)
    figure.colorbar(bars, ax=[top, bottom], label="confidence", pad=0.01)
    if prediction.truth is not None:
        row_of = {activity: row for row, activity in enumerate(card["classes"])}
        known = np.array([row_of.get(int(a), -1) for a in prediction.truth])
        shown = (prediction.truth != NO_LABEL) & (known >= 0)
        top.add_collection(
            LineCollection(
                [
                    [(s, y + 0.3), (e, y + 0.3)]
                    for s, e, y in zip(starts[shown], ends[shown], known[shown], strict=True)
                ],
                colors="black",
                linewidths=2,
                label="true activity",
            )
        )
    top.set(
        yticks=range(len(names)),
        yticklabels=names,
        ylim=(-0.7, len(names) - 0.3),
        xlim=(float(starts.min()), float(ends.max())),
    )
    top.set_title(f"{windows.recording.path.name}: predicted activity per window", loc="left")
    top.legend(loc="lower right", bbox_to_anchor=(1, 1), ncol=2, fontsize=8, frameon=False)
    edges = np.append(starts, ends[-1])
    bottom.step(edges, np.append(confidence, confidence[-1]), where="post", linewidth=1)
    absent = np.any([windows.absent[m] for m in card["modalities"]], axis=0)
    for start, end in zip(starts[absent], ends[absent], strict=True):
        bottom.axvspan(start, end, color="tab:red", alpha=0.15, linewidth=0)
    bottom.set(
        ylim=(0, 1.02),
        ylabel="confidence",
        xlabel="time (s, the recording's own clock); red: a modality missing",
    )
    figure.savefig(path, dpi=100, format="png")
    plt.close(figure)
