"""DVC experiments seen from outside a pipeline run: the DVC commands the sweep, the comparison
and the report make, DVC's Python API on the project, and the records `dvc exp show --json`
holds about each experiment."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from harfusion import layout
from harfusion.errors import HarfusionError

if TYPE_CHECKING:
    from dvc.repo import Repo

# Outputs as DVC names them (`exp show` keys, `api.read` paths): from the project root.
# Declared metrics (`exp show --json` holds their data):
METRICS = (layout.EVAL / layout.METRICS).as_posix()
BASELINE_METRICS = (layout.BASELINE / layout.METRICS).as_posix()  # {"baseline": {...}}
LATENCY = (layout.EVAL / layout.LATENCY).as_posix()
TRAIN_METRICS = (layout.TRAIN_REPORTS / layout.METRICS).as_posix()
# The detail, read from each experiment's outputs with `read_output`:
SCORES = (layout.EVAL / layout.SCORES).as_posix()
BASELINE_SCORES = (layout.BASELINE / layout.SCORES).as_posix()
MISSING_MODALITY = (layout.EVAL / layout.MISSING_MODALITY).as_posix()
SPLIT_SUMMARY = (layout.SPLITS / layout.SPLIT_SUMMARY).as_posix()
CONFUSION = (layout.EVAL / layout.CONFUSION).as_posix()
PREDICTIONS = (layout.EVAL / layout.PREDICTIONS).as_posix()
BASELINE_CONFUSION = (layout.BASELINE / layout.CONFUSION).as_posix()
BASELINE_WINDOWS = (layout.BASELINE / layout.BASELINE_WINDOWS).as_posix()
FINAL = frozenset({"success", "failed"})
SHOW_TIMEOUT = 120.0  # seconds; a healthy `dvc exp show` answers in a few


def dvc(*args: str, check: bool = True, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run DVC with this interpreter: an argument list, never a shell string."""
    result = subprocess.run(
        [sys.executable, "-m", "dvc", *args], capture_output=True, text=True, **kwargs
    )
    if check and result.returncode != 0:
        raise HarfusionError(
            f"`dvc {' '.join(args)}` exited with {result.returncode}:\n"
            f"{(result.stderr or result.stdout).strip()}"
        )
    return result


@contextlib.contextmanager
def project() -> Generator[Repo]:
    """DVC's Python API on the project here, for what no DVC command prints as JSON."""
    from dvc.repo import Repo  # slow to import; only the callers that need it pay for it

    with Repo(".") as repo:
        yield repo


@dataclass(frozen=True)
class Experiment:
    name: str
    rev: str
    state: str  # queued | running | success | failed
    params: dict[str, Any] = field(default_factory=dict)  # params.yaml as the experiment ran it
    metrics: dict[str, Any] = field(default_factory=dict)  # metrics file → its data, if it loaded
    log: str | None = None  # the queue task's log file


@dataclass(frozen=True)
class Baseline:
    rev: str
    name: str | None
    params: dict[str, Any]
    experiments: list[Experiment]

    def named(self, names: set[str]) -> dict[str, Experiment]:
        return {e.name: e for e in self.experiments if e.name in names}


def _files(section: dict[str, Any] | None) -> dict[str, Any]:
    return {
        path: entry["data"]
        for path, entry in (section or {}).items()
        if isinstance(entry, dict) and "data" in entry and not entry.get("error")
    }


def _experiment(entry: dict[str, Any]) -> Experiment:
    latest = entry["revs"][0]
    data = latest.get("data") or {}
    executor = entry.get("executor") or {}
    local = executor.get("local") or {}
    state = executor.get("state") or ("failed" if latest.get("error") else "success")
    if latest.get("error") and state == "success":
        state = "failed"
    return Experiment(
        name=entry.get("name") or latest["rev"][:7],
        rev=latest["rev"],
        state=state,
        params=_files(data.get("params")).get("params.yaml", {}),
        metrics=_files(data.get("metrics")),
        log=local.get("log"),
    )


def parse_show(payload: list[dict[str, Any]]) -> Baseline:
    """The HEAD baseline and its experiments from `dvc exp show --json` output."""
    commits = [entry for entry in payload if entry.get("rev") != "workspace"]
    if not commits:
        raise HarfusionError(
            "`dvc exp show` lists no commit; is this a git repository with commits?"
        )
    head = commits[0]
    return Baseline(
        rev=head["rev"],
        name=head.get("name"),
        params=_files((head.get("data") or {}).get("params")).get("params.yaml", {}),
        experiments=[_experiment(entry) for entry in head.get("experiments") or []],
    )


class ShowHung(HarfusionError):
    """`dvc exp show` gave no answer in time: minutes lost, worth saying."""


def _show_once(timeout: float) -> Baseline:
    try:
        out = dvc("exp", "show", "--json", timeout=timeout).stdout
    except subprocess.TimeoutExpired:  # subprocess.run has killed it
        raise ShowHung(f"`dvc exp show` gave no answer within {timeout:g} s") from None
    return parse_show(json.loads(out))


def show(attempts: int = 5, pause: float = 3.0, timeout: float = SHOW_TIMEOUT) -> Baseline:
    """This commit's experiments. While queue workers run, `exp show` now and then trips over a
    temporary workspace that a worker is creating or removing (an error, or a hang: seen waiting
    on a lock for minutes); asking again a moment later works. A hang is said; an error the
    next attempt cures is not news, so only the last attempt's error is."""
    for _ in range(attempts - 1):
        try:
            return _show_once(timeout)
        except ShowHung as hung:
            print(f"{hung}; asking again", file=sys.stderr, flush=True)
        except HarfusionError:
            pass
        time.sleep(pause)
    return _show_once(timeout)


def read_output(path: str, rev: str) -> str | None:
    """A DVC-tracked file as it was in `rev` (an experiment), from the local cache (or the DVC
    remote); None if it cannot be had."""
    data = read_bytes(path, rev)
    return None if data is None else data.decode()


def read_bytes(path: str, rev: str) -> bytes | None:
    """`read_output` for any file, a figure too."""
    from dvc.api import read  # slow to import; only the callers that need it pay for it

    try:
        return read(path, repo=".", rev=rev, mode="rb")
    except Exception:  # missing from the cache, or an older layout: the caller falls back
        return None


def read_json(path: str, rev: str) -> Any:
    """A JSON output of `rev`; None if it cannot be had."""
    text = read_output(path, rev)
    return None if text is None else json.loads(text)
