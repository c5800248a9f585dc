"""Command-line values checked as argparse reads them, before anything is planned or queued: a
value that can only be a mistake (a negative count, `nan` seconds, a subject id that is not a
number) is one usage line and exit status 2, never a traceback and never after queueing."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from pathlib import Path

from harfusion import layout
from harfusion.params import MAX_MEMBERS

MAX_JOBS = 64  # queue workers; each runs a whole training
MAX_SEEDS = 100  # seeds per configuration or fold
MAX_RESTARTS = 100
MAX_POLL = 3600.0  # seconds between status checks
MAX_SUBJECT = 2**31 - 1  # PAMAP2 numbers them 101-109; past int32 an id is a typo


def count(low: int, high: int, what: str) -> Callable[[str], int]:
    """An argparse type: an integer from `low` to `high`."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{what}: from {low} to {high}, got {value}")
        return value

    parse.__name__ = what  # argparse names the type in its messages
    return parse


def seconds(high: float, what: str) -> Callable[[str], float]:
    """An argparse type: a finite number of seconds above 0, at most `high`."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
        if not (math.isfinite(value) and 0 < value <= high):
            raise argparse.ArgumentTypeError(f"{what}: above 0 and at most {high:g}, got {text}")
        return value

    parse.__name__ = what
    return parse


def subject_ids(text: str) -> list[int]:
    """`101,102,103`: subject ids (the number in a recording's file name, `subject<id>.dat`)."""
    items = [item.strip() for item in text.split(",")]
    bad = [item for item in items if not (item.isascii() and item.isdigit())]
    bad += [item for item in items if item not in bad and int(item) > MAX_SUBJECT]
    if bad:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated subject ids such as 101,102,103 (at most {MAX_SUBJECT}); "
            f"{bad[0]!r} is not one"
        )
    ids = [int(item) for item in items]
    if len(set(ids)) != len(ids):
        raise argparse.ArgumentTypeError(f"a subject is named twice in {text!r}")
    return ids


def add_run_options(parse: argparse.ArgumentParser, each: str, seeds: str, ablations: str) -> None:
    """What sweep and LOSO share: `--seeds`, `-S`, `--ensemble`, `--ablations`, `--params`.
    `each`: what an override applies to; `seeds` and `ablations`: their help lines."""
    parse.add_argument("--seeds", type=count(1, MAX_SEEDS, "--seeds"), default=1, help=seeds)
    parse.add_argument(
        "-S",
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=f"extra override for every {each}, as `dvc exp run -S`",
    )
    add_ensemble(parse)
    parse.add_argument("--ablations", type=Path, default=layout.ABLATIONS, help=ablations)
    parse.add_argument(
        "--params", type=Path, default=layout.PARAMS, help="the params the overrides apply to"
    )


def add_ensemble(parse: argparse.ArgumentParser) -> None:
    """`--ensemble K`: shorthand for `-S train.ensemble=K` (it wins over an `-S` of that key)."""
    parse.add_argument(
        "--ensemble",
        type=count(1, MAX_MEMBERS, "--ensemble"),
        metavar="K",
        help="members per model, each trained with its own seed, probabilities averaged "
        "(shorthand for -S train.ensemble=K; default: params.yaml's)",
    )
