"""`reports/report.md`: the ablation results as a CML-style markdown report.

    harfusion report [--comparison reports/comparison] [--out reports/report.md]

The protocol comes first (what ran on which data), then a summary of `fusion_comparison.json`, the
comparison figures as relative image links (`cml comment create` uploads them), and DVC's own
`--md` tables of params and metrics.
"""

from __future__ import annotations

import argparse
import json
import os
import re
from pathlib import Path
from typing import Any

from harfusion import layout
from harfusion.atomic import write_text
from harfusion.errors import HarfusionError
from harfusion.experiments.comparison import modality_label
from harfusion.experiments.dvc_client import LATENCY, METRICS, dvc

PARAM_COLUMNS = r"^(Experiment|fusion|heads|chunk_size|modalities|seed)$"
_EVAL_FILES = "|".join(re.escape(path) for path in (METRICS, LATENCY))
METRIC_COLUMNS = (
    rf"^(Experiment|(({_EVAL_FILES}):)?"
    r"(accuracy|f1_macro|f1_weighted|ece_before|ece_after|latency_ms_mean|parameters))$"
)
FIGURE_TITLES = {"overview": "All finished configurations"}


def _list(values: list[Any] | None) -> str:
    return ", ".join(str(v) for v in values or []) or "none"


def protocol_lines(comparison: dict[str, Any]) -> list[str]:
    p = comparison["protocol"]
    source = f"- **Data source:** {p['data_source']} from `{p['raw_dir']}`"
    if p["synthetic"]:
        synthetic = p["synthetic"]
        source += (
            f" (generator seed {synthetic['seed']}, {synthetic['seconds_per_activity']:g} s per "
            f"activity and subject)"
        )
    split = p["split"] or {}
    if split.get("strategy") == "subject":
        how = (
            f"`subject`: validation subjects {_list(split.get('val_subjects'))}, test subjects "
            f"{_list(split.get('test_subjects'))}, training on the others (subject-independent)"
        )
    else:
        how = (
            f"`shard`: whole subject × activity shards to train / validation / test at "
            f"{split.get('train', 0):.0%} / {split.get('val', 0):.0%} / {split.get('test', 0):.0%}"
            f" of rows (split seed {split.get('seed')}); no window spans two shards"
        )
    if p["subjects"]:
        subjects = "; ".join(f"{part} {_list(ids)}" for part, ids in p["subjects"].items())
    elif p["synthetic"]:
        subjects = _list(p["synthetic"].get("subjects"))
    else:
        subjects = f"every subject in `{p['raw_dir']}`"
    seeds = p["seeds"]
    seed_note = f" (mean ± std over {len(seeds)} seeds)" if len(seeds) > 1 else ""
    train = p["train"]
    baseline = comparison["baseline"]
    return [
        source,
        f"- **Split:** {how}",
        f"- **Subjects:** {subjects}",
        f"- **Training seeds:** {_list(seeds)}{seed_note}",
        f"- **Training:** at most {train['max_epochs']} epochs, early stopping after "
        f"{train['patience']} without a better validation loss; IMU channels "
        f"{_list(p['channel_groups'])}; window {p['chunk_size']} timesteps unless the "
        "configuration sets `chunk_size`",
        f"- **Baseline commit:** `{baseline['rev'][:7]}`"
        + (f" ({baseline['name']})" if baseline.get("name") else ""),
    ]


def fmt(summary: dict[str, Any] | None, digits: int = 3, signed: bool = False) -> str:
    if summary is None:
        return "–"
    text = f"{summary['mean']:{'+' if signed else ''}.{digits}f}"
    return text + (f" ± {summary['std']:.{digits}f}" if summary["std"] is not None else "")


