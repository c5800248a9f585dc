"""`reports/report.md`, the ablation results as a CML-style markdown report, and
`reports/report.html`, one self-contained page with one run's data and figures besides.

    harfusion report [--comparison reports/comparison] [--out reports/report.md] [--run NAME]

The markdown's protocol comes first (what ran on which data), then a summary of
`fusion_comparison.json`, the comparison figures as relative image links (`cml comment create`
uploads them), and DVC's own `--md` tables of params and metrics. It needs `harfusion compare`;
the HTML page does not: without experiments it shows the workspace's run alone.
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
from harfusion.experiments.dvc_client import METRICS, dvc
from harfusion.experiments.report_html import (
    Run,
    embed_images,
    experiment_run,
    page,
    run_section,
    workspace_run,
)
from harfusion.params import SWEPT, SplitParams

PARAM_COLUMNS = f"^(Experiment|{'|'.join(SWEPT)}|seed)$"
# No metric name is in two metrics files, so DVC shows them without their file's name.
METRIC_COLUMNS = (
    r"^(Experiment|accuracy|f1_macro|f1_macro_learnable|ece_before|ece_after|"
    r"missing_modality_f1|latency_ms|baseline\.f1_macro|kept_epoch)$"
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
    strategy = split.get("strategy", SplitParams().strategy)
    if strategy == "subject":
        how = (
            f"`subject`: validation subjects {_list(split.get('val_subjects'))}, test subjects "
            f"{_list(split.get('test_subjects'))}, training on the others (subject-independent)"
        )
    elif strategy == "shard":
        how = (
            f"`shard`: whole subject × activity shards to train / validation / test at "
            f"{split.get('train', 0):.0%} / {split.get('val', 0):.0%} / {split.get('test', 0):.0%}"
            f" of rows (split seed {split.get('seed')}); no window spans two shards"
        )
    else:  # a strategy this report does not describe is named, never passed off as another
        how = f"`{strategy}`"
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
        f"{train['patience']} without a better validation loss; channel groups "
        f"{_groups(p['channel_groups'])}; window {p['chunk_size']} samples"
        f"{_seconds(p['chunk_size'], p.get('sampling_rate_hz'))} unless the configuration sets "
        "`chunk_size`",
        f"- **Baseline commit:** `{baseline['rev'][:7]}`"
        + (f" ({baseline['name']})" if baseline.get("name") else ""),
    ]


def _groups(groups: Any) -> str:
    """`dataset.channel_groups` per kind; none named: each modality's default groups."""
    if isinstance(groups, dict) and groups:
        return "; ".join(f"{kind}: {_list(names)}" for kind, names in groups.items())
    if isinstance(groups, list):  # an experiment from before channel groups per kind
        return _list(groups)
    return "the dataset's defaults"


def _seconds(samples: Any, rate_hz: Any) -> str:
    if not isinstance(samples, int) or not isinstance(rate_hz, (int, float)) or rate_hz <= 0:
        return ""
    return f" ({samples / rate_hz:g} s at {rate_hz:g} Hz)"


def fmt(summary: dict[str, Any] | None, digits: int = 3, signed: bool = False) -> str:
    if summary is None:
        return "–"
    text = f"{summary['mean']:{'+' if signed else ''}.{digits}f}"
    return text + (f" ± {summary['std']:.{digits}f}" if summary["std"] is not None else "")


def summary_table(comparison: dict[str, Any]) -> list[str]:
    protocol = comparison["protocol"]
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
            f"| {params['chunk_size']} "
            f"| {modality_label(params['modalities'] or [], protocol['modality_labels'])} "
            f"| {len(config['experiments'])} | {fmt(m.get('accuracy'))} | {fmt(m.get('f1_macro'))} "
            f"| {fmt(baseline.get('f1_macro'))} | {margin} "
            f"| {fmt(m.get('ece_before'))} → {fmt(m.get('ece_after'))} "
            f"| {fmt(m.get('latency_ms'), 2)} |"
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


def relink(markdown: str, source: Path, report: Path) -> str:
    """Image links of a markdown file in `source` made relative to `report`'s folder."""

    def move(match: re.Match[str]) -> str:
        if re.match(r"^[a-z]+:", match[2]):
            return match[0]
        moved = Path(os.path.relpath(source / match[2], report.parent)).as_posix()
        return f"![{match[1]}]({moved})"

    return re.sub(r"!\[([^\]]*)\]\(([^)\s]+)\)", move, markdown)


