"""The one `harfusion` command: its subcommands, and one way for all of them to fail (a line
naming what is at fault, exit status 1).

    harfusion sweep | loso | compare | report | gather ... (`harfusion COMMAND --help`)
"""

from __future__ import annotations

import argparse

from harfusion.cli import exit_on_error
from harfusion.experiments import comparison, gather, loso, report, sweep

COMMANDS = {
    "sweep": sweep,
    "loso": loso,
    "compare": comparison,
    "report": report,
    "gather": gather,
}


def parser() -> argparse.ArgumentParser:
    parse = argparse.ArgumentParser(
        prog="harfusion",
        description="Ablation sweeps, LOSO, comparison and reports over DVC experiments.",
    )
    commands = parse.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module in COMMANDS.items():
        summary = " ".join((module.__doc__ or "").strip().split("\n\n")[0].split())
        command = commands.add_parser(name, help=summary, description=module.__doc__)
        command.formatter_class = argparse.RawDescriptionHelpFormatter
        module.add_arguments(command)
        command.set_defaults(run=module.run)
    return parse


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return exit_on_error(lambda: args.run(args))
