"""`reports/report.html`: one self-contained page that a browser shows offline. What data one run
read (the folder, real or synthetic, the subjects of each split: from the params that run used),
its headline beside the forest baseline's, its figures; then the ablation comparison and the
leave-one-subject-out summary when they exist. Written as markdown (the CML report's tables are
reused), rendered with markdown-it, every figure embedded as a data URI: nothing is loaded.
"""

from __future__ import annotations

import base64
import html
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from harfusion import layout
from harfusion.experiments.comparison import reads_synthetic

Read = Callable[[str], bytes | None]  # an output's path from the project root → its bytes

# The run's figures, in reading order: (path, title, what it shows).
RUN_FIGURES = (
    (
        layout.ANALYSIS / "training_curves.png",
        "Training curves",
        "Loss and validation scores by epoch; the diamond marks the checkpoint kept.",
    ),
    (
        layout.ANALYSIS / "confusion.png",
        "Confusion matrices: model and baseline",
        "Test split; colour is the share of the actual class's windows, the number a count.",
    ),
    (
        layout.ANALYSIS / "calibration_before_after.png",
        "Calibration before and after temperature scaling",
        "NLL, Brier score, ECE and MCE on the test split; the temperature is fit on validation.",
    ),
    (
        layout.EVAL / layout.CALIBRATION_PLOT,
        "Reliability diagram",
        "Accuracy against confidence per bin, with the test windows per bin underneath.",
    ),
    (
        layout.ANALYSIS / "missing_modality.png",
        "Missing modalities",
        "Test macro F1 with only the listed modalities present (the others masked, as in "
        "training's modality dropout).",
    ),
    (layout.ANALYSIS / "per_class_f1.png", "Per-class F1", "Test F1 per activity."),
    (
        layout.EVAL / layout.ATTENTION_PLOT,
        "Attention map",
        "Hybrid fusion: mean cross-modal attention and modality weights per activity; early and "
        "late fusion have none, and the figure shows each modality alone instead.",
    ),
)
STYLE = """
body { font-family: sans-serif; max-width: 1150px; margin: 2em auto; padding: 0 1em;
       line-height: 1.45; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; }
th { background: #f3f3f3; }
td { text-align: right; } td:first-child { text-align: left; }
img { max-width: 100%; border: 1px solid #eee; }
code { background: #f5f5f5; padding: 0 0.2em; }
"""


@dataclass(frozen=True)
class Run:
    """The run whose data and figures the page shows: the workspace's, or an experiment's."""

    label: str
    read: Read

    def json(self, path: str | Path) -> Any:
        data = self.read(Path(path).as_posix())
        return None if data is None else json.loads(data)

    def params(self) -> dict[str, Any]:
        data = self.read(layout.PARAMS.as_posix())
        return yaml.safe_load(data) if data else {}


def workspace_run() -> Run | None:
    """The workspace's outputs (after `dvc repro` or `dvc exp apply`), if evaluate wrote any."""
    if not (layout.EVAL / layout.METRICS).is_file():
        return None

    def read(path: str) -> bytes | None:
        return Path(path).read_bytes() if Path(path).is_file() else None

    return Run("the workspace (its last `dvc repro` or applied experiment)", read)


def experiment_run(name: str, rev: str) -> Run:
    from harfusion.experiments.dvc_client import read_bytes

    return Run(f"experiment `{name}` (`{rev[:7]}`)", lambda path: read_bytes(path, rev))


def data_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode()


def data_lines(run: Run, params: dict[str, Any]) -> list[str]:
    """What the run read, from its own params and split summary."""
    data = params.get("data") or {}
    raw = data.get("raw_dir")
    if reads_synthetic(params):
        synthetic = data.get("synthetic") or {}
        source = (
            f"**synthetic** PAMAP2 that the `synthesize` stage generated into `{raw}` "
            f"(generator seed {synthetic.get('seed')}, {synthetic.get('seconds_per_activity')} s "
            "per activity and subject): for trying the tool, not for findings"
        )
    else:
        source = f"**recorded** data (not generated) in `{raw}`"
    dataset = run.json(layout.PROCESSED / layout.DATASET) or {}
    if dataset.get("name"):
        source = f"{dataset['name']}: {source}"
    modalities = params.get("modalities") or []
    if modalities == "all":
        modalities = list(dataset.get("modalities") or ["all"])
    split = params.get("split") or {}
    lines = [f"- **Data:** {source}", f"- **Split strategy:** `{split.get('strategy')}`"]
    summary = run.json(layout.SPLITS / layout.SPLIT_SUMMARY) or {}
    windows = run.json(layout.BASELINE / layout.BASELINE_WINDOWS) or {}
    for part in ("train", "val", "test"):
        subjects = ", ".join(map(str, (summary.get("subjects") or {}).get(part, []))) or "?"
        rows = (summary.get("rows") or {}).get(part)
        count = sum((windows.get(part) or {}).values()) if part in windows else None
        sizes = ", ".join(
            text
            for text in (
                f"{rows:,} rows" if rows is not None else "",
                f"{count:,} windows" if count is not None else "",
            )
            if text
        )
        lines.append(f"- **{part} subjects:** {subjects}" + (f" ({sizes})" if sizes else ""))
    lines.append(
        f"- **Model:** `{params.get('fusion')}` fusion, {params.get('heads')} heads, windows of "
        f"{params.get('chunk_size')} steps, modalities {', '.join(modalities)}"
        f", seed {params.get('seed')}"
    )
    return lines


