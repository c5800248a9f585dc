"""The one `harfusion` command: its subcommands, and one way for all of them to fail (a line
naming what is at fault, exit status 1).

    harfusion sweep | loso | compare | report | predict | check-dataset | gather ...
    (`harfusion COMMAND --help`)

A subcommand's module (and all it imports: DVC, numpy, matplotlib) is imported only when that
subcommand runs or shows its help, so `harfusion --help` answers at once.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from importlib.metadata import version

from harfusion.cli import exit_on_error

# name → (module, one-line summary: the first paragraph of the module's docstring, which
# tests/test_command.py holds them to).
COMMANDS = {
    "sweep": (
        "harfusion.experiments.sweep",
        "Run the ablation configurations (ablations.yaml) as DVC experiments through the queue.",
    ),
    "loso": (
        "harfusion.experiments.loso.command",
        "Leave-one-subject-out: one DVC experiment per held-out test subject (and seed), "
        "validation on the next subject, then pooled out-of-fold macro F1 and the mean ± std "
        "over folds.",
    ),
    "compare": (
        "harfusion.experiments.comparison",
        "Compare the ablation experiments of this commit: `reports/comparison/` (JSON and "
        "figures).",
    ),
    "report": (
        "harfusion.experiments.report",
        "`reports/report.md`, the ablation results as a CML-style markdown report, and "
        "`reports/report.html`, one self-contained page with one run's data and figures besides.",
    ),
    "predict": (
        "harfusion.inference.predict",
        "Apply a trained model to raw recordings: a CSV with one row per window (its times on "
        "the recording's own clock, the activity, its calibrated probability and every class's, "
        "the modalities missing) and a timeline figure per recording.",
    ),
    "check-dataset": (
        "harfusion.data.check_dataset",
        "Check a dataset description against its recordings and say what they hold: subjects, "
        "sessions, rows, the measured sampling rate and the labels.",
    ),
    "gather": (
        "harfusion.experiments.gather",
        "Gather a sweep or LOSO whose shards ran on other machines, then summarize it as if it "
        "ran here.",
    ),
}


def parser(command: str | None = None) -> argparse.ArgumentParser:
    """The command line; only `command`'s options are defined (and its module imported)."""
    parse = argparse.ArgumentParser(
        prog="harfusion",
        description="Ablation sweeps, LOSO, comparison and reports over DVC experiments; "
        "predictions of a trained model on raw recordings.",
    )
    parse.add_argument("--version", action="version", version=f"%(prog)s {version('harfusion')}")
    commands = parse.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module_name, summary) in COMMANDS.items():
        sub = commands.add_parser(name, help=summary, description=summary)
        if name == command:
            module = importlib.import_module(module_name)
            sub.description = module.__doc__
            sub.formatter_class = argparse.RawDescriptionHelpFormatter
            module.add_arguments(sub)
            sub.set_defaults(run=module.run)
    return parse


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    command = next((arg for arg in argv if not arg.startswith("-")), None)
    try:
        args = parser(command if command in COMMANDS else None).parse_args(argv)
        return exit_on_error(lambda: args.run(args))
    except KeyboardInterrupt:  # Ctrl-C while importing, comparing or reporting: no traceback
        # (sweep and LOSO handle their own signals, saying what goes on in the background)
        print("harfusion: interrupted", file=sys.stderr)
        return 130