def reference_run(comparison: dict[str, Any]) -> Run | None:
    """The comparison's reference configuration (params.yaml's), else its first finished one."""
    configs = comparison["configs"]
    if not configs:
        return None
    baseline = comparison["baseline"]["params"]
    name = next((n for n, c in configs.items() if c["params"] == baseline), next(iter(configs)))
    config = configs[name]
    return experiment_run(config["experiments"][0], config["revs"][0])


def choose_run(comparison: dict[str, Any] | None, name: str | None) -> Run | None:
    """`--run`: `workspace`, an experiment's name, or by default the workspace's outputs when
    they exist, else the comparison's reference experiment."""
    if name == "workspace" or (name is None and workspace_run()):
        run = workspace_run()
        if run is None:
            raise HarfusionError("--run workspace: no reports/eval/metrics.json; run `dvc repro`")
        return run
    if name is None:
        return reference_run(comparison) if comparison else None
    from harfusion.experiments.dvc_client import show

    found = show().named({name})
    if name not in found:
        raise HarfusionError(f"--run: no experiment {name!r} on this commit (`dvc exp show`)")
    return experiment_run(name, found[name].rev)


def html_report(
    run: Run | None,
    comparison: dict[str, Any] | None,
    comparison_dir: Path,
    loso: str | None,
    out: Path,
) -> str:
    """The page: the run, then the ablations (the markdown report less DVC's wide tables),
    then LOSO; `loso`'s image links are relative to `out`."""
    lines = ["# harfusion report", ""]
    if run is not None:
        lines += run_section(run)
    if comparison is not None:
        ablations = render(comparison, comparison_dir, out, {}, loso)
        lines += [f"#{line}" if line.startswith("#") else line for line in ablations.splitlines()]
    elif loso:
        lines += [f"#{line}" if line.startswith("#") else line for line in loso.splitlines()]
    return page("harfusion report", embed_images("\n".join(lines) + "\n", out.parent))


def write_report(
    comparison_dir: Path,
    out: Path,
    loso: Path,
    html_out: Path = layout.REPORT_HTML,
    run_name: str | None = None,
) -> None:
    """`out` from `comparison_dir`'s JSON and figures, with `loso`'s markdown when it exists;
    `html_out` with one run besides (`choose_run`)."""
    path = comparison_dir / layout.COMPARISON_JSON
    comparison = json.loads(path.read_text()) if path.is_file() else None
    folds = loso.read_text() if loso.exists() else None
    run = choose_run(comparison, run_name)
    if comparison is None and run is None and folds is None:
        raise HarfusionError(
            f"nothing to report: no {path} (`harfusion compare`), no LOSO summary and no "
            "evaluated workspace (`dvc repro`)"
        )
    if comparison is not None:
        tables = dvc_tables(comparison) if comparison["configs"] else {}
        text = render(
            comparison, comparison_dir, out, tables, folds and relink(folds, loso.parent, out)
        )
        write_text(out, text)
        print(f"report: {out}")
    else:
        print(f"report: no {path}, so no {out} (run `harfusion compare` after a sweep)")
    write_text(
        html_out,
        html_report(
            run,
            comparison,
            comparison_dir,
            folds and relink(folds, loso.parent, html_out),
            html_out,
        ),
    )
    print(f"report: {html_out}" + (f" (the run: {run.label})" if run else ""))


def add_arguments(parse: argparse.ArgumentParser) -> None:
    parse.add_argument(
        "--comparison",
        type=Path,
        default=layout.COMPARISON,
        help="the folder `harfusion compare` wrote (default: %(default)s)",
    )
    parse.add_argument(
        "--out", type=Path, default=layout.REPORT, help="the markdown report (default: %(default)s)"
    )
    parse.add_argument(
        "--html",
        type=Path,
        default=layout.REPORT_HTML,
        help="the self-contained HTML report (default: %(default)s)",
    )
    parse.add_argument(
        "--loso",
        type=Path,
        default=layout.LOSO / layout.LOSO_MARKDOWN,
        help="the LOSO summary, included when it exists (default: %(default)s)",
    )
    parse.add_argument(
        "--run",
        dest="run_name",  # `run` is the command's function
        metavar="NAME",
        help="the run the HTML report shows: `workspace` or an experiment's name (default: the "
        "workspace after `dvc repro`, else the comparison's reference experiment)",
    )


def run(args: argparse.Namespace) -> int:
    write_report(args.comparison, args.out, args.loso, args.html, args.run_name)
    return 0
