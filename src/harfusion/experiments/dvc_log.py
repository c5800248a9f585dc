"""The one thing harfusion reads in DVC's own words: which stages a run restored from the
run-cache instead of running them. DVC records that nowhere else (no JSON, no API), only as a
log line; every other read of DVC goes through `exp show --json` or its Python API.

tests/test_dvc_reads.py runs the installed DVC and holds its wording to what is parsed here, so
a DVC upgrade that rewords it fails that test instead of a sweep's report.
"""

from __future__ import annotations

import re

# Written by DVC when the run-cache holds a stage's outputs for its deps and params.
RESTORED = re.compile(r"^Stage '([^']+)' is cached - skipping run", re.MULTILINE)


def restored_stages(log: str) -> list[str]:
    """The stages DVC restored from the run-cache instead of running, as its log says."""
    return RESTORED.findall(log)