def _number(value: Any, digits: int = 3) -> str:
    return f"{value:.{digits}f}" if isinstance(value, int | float) else "–"


def headline_table(run: Run) -> list[str]:
    """The run's headline, the forest baseline beside the model wherever it has the number."""
    from harfusion.evaluation.metrics import macro_f1  # numpy: not for `--help`

    metrics = run.json(layout.EVAL / layout.METRICS) or {}
    latency = run.json(layout.EVAL / layout.LATENCY) or {}
    training = run.json(layout.TRAIN_REPORTS / layout.METRICS) or {}
    forest = run.json(layout.BASELINE / layout.SCORES) or {}
    windows = run.json(layout.BASELINE / layout.BASELINE_WINDOWS) or {}
    learnable = [c for c, n in (windows.get("train") or {}).items() if n > 0]
    forest_learnable = macro_f1(forest.get("per_class_f1") or {}, learnable)
    rows = [
        ("accuracy", metrics.get("accuracy"), forest.get("accuracy")),
        ("macro F1, all classes", metrics.get("f1_macro"), forest.get("f1_macro")),
        ("macro F1, classes with training windows", metrics.get("f1_macro_learnable"),
         forest_learnable),
        ("NLL before → after temperature scaling",
         f"{_number(metrics.get('nll_before'))} → {_number(metrics.get('nll_after'))}",
         forest.get("nll")),
        ("ECE before → after temperature scaling",
         f"{_number(metrics.get('ece_before'))} → {_number(metrics.get('ece_after'))}",
         forest.get("ece")),
        ("Brier score (after scaling)", metrics.get("brier_after"), forest.get("brier")),
        ("MC-dropout error AUROC (entropy)", metrics.get("error_auroc"), None),
        ("missing-modality macro F1 (one modality dropped, mean)",
         metrics.get("missing_modality_f1"), None),
        ("latency per window (ms, batch 1)", _number(latency.get("latency_ms"), 2), None),
        ("epoch kept (validation loss / macro F1 there)",
         f"{training.get('kept_epoch', '–')} ({_number(training.get('val_loss'))} / "
         f"{_number(training.get('val_f1_macro'))})", None),
    ]  # fmt: skip
    model = forest.get("model", "forest")
    lines = [f"| test split | model | baseline ({model}) |", "|---|---:|---:|"]
    for name, ours, theirs in rows:
        ours_text = ours if isinstance(ours, str) else _number(ours)
        lines.append(f"| {name} | {ours_text} | {_number(theirs)} |")
    return lines


def run_section(run: Run) -> list[str]:
    params = run.params()
    lines = [f"## The run: {run.label}", "", *data_lines(run, params), ""]
    lines += ["### Headline", "", *headline_table(run), ""]
    lines += ["### Figures", ""]
    for path, title, caption in RUN_FIGURES:
        data = run.read(path.as_posix())
        shown = f"![{title}]({data_uri(data)})" if data else f"*({path} is missing.)*"
        lines += [f"#### {title}", "", caption, "", shown, ""]
    return lines


def embed_images(markdown: str, folder: Path) -> str:
    """Replace every markdown image link to a file (relative to `folder`) with a data URI."""

    def embed(match: re.Match[str]) -> str:
        target = folder / match[2]
        if match[2].startswith("data:") or not target.is_file():
            return match[0]
        return f"![{match[1]}]({data_uri(target.read_bytes())})"

    return re.sub(r"!\[([^\]]*)\]\(([^)\s]+)\)", embed, markdown)


def page(title: str, markdown: str) -> str:
    from markdown_it import MarkdownIt  # imported by the one command that renders

    body = MarkdownIt("commonmark", {"html": False}).enable("table").render(markdown)
    return (
        f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
        f"{body}</body>\n</html>\n"
    )