def summary_table(comparison: dict[str, Any]) -> list[str]:
    lines = [
        "| configuration | group | fusion | heads | window (steps) | modalities | runs | accuracy "
        "| macro F1 | baseline macro F1 | margin | ECE before → after | latency (ms) |",
        "|---|---|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, config in comparison["configs"].items():
        params, m = config["params"], config["metrics"]
        baseline = config.get("baseline") or {}
        margin = fmt(baseline.get("margin_f1_macro"), signed=True)
        lines.append(
            f"| {name} | {config['group']} | {params['fusion']} | {params['heads']} "
            f"| {params['chunk_size']} | {modality_label(params['modalities'] or [])} "
            f"| {len(config['experiments'])} | {fmt(m.get('accuracy'))} | {fmt(m.get('f1_macro'))} "
            f"| {fmt(baseline.get('f1_macro'))} | {margin} "
            f"| {fmt(m.get('ece_before'))} → {fmt(m.get('ece_after'))} "
            f"| {fmt(m.get('latency_ms_mean'), 2)} |"
        )
    return lines


def status_lines(comparison: dict[str, Any], report: Path) -> list[str]:
    lines = []
    for failure in comparison["failed"]:
        line = f"- failed: **{failure['name']}**"
        if failure.get("saved_log"):
            link = Path(os.path.relpath(failure["saved_log"], report.parent)).as_posix()
            line += f" ([log]({link}))"
        elif failure.get("log"):
            line += f" (log: `{failure['log']}`)"
        lines.append(line)
    if comparison["pending"]:
        lines.append(f"- still queued or running: {_list(comparison['pending'])}")
    if comparison["not_run"]:
        lines.append(f"- not run: {_list(comparison['not_run'])}")
    return lines


def figure_lines(comparison: dict[str, Any], figure_dir: Path, report: Path) -> list[str]:
    """Markdown image links relative to the report, the way CML resolves them."""
    lines = []
    for key, file in comparison.get("figures", {}).items():
        group = comparison["groups"].get(key.removesuffix("_missing_modality"), {})
        title = FIGURE_TITLES.get(key) or group.get("title", key)
        if key.endswith("_missing_modality"):
            title += ": missing modalities"
        link = Path(os.path.relpath(figure_dir / file, report.parent)).as_posix()
        lines += [f"### {title}", "", f"![{title}]({link})", ""]
    return lines


def diff_pair(comparison: dict[str, Any]) -> tuple[str, str] | None:
    """(reference, best): the configuration with the baseline's params (else the first finished
    one) against the best by macro F1 of those with other params; None if there is none."""
    configs = comparison["configs"]
    if not configs:
        return None
    baseline = comparison["baseline"]["params"]
    reference = next(
        (n for n, c in configs.items() if c["params"] == baseline), next(iter(configs))
    )
    others = [n for n, c in configs.items() if c["params"] != configs[reference]["params"]]
    if not others:
        return None
    best = max(others, key=lambda n: configs[n]["metrics"]["f1_macro"]["mean"])
    return configs[reference]["experiments"][0], configs[best]["experiments"][0]


def dvc_tables(comparison: dict[str, Any]) -> dict[str, str]:
    """DVC's own markdown: params and metrics of this commit's experiments, and one metrics diff."""
    show = ["exp", "show", "--md", "--hide-queued", "--hide-workspace", "--drop", ".*"]
    tables = {
        "Params (`dvc exp show --md`)": dvc(*show, "--keep", PARAM_COLUMNS).stdout,
        "Metrics (`dvc exp show --md`)": dvc(
            *show, "--keep", METRIC_COLUMNS, "--precision", "4"
        ).stdout,
    }
    pair = diff_pair(comparison)
    if pair:
        diff = dvc("metrics", "diff", *pair, "--md", "--targets", METRICS, "--precision", "4")
        title = (
            f"Reference vs the best other configuration (`dvc metrics diff {' '.join(pair)} --md`)"
        )
        tables[title] = diff.stdout
    return tables


def render(
    comparison: dict[str, Any],
    figure_dir: Path,
    report: Path,
    tables: dict[str, str],
    loso: str | None = None,
) -> str:
    """The report; `loso` is `harfusion loso`'s markdown, one heading level down."""
    lines = ["# Ablation report", "", "## Protocol", "", *protocol_lines(comparison), ""]
    lines += ["## Results", ""]
    if comparison["configs"]:
        lines += [*summary_table(comparison), ""]
        lines.append(
            "Test split; ± is the sample standard deviation over seeds where several ran. The "
            "baseline is the `baseline` stage's forest on window statistics of the same windows; "
            "margin = deep macro F1 − baseline macro F1, per run."
        )
    else:
        lines.append("No configuration has finished yet.")
    status = status_lines(comparison, report)
    lines += ["", *status, ""] if status else [""]
    if loso:
        lines += [f"#{line}" if line.startswith("#") else line for line in loso.splitlines()]
        lines.append("")
    if comparison.get("figures"):
        lines += ["## Figures", "", *figure_lines(comparison, figure_dir, report)]
    if tables:
        lines += ["## DVC tables", ""]
        for title, table in tables.items():
            lines += [f"### {title}", "", table.strip(), ""]
    return "\n".join(lines).rstrip() + "\n"


def write_report(comparison_dir: Path, out: Path, loso: Path) -> None:
    """`out` from `comparison_dir`'s JSON and figures, with `loso`'s markdown when it exists."""
    path = comparison_dir / layout.COMPARISON_JSON
    try:
        comparison = json.loads(path.read_text())
    except FileNotFoundError:
        raise HarfusionError(f"{path}: not found; run `harfusion compare`") from None
    tables = dvc_tables(comparison) if comparison["configs"] else {}
    folds = loso.read_text() if loso.exists() else None
    write_text(out, render(comparison, comparison_dir, out, tables, folds))
    print(f"report: {out}")


def add_arguments(parse: argparse.ArgumentParser) -> None:
    parse.add_argument("--comparison", type=Path, default=layout.COMPARISON)
    parse.add_argument("--out", type=Path, default=layout.REPORT)
    parse.add_argument(
        "--loso",
        type=Path,
        default=layout.LOSO / layout.LOSO_MARKDOWN,
        help="included when it exists",
    )


def run(args: argparse.Namespace) -> int:
    write_report(args.comparison, args.out, args.loso)
    return 0
