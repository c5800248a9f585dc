"""End to end on a fresh clone, through the README's own commands and real DVC."""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Generator
from pathlib import Path

import matplotlib.image
import pytest
import torch
import yaml

from harfusion.layout import RESUME, TEMPORARIES
from tests.browser import drawn_vega_views, dump_dom, network_references, vega_plots
from tests.helpers import SMOKE, merge

ROOT = Path(__file__).resolve().parents[1]
SETUP = ["uv run dvc repro", "uv run pytest"]
UV = os.environ.get("UV") or shutil.which("uv")
PR_SET_CHILD_SUBREAPER = 36  # <linux/prctl.h>


def readme_setup() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Setup", 1)[1].split("\n## ", 1)[0]
    return [line.strip() for line in section.splitlines() if line.startswith("    ")]


def test_readme_setup_is_exactly_two_commands() -> None:
    assert readme_setup() == SETUP


def run(clone: Path, command: str, ok: bool = True) -> subprocess.CompletedProcess:
    assert UV is not None
    argv = [UV, *command.split()[1:]] if command.startswith("uv ") else command.split()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "UV_PROJECT"))}
    result = subprocess.run(argv, cwd=clone, env=env, capture_output=True, text=True, timeout=900)
    if ok:
        assert result.returncode == 0, (
            f"{command}\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
        )
    return result


def ran_stages(result: subprocess.CompletedProcess) -> list[str]:
    return re.findall(r"Running stage '(\w+)'", result.stdout + result.stderr)


# The whole pipeline with an ensemble of two: every stage, DVC's caching and the byte checks
# see several members.
PIPELINE = merge(SMOKE, {"train": {"ensemble": 2}})


def smoke_clone(target: Path, repro: bool = True) -> Path:
    """A fresh clone with SMOKE params (two members), after the README's `uv run dvc repro` if
    `repro`."""
    if UV is None or shutil.which("git") is None:
        pytest.skip("needs uv and git on PATH")
    subprocess.run(["git", "clone", "-q", str(ROOT), str(target)], check=True)
    params = yaml.safe_load((target / "params.yaml").read_text())
    (target / "params.yaml").write_text(yaml.safe_dump(merge(params, PIPELINE), sort_keys=False))
    for command in ("git add params.yaml", "git -c user.name=t -c user.email=t@t commit -qm smoke"):
        subprocess.run(command.split(), cwd=target, check=True)
    if not repro:
        return target
    first = run(target, SETUP[0])
    assert ran_stages(first) == [
        "tidy",
        "check_params",
        "plots_template",
        "synthesize",
        "preprocess",
        "split",
        "tensorize",
        "train",
        "baseline",
        "evaluate",
        "export",
        "analyze",
    ]
    return target


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return smoke_clone(tmp_path_factory.mktemp("fresh") / "harfusion")


DETERMINISTIC = [
    "reports/eval/metrics.json",
    "reports/eval/scores.json",
    "reports/train/epochs.csv",
    "reports/train/metrics.json",
    "reports/train/members.csv",
    "reports/eval/predictions.csv",
    "reports/eval/uncertainty.json",
    "reports/eval/missing_modality.json",
    "reports/eval/confusion.csv",
    "data/splits/summary.json",
    "data/processed_tensors/norm_stats.json",
]


@contextlib.contextmanager
def _subreaper() -> Generator[None]:
    """Orphans are re-parented to this process while inside (Linux), so `_reap` can wait for the
    killed `dvc` under `uv`; left to init, it may stay a zombie whose PID DVC's lock takes as
    live. Switched off again so that no later test's daemons become our zombies."""
    if sys.platform != "linux":
        yield
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")
    try:
        yield
    finally:
        libc.prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)


