"""A sweep fanned out over machines, DVC's way, played on one machine: a bare git repository as
the git remote, a local folder as the DVC remote, two clones that each run one shard and push it
at the same time, a third that gathers and reports, and a fourth whose re-run of a configuration
is restored from the remote run-cache instead of training. Plus the shard arithmetic."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from harfusion.command import main as harfusion_main
from harfusion.errors import HarfusionError
from harfusion.experiments.dvc_client import METRICS
from harfusion.experiments.shards import Shard
from tests.clones import HARFUSION, env, harfusion, tiny_clone

SHARDED = ["fusion-early", "single-heart_rate"]  # both also ran in the swept (one-machine) clone
ONLY = ["--only", ",".join(SHARDED)]
RUN = ["-j", "1", "--poll", "3", "--timeout", "800"]


def test_shards_are_disjoint_cover_the_plan_and_differ_by_one_at_most() -> None:
    runs = list(range(39))  # 13 configurations x 3 seeds
    slices = [Shard.parse(f"{i}/4").take(runs) for i in range(1, 5)]
    assert sorted(r for s in slices for r in s) == runs
    assert [len(s) for s in slices] == [10, 10, 10, 9]
    assert Shard.parse(" 2 / 3 ") == Shard(2, 3) and str(Shard(2, 3)) == "2/3"
    for bad in ("0/2", "3/2", "1", "a/b", "1/0"):
        with pytest.raises(HarfusionError, match=re.escape("--shard: expected I/N")):
            Shard.parse(bad)


def test_dry_run_of_a_shard_prints_its_slice_and_the_push(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = Path(__file__).resolve().parents[1]
    files = ["--ablations", str(root / "ablations.yaml"), "--params", str(root / "params.yaml")]
    shard = ["sweep", "--only", "fusion", "--shard", "2/2", "--dry-run", "--push", *files]
    monkeypatch.chdir(tmp_path)  # no DVC repository, so no DVC remote
    with pytest.raises(SystemExit, match="1"):
        harfusion_main(shard)
    assert "--push: no default DVC remote" in capsys.readouterr().err
    dvc = [sys.executable, "-m", "dvc"]
    subprocess.run([*dvc, "init", "-q", "--no-scm"], check=True)
    subprocess.run([*dvc, "remote", "add", "-d", "storage", str(tmp_path / "s")], check=True)
    assert harfusion_main([*shard, "-j", "1"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "sweep: shard 2/2: 1 of 3 experiments",
        "dvc exp run --queue --pull -n fusion-late -S fusion=late",
        "dvc queue start -j 1",
        "dvc exp push --run-cache origin fusion-late",
    ]


# --- end to end ---------------------------------------------------------------------------


def _machine(base: Path, name: str) -> Path:
    """A clone of the shared git remote with the shared DVC remote as its default, as each CI job
    configures it."""
    clone = base / name
    subprocess.run(["git", "clone", "-q", str(base / "origin.git"), str(clone)], check=True)
    dvc = [sys.executable, "-m", "dvc", "remote", "add", "--local", "-d", "storage"]
    subprocess.run([*dvc, str(base / "storage")], cwd=clone, check=True, capture_output=True)
    return clone


@pytest.fixture(scope="module")
def fanned_out(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Two machines run a shard each, concurrently, and push; a third gathers."""
    base = tmp_path_factory.mktemp("scale_out")
    seed = tiny_clone(base / "seed")
    subprocess.run(
        ["git", "clone", "-q", "--bare", str(seed), str(base / "origin.git")], check=True
    )
    (base / "storage").mkdir()
    shards = {}
    for index in (1, 2):
        clone = _machine(base, f"shard{index}")
        command = [*HARFUSION, "sweep", *ONLY, "--shard", f"{index}/2", "--push", *RUN]
        shards[index] = subprocess.Popen(
            command,
            cwd=clone,
            env=env(clone),
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
    outputs = {index: process.communicate(timeout=900)[0] for index, process in shards.items()}
    for index, process in shards.items():
        assert process.returncode == 0, outputs[index]
    gatherer = _machine(base, "gather")
    gathered = harfusion(gatherer, "gather", "sweep", *ONLY)
    return {"base": base, "shards": outputs, "gatherer": gatherer, "gathered": gathered}


@pytest.mark.slow
def test_each_shard_ran_its_own_slice_and_pushed_it(fanned_out: dict) -> None:
    ran = {}
    for index, output in fanned_out["shards"].items():
        assert f"sweep: shard {index}/2: 1 of 2 experiments" in output, output
        ran[index] = re.findall(r"^sweep: queued (\S+) ", output, re.MULTILINE)
        assert "pushed 1 experiment(s) to git remote 'origin'" in output, output
    assert ran == {1: [SHARDED[0]], 2: [SHARDED[1]]}
    refs = subprocess.run(
        ["git", "ls-remote", str(fanned_out["base"] / "origin.git"), "refs/exps/*"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert sorted(ref.rsplit("/", 1)[-1] for ref in refs.split()[1::2]) == sorted(SHARDED)


@pytest.mark.slow
def test_gather_compares_every_configuration_as_one_machine_would(fanned_out, swept) -> None:
    result = fanned_out["gathered"]
    assert result.returncode == 0, result.stdout + result.stderr
    assert "gather: pulled 2 experiment(s) from 'origin'" in result.stdout
    gatherer, alone = fanned_out["gatherer"], swept[0]
    comparison = json.loads((gatherer / "reports/comparison/fusion_comparison.json").read_text())
    reference = json.loads((alone / "reports/comparison/fusion_comparison.json").read_text())
    assert list(comparison["configs"]) == SHARDED
    for name in SHARDED:
        # the same bytes as the one-machine sweep's, read from each clone's DVC cache
        assert _metrics_bytes(gatherer, name) == _metrics_bytes(alone, name), name
        ours, theirs = comparison["configs"][name], reference["configs"][name]
        timing = {"latency_ms"}  # measured, so it differs between any two runs
        assert {k: v for k, v in ours["metrics"].items() if k not in timing} == {
            k: v for k, v in theirs["metrics"].items() if k not in timing
        }
        assert ours["missing_modality"] == theirs["missing_modality"]
        assert ours["baseline"] == theirs["baseline"]
    report = (gatherer / "reports" / "report.md").read_text()
    assert all(re.search(rf"^\| {name} \| ", report, re.MULTILINE) for name in SHARDED)
    # the HTML report shows a gathered experiment's run, its figures read from the DVC remote
    page = (gatherer / "reports" / "report.html").read_text()
    assert "The run: experiment <code>" in page
    assert page.count('<img src="data:image/png;base64,') >= 8
    # only what the comparison reads came over, not models or tensors
    cache = gatherer / ".dvc" / "cache" / "files"
    assert sum(f.stat().st_size for f in cache.rglob("*") if f.is_file()) < 2_000_000


def _metrics_bytes(clone: Path, experiment: str) -> str:
    code = f"import dvc.api; print(dvc.api.read({METRICS!r}, repo='.', rev={experiment!r}), end='')"
    return subprocess.run(
        [sys.executable, "-c", code], cwd=clone, capture_output=True, text=True, check=True
    ).stdout


@pytest.mark.slow
def test_gather_names_what_the_remote_lacks(fanned_out: dict) -> None:
    result = harfusion(fanned_out["gatherer"], "gather", "sweep", "--only", "fusion-late")
    assert result.returncode == 1
    assert "missing on 'origin' for this commit: fusion-late" in result.stderr
    assert "error: none of the planned experiments is on 'origin'" in result.stderr


@pytest.mark.slow
def test_a_fourth_machine_restores_a_configuration_instead_of_training(fanned_out: dict) -> None:
    clone = _machine(fanned_out["base"], "again")
    result = harfusion(clone, "sweep", "--only", SHARDED[0], *RUN)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "sweep: 1 of 1 trainings restored from the run-cache" in result.stdout
    log = subprocess.run(
        [sys.executable, "-m", "dvc", "queue", "logs", SHARDED[0]],
        cwd=clone,
        env=env(clone),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "Stage 'train' is cached - skipping run" in log, log
    assert "Running stage 'train'" not in log and "stages/train.py" not in log, log
    assert _metrics_bytes(clone, SHARDED[0]) == _metrics_bytes(fanned_out["gatherer"], SHARDED[0])
