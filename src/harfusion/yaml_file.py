"""A YAML file that must hold a mapping (params.yaml, a dataset description), read with one-line
errors naming the file: missing, unreadable, not YAML, or not a mapping."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from harfusion.errors import HarfusionError


def read_mapping(path: Path, what: str, empty_ok: bool = False) -> dict[str, Any]:
    """The mapping in `path`; `what` says in errors what the file is and what its top holds
    (`params`, `name, files, format, ...`). `empty_ok`: an empty file is an empty mapping."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise HarfusionError(f"{path}: file not found") from None
    except yaml.YAMLError as exc:
        raise HarfusionError(f"{path}: not valid YAML: {' '.join(str(exc).split())}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise HarfusionError(f"{path}: cannot read ({exc})") from None
    if raw is None and empty_ok:
        return {}
    if not isinstance(raw, dict):
        raise HarfusionError(f"{path}: expected a mapping of {what} at the top level")
    return raw
