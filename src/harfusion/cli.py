"""How harfusion's commands and stage scripts fail: one line naming what is at fault, exit 1."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TypeVar

from harfusion.errors import HarfusionError
from harfusion.params import Params, load_params

T = TypeVar("T")


def exit_on_error(action: Callable[[], T]) -> T:
    """`action()`, or on bad input a one-line error on stderr and SystemExit(1)."""
    try:
        return action()
    except HarfusionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    except OSError as exc:  # a read-only or full disk, a folder where a file should be: the
        # path and the system's reason say it all; a traceback would only hide them
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"error: {where}{exc.strerror or exc}", file=sys.stderr)
        raise SystemExit(1) from None


def run_stage(main: Callable[[Params], None], params_path: str = "params.yaml") -> None:
    exit_on_error(lambda: main(load_params(params_path)))