def _reap(group: int, timeout: float = 60.0) -> None:
    """Wait until no process of `group` exists any more, zombies included, reaping our own."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            while os.waitpid(-group, os.WNOHANG)[0] > 0:
                pass
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    raise AssertionError(f"process group {group} still has members {timeout:g} s after SIGKILL")


def _kill_during(clone: Path, stage: str, busy: Callable[[], bool], *repro_args: str) -> bool:
    """Start `uv run dvc repro`; SIGKILL all its processes once `stage` runs and `busy()` says it
    is mid-work, and return only when every one of them is gone, as a user's shell reaps them.

    They are stopped first and `busy()` asked again: True when the kill caught the stage
    mid-work, False when it finished in between (a small stage on a loaded machine can)."""
    assert UV is not None
    log = clone.parent / f"{stage}-killed.log"
    with _subreaper(), log.open("w") as out:
        child = subprocess.Popen(
            [UV, "run", "dvc", "repro", *repro_args],
            cwd=clone,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 600
        while not (f"Running stage '{stage}'" in log.read_text() and busy()):
            assert child.poll() is None, f"repro ended before {stage} could be killed"
            assert time.monotonic() < deadline, f"{stage} never got busy"
            time.sleep(0.02)
        os.killpg(child.pid, signal.SIGSTOP)
        caught = busy()
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()
        _reap(child.pid)
    return caught


@pytest.mark.slow
def test_killed_stages_rerun_to_the_uninterrupted_result(clone: Path, tmp_path: Path) -> None:
    """SIGKILL mid-preprocess and mid-train, then `dvc repro`: the same bytes as `clone`, weights
    included. The second clone has its own venv and DVC cache, so this is also the check that
    the same params give the same bytes on another machine (CPU)."""
    other = smoke_clone(tmp_path / "harfusion", repro=False)
    # preprocess writes its shards into a temporary in the project's temporaries folder
    building = other / TEMPORARIES
    _kill_during(other, "preprocess", lambda: any(building.glob(".data%processed.*.tmp/*")))
    processed = other / "data" / "processed"
    if processed.exists():  # renamed into place whole, or not there at all
        index = json.loads((processed / "shards.json").read_text())
        assert all((processed / shard["path"]).exists() for shard in index)
    # DVCLive logs each finished epoch beside the checkpoints: killed in the second member
    second = other / RESUME / "member2" / "dvclive" / "plots"
    _kill_during(other, "train", second.exists)
    assert not (other / "models" / "model.pt").exists()
    result = run(other, "uv run dvc repro")
    assert "train" in ran_stages(result)
    for name in DETERMINISTIC:
        assert (other / name).read_bytes() == (clone / name).read_bytes(), name
    ours, theirs = (
        torch.load(c / "models" / "model.pt", weights_only=True) for c in (clone, other)
    )
    assert len(ours["members"]) == len(theirs["members"]) == 2
    for mine, other_member in zip(ours["members"], theirs["members"], strict=True):
        assert mine.keys() == other_member.keys()
        assert all(torch.equal(mine[k], other_member[k]) for k in mine)
    assert not (other / RESUME).exists()  # the rerun's training cleared the killed one's
    # Killed while rerunning a stage its run-cache holds (`repro -f`, an interrupted `exp run`):
    # the next repro restores that stage without running it, and restores `tidy`'s output, the
    # temporaries folder, without the litter.
    for _ in range(3):  # until the kill leaves litter
        if _kill_during(
            other,
            "preprocess",
            lambda: any(building.glob(".data%processed.*.tmp/*")),
            "--force",
            "--single-item",
            "preprocess",
        ):
            break
    else:
        raise AssertionError("preprocess finished before every kill: nothing left to tidy")
    result = run(other, "uv run dvc repro")
    assert ran_stages(result) == []
    assert "Stage 'preprocess' is cached" in result.stdout + result.stderr
    assert "Stage 'tidy' is cached" in result.stdout + result.stderr  # restored: litter gone
    assert sorted(p.name for p in building.iterdir()) == ["README"]
    leftovers = [p for p in other.rglob(".*.tmp") if ".venv" not in p.parts]
    assert not leftovers, leftovers


@pytest.mark.slow
def test_repro_outputs(clone: Path) -> None:
    scores = json.loads((clone / "reports" / "eval" / "scores.json").read_text())
    for key in ("accuracy", "f1_macro", "f1_weighted", "ece_before", "ece_after", "brier_after"):
        assert 0.0 <= scores[key] <= 1.0, key
    assert scores["temperature"] > 0
    assert len(scores["per_class_f1"]) == 18
    metrics = json.loads((clone / "reports" / "eval" / "metrics.json").read_text())
    assert {key: scores[key] for key in ("accuracy", "f1_macro", "ece_after")}.items() <= (
        metrics.items()
    )
    forest = json.loads((clone / "reports" / "baseline" / "scores.json").read_text())
    for key in ("accuracy", "f1_macro", "f1_weighted", "nll", "brier", "ece"):
        assert forest[key] >= 0.0 and (key == "nll" or forest[key] <= 1.0), key
    assert set(forest["per_class_f1"]) == set(scores["per_class_f1"])
    assert forest["test_windows"] == scores["test_windows"]
    missing = json.loads((clone / "reports" / "eval" / "missing_modality.json").read_text())
    assert len(missing) == 15
    latency = json.loads((clone / "reports" / "eval" / "latency.json").read_text())
    assert latency["latency_ms"] > 0 and "latency_ms" not in metrics
    uncertainty = json.loads((clone / "reports" / "eval" / "uncertainty.json").read_text())
    assert uncertainty["mc_samples"] == 3
    split = json.loads((clone / "data" / "splits" / "summary.json").read_text())
    assert abs(split["fractions"]["train"] - 0.70) <= 0.01
    for png in [
        *(clone / "reports" / "eval").glob("*.png"),
        *(clone / "reports" / "analysis").glob("*.png"),
    ]:
        height, width = matplotlib.image.imread(png).shape[:2]
        assert height > 300 and width > 500, png
    assert len(list((clone / "reports").rglob("*.png"))) == 7
    parity = json.loads((clone / "exports" / "parity.json").read_text())
    assert parity["windows"] == scores["test_windows"] and parity["argmax_differs"] == 0
    assert parity["max_abs_difference"] <= 1e-4
    saved = torch.load(clone / "models" / "model.pt", weights_only=True)
    assert len(saved["members"]) == saved["ensemble"]["members"] == 2
    assert scores["calibration"] == saved["calibration"]
    assert saved["calibration"]["fitted_on"].startswith("the validation windows of classes")
    members = (clone / "reports" / "train" / "members.csv").read_text().splitlines()
    assert len(members) == 3 and members[0].startswith("member,seed,epochs,kept_epoch,")
    predictions = (clone / "reports" / "eval" / "predictions.csv").read_text().splitlines()
    assert sum(line.startswith("test,") for line in predictions) == scores["test_windows"]
    assert any(line.startswith("val,") for line in predictions)


def _numbers(data: object, path: str = "") -> dict[str, float]:
    """Numeric leaves of a metrics file, by the dotted name DVC shows them under."""
    if isinstance(data, dict):
        return {
            name: value
            for key, inner in data.items()
            for name, value in _numbers(inner, f"{path}.{key}" if path else key).items()
        }
    return {path: data} if isinstance(data, int | float) and not isinstance(data, bool) else {}


@pytest.mark.slow
def test_dvc_metrics_show_is_the_headline(clone: Path) -> None:
    """At most 20 numbers, and no name in two files: `dvc exp show` and `dvc metrics diff`
    put no unrelated numbers into one column."""
    shown = json.loads(run(clone, "uv run dvc metrics show --json").stdout)
    files = next(iter(shown.values()))["data"]
    names = {file: _numbers(entry["data"]) for file, entry in files.items()}
    assert sum(len(numbers) for numbers in names.values()) <= 20, names
    every = [name for numbers in names.values() for name in numbers]
    assert len(every) == len(set(every)), names
    assert {"f1_macro", "accuracy", "baseline.f1_macro", "kept_epoch", "latency_ms"} <= set(every)
    assert "missing_modality_f1" in every and "error_auroc" in every


@pytest.mark.slow
def test_second_repro_runs_nothing(clone: Path) -> None:
    assert ran_stages(run(clone, "uv run dvc repro")) == []


@pytest.mark.slow
def test_param_typo_fails_with_the_key(clone: Path) -> None:
    result = run(clone, "uv run dvc exp run -S fusoin=early", ok=False)
    assert result.returncode != 0
    assert "fusoin" in result.stdout + result.stderr
    subprocess.run(["git", "checkout", "params.yaml"], cwd=clone, check=True)


@pytest.mark.slow
def test_chunk_size_reruns_from_tensorize_and_switching_back_uses_the_cache(clone: Path) -> None:
    changed = run(clone, "uv run dvc exp run -S chunk_size=96")
    # check_params tracks the whole params.yaml, so it re-validates on every change
    assert ran_stages(changed) == [
        "check_params",
        "tensorize",
        "train",
        "baseline",
        "evaluate",
        "export",
        "analyze",
    ]
    back = run(clone, "uv run dvc exp run -S chunk_size=128")
    assert ran_stages(back) == ["check_params"]  # no outputs, so nothing to restore: it re-checks
    assert "cached" in back.stdout + back.stderr
    table = run(clone, "uv run dvc exp show --md").stdout
    # deep and baseline metrics side by side in one table, each under its own name
    header = table.splitlines()[0]
    assert "| f1_macro " in header and "| baseline.f1_macro " in header
    assert "f1_macro" in run(clone, "uv run dvc metrics show").stdout


@pytest.mark.slow
def test_dvc_plots_show_draws_the_runs_plots_offline(clone: Path) -> None:
    run(clone, "uv run dvc plots show -o plots-out")
    page = clone / "plots-out" / "index.html"
    html = page.read_text()
    assert network_references(html) == []
    assert vega_plots(html) == 4
    assert drawn_vega_views(dump_dom(page)) == 4


@pytest.mark.slow
def test_readme_test_command_in_the_clone(clone: Path) -> None:
    # a file that does not read params.yaml: this clone runs with SMOKE params
    result = run(clone, f"{SETUP[1]} -q tests/test_dvc_deps.py")
    assert " passed" in result.stdout
