"""How stage scripts start and fail: validated params in, a one-line error and exit 1 out."""

from __future__ import annotations

import sys
from collections.abc import Callable

from harfusion.errors import HarfusionError
from harfusion.params import Params, load_params


def run_stage(main: Callable[[Params], None], params_path: str = "params.yaml") -> None:
    try:
        main(load_params(params_path))
    except HarfusionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    except OSError as exc:  # a read-only or full disk, a folder where a file should be: the
        # path and the system's reason say it all; a traceback would only hide them
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"error: {where}{exc.strerror or exc}", file=sys.stderr)
        raise SystemExit(1) from None
