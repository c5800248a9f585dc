"""The ablation sweep: its configuration file, the failure report, the comparison and the report,
and the whole machinery end to end through the real DVC queue on a fresh clone."""

from __future__ import annotations

import base64
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import matplotlib.image
import pytest
import yaml

from harfusion.command import main as harfusion
from harfusion.errors import HarfusionError
from harfusion.experiments import dvc_client as experiments
from harfusion.experiments import runner
from harfusion.experiments.ablations import check_runs, expand, load_ablations, parse_set
from harfusion.experiments.comparison import build, write
from harfusion.experiments.dvc_client import (
    BASELINE_METRICS,
    LATENCY,
    METRICS,
    MISSING_MODALITY,
    SCORES,
    Baseline,
    Experiment,
    parse_show,
)
from harfusion.experiments.report import render
from harfusion.models.masking import nonempty_subsets
from tests.browser import drawn_vega_views, dump_dom, network_references, vega_plots
from tests.clones import E2E, env
from tests.helpers import MODALITIES

ROOT = Path(__file__).resolve().parents[1]
THIRTEEN = [
    "fusion-early",
    "fusion-late",
    "fusion-hybrid",
    "heads-1",
    "heads-4",
    "heads-8",
    "chunk-256",
    "chunk-512",
    "chunk-1024",
    "single-imu_hand",
    "single-imu_chest",
    "single-imu_ankle",
    "single-heart_rate",
]


# --- ablations.yaml ---------------------------------------------------------------------------


def test_the_thirteen_configurations_are_valid_params() -> None:
    ablations = load_ablations(ROOT / "ablations.yaml", MODALITIES)
    assert [c.name for c in ablations.configs] == THIRTEEN
    runs = expand(ablations.configs, seeds=1)
    check_runs(runs, ROOT / "params.yaml")
    single = next(run for run in runs if run.name == "single-heart_rate")
    assert single.set_args() == ["-S", "fusion=early", "-S", "modalities=[heart_rate]"]


def test_select_by_group_and_name() -> None:
    ablations = load_ablations(ROOT / "ablations.yaml", MODALITIES)
    assert [c.name for c in ablations.select(["heads", "fusion-late"])] == [
        "fusion-late",
        "heads-1",
        "heads-4",
        "heads-8",
    ]
    with pytest.raises(HarfusionError, match="headz"):
        ablations.select(["headz"])


def test_seeds_expand_to_named_runs_that_resolve_back() -> None:
    ablations = load_ablations(ROOT / "ablations.yaml", MODALITIES)
    runs = expand(
        ablations.select(["fusion-early"]), seeds=3, extra=parse_set(["train.patience=2"])
    )
    assert [run.name for run in runs] == ["fusion-early-s1", "fusion-early-s2", "fusion-early-s3"]
    assert runs[1].set_args() == ["-S", "fusion=early", "-S", "train.patience=2", "-S", "seed=2"]
    resolved = ablations.resolve("fusion-early-s2")
    assert resolved is not None and resolved[0].name == "fusion-early" and resolved[1] == 2
    assert ablations.resolve("my-own-experiment") is None


@pytest.mark.parametrize(
    ("groups", "message"),
    [
        ({"a": {"title": "t", "axis": "x", "configs": {"x-1": {}}}, "b": {}}, "Field required"),
        (
            {
                "a": {"title": "t", "axis": "x", "configs": {"x": {"heads": 1}}},
                "b": {"title": "t", "axis": "x", "configs": {"x": {"heads": 2}}},
            },
            "repeat",
        ),
        ({"a": {"title": "t", "axis": "x", "configs": {"run-s2": {}}}}, "reserved for seeds"),
        ({"a": {"title": "t", "axis": "x", "configs": {"A b": {}}}}, "lowercase"),
        (
            {"a": {"title": "t", "axis": "x", "reference": "zz", "configs": {"x": {}}}},
            "no configuration 'zz'",
        ),
    ],
)
def test_bad_ablation_files_fail_with_the_reason(
    tmp_path: Path, groups: dict, message: str
) -> None:
    path = tmp_path / "ablations.yaml"
    path.write_text(yaml.safe_dump({"groups": groups}))
    with pytest.raises(HarfusionError, match=message):
        load_ablations(path, MODALITIES)


@pytest.mark.parametrize(("override", "key"), [("heads=3", "heads"), ("fusoin=early", "fusoin")])
def test_overrides_are_validated_before_anything_is_queued(override: str, key: str) -> None:
    ablations = load_ablations(ROOT / "ablations.yaml", MODALITIES)
    runs = expand(ablations.select(["heads-8"]), seeds=1, extra=parse_set([override]))
    with pytest.raises(HarfusionError, match=rf"heads-8(.|\n)*{key}"):
        check_runs(runs, ROOT / "params.yaml")


def test_dry_run_prints_argument_lists(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)  # no DVC remote here, so no `--pull`
    argv = ["--dry-run", "--only", "single", "-j", "2", "--ablations", str(ROOT / "ablations.yaml")]
    assert harfusion(["sweep", *argv, "--params", str(ROOT / "params.yaml")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == (
        "dvc exp run --queue -n single-imu_hand -S fusion=early -S 'modalities=[imu_hand]'"
    )
    assert lines[-1] == "dvc queue start -j 2"


def test_ensemble_is_shorthand_for_its_override(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--ensemble K` queues `-S train.ensemble=K`, over an `-S` of the same key; 0 is refused."""
    monkeypatch.chdir(tmp_path)
    common = ["--ablations", str(ROOT / "ablations.yaml"), "--params", str(ROOT / "params.yaml")]
    argv = ["sweep", "--dry-run", "--only", "fusion-early", "-S", "train.ensemble=5", *common]
    assert harfusion([*argv, "--ensemble", "2"]) == 0
    (queued, _) = capsys.readouterr().out.splitlines()
    assert queued == "dvc exp run --queue -n fusion-early -S fusion=early -S train.ensemble=2"
    loso = ["loso", "--dry-run", "--subjects", "101,102,103", "--ensemble", "1", *common]
    assert harfusion(loso) == 0
    assert all("-S train.ensemble=1" in line for line in capsys.readouterr().out.splitlines()[:3])
    with pytest.raises(SystemExit) as refused:
        harfusion(["sweep", "--dry-run", "--ensemble", "0", *common])
    assert refused.value.code == 2
    assert "--ensemble: from 1 to 100, got 0" in capsys.readouterr().err


# --- failures, comparison and report, from fabricated `dvc exp show` records -----------------


def test_a_failed_experiment_is_reported_with_its_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    log = "Running stage 'tensorize':\nerror: chunk_size=100000: no window fits\nERROR: failed\n"

    def fake_dvc(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        assert args == ("queue", "logs", "chunk-huge")
        return subprocess.CompletedProcess(args, 0, log, "")

    monkeypatch.setattr(runner, "dvc", fake_dvc)
    finished = {
        "fusion-early": Experiment("fusion-early", "a" * 40, "success"),
        "chunk-huge": Experiment("chunk-huge", "b" * 40, "failed", log="/x/.dvc/tmp/b.out"),
    }
    assert runner.report_failures(["fusion-early", "chunk-huge"], finished, tmp_path) == 1
    err = capsys.readouterr().err
    assert f"chunk-huge: log {tmp_path / 'chunk-huge.log'} (DVC's: /x/.dvc/tmp/b.out)" in err
    assert "no window fits" in err and "fusion-early" not in err
    assert (tmp_path / "chunk-huge.log").read_text() == log


# Each fabricated experiment's detail outputs, as DVC would read them: (path, rev) → JSON.
DETAIL: dict[tuple[str, str], dict] = {}


def _fake_run(
    name: str, seed: int, f1: float, modalities: tuple[str, ...] = MODALITIES
) -> Experiment:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params |= {"seed": seed, "fusion": "early", "modalities": list(modalities)}
    metrics = {
        "accuracy": f1 + 0.05,
        "f1_macro": f1,
        "ece_before": 0.1,
        "ece_after": 0.05,
        "nll_after": 0.5,
        "brier_after": 0.2,
    }
    rev = f"{seed:040d}{name}"
    DETAIL[(SCORES, rev)] = metrics | {"f1_weighted": f1, "parameters": 1000}
    DETAIL[(MISSING_MODALITY, rev)] = {
        "+".join(s): {"modalities": list(s), "accuracy": f1, "f1_macro": f1 / len(s), "ece": 0.1}
        for s in nonempty_subsets(modalities)
    }
    return Experiment(
        name,
        rev,
        "success",
        params,
        {
            METRICS: metrics,
            LATENCY: {"latency_ms": 2.0 + seed},
            BASELINE_METRICS: {"baseline": {"f1_macro": f1 - 0.1, "accuracy": f1}},
        },
    )


def test_comparison_and_report_average_seeds_and_list_what_did_not_finish(tmp_path: Path) -> None:
    ablations = load_ablations(ROOT / "ablations.yaml", MODALITIES)
    baseline = Baseline(
        "c" * 40,
        "main",
        yaml.safe_load((ROOT / "params.yaml").read_text()),
        [
            _fake_run("fusion-early-s1", 1, 0.80),
            _fake_run("fusion-early-s2", 2, 0.90),
            _fake_run("single-heart_rate-s1", 1, 0.30, ("heart_rate",)),
            Experiment("fusion-late-s1", "d" * 40, "failed", log="/logs/late.out"),
            Experiment("heads-1-s1", "e" * 40, "queued"),
            _fake_run("someone-elses-experiment", 1, 0.99),
        ],
    )
    comparison = build(ablations, baseline, read=lambda path, rev: DETAIL.get((path, rev)))
    assert list(comparison["configs"]) == ["fusion-early", "single-heart_rate"]
    f1 = comparison["configs"]["fusion-early"]["metrics"]["f1_macro"]
    assert (
        f1["n"] == 2
        and f1["mean"] == pytest.approx(0.85)
        and f1["std"] == pytest.approx(0.0707, abs=1e-4)
    )
    assert comparison["configs"]["single-heart_rate"]["metrics"]["f1_macro"]["std"] is None
    # from each experiment's scores.json and missing_modality.json, not from `exp show`
    early = comparison["configs"]["fusion-early"]
    assert early["metrics"]["parameters"]["mean"] == 1000
    assert early["metrics"]["latency_ms"]["mean"] == pytest.approx(3.5)
    assert len(early["missing_modality"]) == 15
    assert early["missing_modality"]["imu_hand+heart_rate"]["modalities"] == [
        "imu_hand",
        "heart_rate",
    ]
    forest = comparison["configs"]["fusion-early"]["baseline"]
    assert forest["f1_macro"]["mean"] == pytest.approx(0.75) and forest["model"] == "random_forest"
    assert forest["margin_f1_macro"]["mean"] == pytest.approx(0.1)
    assert comparison["failed"] == [
        {"name": "fusion-late-s1", "config": "fusion-late", "log": "/logs/late.out"}
    ]
    assert comparison["pending"] == ["heads-1-s1"]
    assert "fusion-hybrid" in comparison["not_run"] and "fusion-early" not in comparison["not_run"]
    assert comparison["groups"]["single"]["labels"] == {
        "single-heart_rate": "heart rate",
        "fusion-early": "all 4 modalities (reference: fusion-early)",
    }

    figures = write(comparison, tmp_path / "comparison")
    assert figures == {
        "overview": "overview.png",
        "fusion": "fusion.png",
        "fusion_missing_modality": "fusion_missing_modality.png",
        "single": "single.png",
    }
    saved = json.loads((tmp_path / "comparison" / "fusion_comparison.json").read_text())
    assert saved["figures"] == figures
    report = tmp_path / "report.md"
    text = render(saved, tmp_path / "comparison", report, {})
    assert "- **Training seeds:** 1, 2 (mean ± std over 2 seeds)" in text
    assert (
        "| fusion-early | fusion | early | 4 | 512 | all 4 modalities | 2 | 0.900 ± 0.071 "
        "| 0.850 ± 0.071 | 0.750 ± 0.071 | +0.100 ± 0.000 |" in text
    )
    assert "- failed: **fusion-late-s1** (log: `/logs/late.out`)" in text
    assert "![Fusion type, all modalities](comparison/fusion.png)" in text
    loso = "# Leave-one-subject-out: fusion-early\n\n**Pooled out-of-fold macro F1:** 0.8\n"
    with_loso = render(saved, tmp_path / "comparison", report, {}, loso)
    assert "## Leave-one-subject-out: fusion-early" in with_loso
    assert with_loso.index("**Pooled out-of-fold") < with_loso.index("## Figures")


def test_exp_show_json_states_and_logs() -> None:
    entry = {
        "rev": "f" * 40,
        "name": "chunk-huge",
        "data": {"params": {"params.yaml": {"data": {"chunk_size": 100000}}}, "metrics": {}},
        "error": {"msg": "Experiment run failed", "type": ""},
    }
    payload = [
        {"rev": "workspace", "name": None, "data": {}, "experiments": None},
        {
            "rev": "a" * 40,
            "name": "main",
            "data": {"params": {"params.yaml": {"data": {"seed": 42}}}},
            "experiments": [
                {
                    "name": "chunk-huge",
                    "revs": [entry],
                    "executor": {"state": "failed", "local": {"log": "/l/x.out"}},
                }
            ],
        },
    ]
    baseline = parse_show(payload)
    assert baseline.name == "main" and baseline.params == {"seed": 42}
    (exp,) = baseline.experiments
    assert (exp.state, exp.log, exp.params) == ("failed", "/l/x.out", {"chunk_size": 100000})


def test_a_hung_exp_show_is_asked_again(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`dvc exp show` once hung for minutes on a lock while a worker removed its workspace."""
    payload = [{"rev": "a" * 40, "name": "main", "data": {}, "experiments": []}]
    answers = [subprocess.TimeoutExpired(["dvc"], 1.0), json.dumps(payload)]

    def fake_dvc(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
        assert args == ("exp", "show", "--json") and timeout == 1.0
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return subprocess.CompletedProcess(args, 0, answer, "")

    monkeypatch.setattr(experiments, "dvc", fake_dvc)
    assert experiments.show(pause=0.0, timeout=1.0).rev == "a" * 40
    assert "gave no answer within 1 s" in capsys.readouterr().err


# --- end to end: the real DVC queue on a fresh clone ------------------------------------------


@pytest.mark.slow
def test_sweep_reports_the_broken_experiment_and_exits_non_zero(swept) -> None:
    clone, result = swept
    assert result.returncode == 1, result.stdout + result.stderr
    succeeded = re.findall(r"\] success: ([^(]+) \(", result.stdout)
    assert sorted(", ".join(succeeded).split(", ")) == sorted(E2E), result.stdout
    log = clone / "reports" / "sweep" / "logs" / "chunk-huge.log"
    assert f"chunk-huge: log {log.relative_to(clone)} (DVC's: " in result.stderr
    assert "no window fits" in log.read_text()


@pytest.mark.slow
def test_comparison_holds_the_finished_configurations(swept) -> None:
    clone, _ = swept
    comparison = json.loads((clone / "reports/comparison/fusion_comparison.json").read_text())
    assert list(comparison["configs"]) == E2E
    for name, config in comparison["configs"].items():
        metrics = config["metrics"]
        for key in ("accuracy", "f1_macro", "ece_before", "ece_after"):
            assert 0.0 <= metrics[key]["mean"] <= 1.0 and metrics[key]["n"] == 1, (name, key)
        assert metrics["latency_ms"]["mean"] > 0 and metrics["parameters"]["mean"] > 0
        assert config["seeds"] == [42]
        assert len(config["missing_modality"]) == (1 if name == "single-heart_rate" else 15)
    assert comparison["configs"]["single-heart_rate"]["params"]["modalities"] == ["heart_rate"]
    assert comparison["groups"]["fusion"]["labels"] == {
        "fusion-early": "early",
        "fusion-hybrid": "hybrid",
    }
    assert comparison["groups"]["single"]["labels"]["fusion-early"] == (
        "all 4 modalities (reference: fusion-early)"
    )
    (failed,) = comparison["failed"]
    assert failed["name"] == "chunk-huge"
    assert failed["saved_log"] == "reports/sweep/logs/chunk-huge.log"
    assert failed["log"].startswith(".dvc/tmp/exps/")
    assert set(comparison["not_run"]) == set(THIRTEEN) - set(E2E)
    protocol = comparison["protocol"]
    assert protocol["data_source"] == "synthetic PAMAP2" and protocol["seeds"] == [42]
    synthetic = yaml.safe_load((clone / "params.yaml").read_text())["data"]["synthetic"]
    assert set(protocol["subjects"]["train"]) <= set(synthetic["subjects"])
    assert set(comparison["figures"]) == {"overview", "fusion", "fusion_missing_modality", "single"}
    for file in comparison["figures"].values():
        height, width = matplotlib.image.imread(clone / "reports/comparison" / file).shape[:2]
        assert height > 300 and width > 700, file


@pytest.mark.slow
def test_report_has_protocol_tables_and_working_image_links(swept) -> None:
    clone, _ = swept
    report = (clone / "reports" / "report.md").read_text()
    assert report.index("## Protocol") < report.index("| configuration |")
    assert "- **Data source:** synthetic PAMAP2 from `data/raw/synthetic`" in report
    assert "- **Split:** `shard`: whole subject × activity shards" in report
    assert re.search(r"- \*\*Subjects:\*\* train 10\d(, 10\d)*; val ", report)
    assert "- **Training seeds:** 42\n" in report
    for name in E2E:
        assert re.search(rf"^\| {name} \| .*\| \d\.\d{{3}} \|", report, re.MULTILINE), name
    links = re.findall(r"!\[[^\]]+\]\(([^)]+)\)", report)
    assert "comparison/fusion.png" in links and "comparison/fusion_missing_modality.png" in links
    assert all((clone / "reports" / link).is_file() for link in links)
    assert "- failed: **chunk-huge** ([log](sweep/logs/chunk-huge.log))" in report
    assert "| accuracy " in report and "| baseline.f1_macro " in report  # DVC's exp show table
    # The reference (params.yaml's hybrid) against the best other by macro F1; at this size every
    # model is near chance, so which one is best is the comparison's to say, not this test's.
    comparison = json.loads((clone / "reports/comparison/fusion_comparison.json").read_text())
    f1 = {n: c["metrics"]["f1_macro"]["mean"] for n, c in comparison["configs"].items()}
    best = max((n for n in f1 if n != "fusion-hybrid"), key=f1.__getitem__)
    assert f"`dvc metrics diff fusion-hybrid {best} --md`" in report


@pytest.mark.slow
def test_report_html_embeds_every_figure_and_names_the_data(swept) -> None:
    """No workspace run here (only queued experiments): the page shows the reference one."""
    clone, _ = swept
    page = clone / "reports" / "report.html"
    html = page.read_text()
    images = re.findall(r'<img src="data:image/png;base64,([^"]+)"', html)
    assert len(images) >= 8  # the run's 7 and the comparison's
    for data in images:
        height, width = matplotlib.image.imread(io.BytesIO(base64.b64decode(data))).shape[:2]
        assert height > 250 and width > 400
    assert network_references(html) == []
    text = re.sub(r"<[^>]+>", "", html)
    assert "The run: experiment fusion-hybrid" in text
    assert "synthetic PAMAP2 that the synthesize stage generated into data/raw/synthetic" in text
    comparison = json.loads((clone / "reports/comparison/fusion_comparison.json").read_text())
    for part, subjects in comparison["protocol"]["subjects"].items():
        assert f"{part} subjects: {', '.join(map(str, subjects))} (" in text
    assert "Ablation report" in text and "Training curves" in text
    assert len(re.findall(r"<img\b", dump_dom(page))) == len(images)


@pytest.mark.slow
def test_dvc_plots_diff_of_two_experiments_draws_offline(swept) -> None:
    clone, _ = swept
    for command in (
        ["repro", "plots_template"],  # only experiments ran here, not the workspace's pipeline
        ["plots", "diff", "fusion-early", "fusion-hybrid", "-o", "plots-diff"],
    ):
        done = subprocess.run(
            [sys.executable, "-m", "dvc", *command],
            cwd=clone,
            env=env(clone),
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stdout + done.stderr
    page = clone / "plots-diff" / "index.html"
    html = page.read_text()
    assert network_references(html) == [] and vega_plots(html) == 4
    assert "fusion-early" in html and "fusion-hybrid" in html
    assert drawn_vega_views(dump_dom(page)) == 4


def test_workers_share_the_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(runner, "usable_cores", lambda: 4)
    assert runner.default_jobs(13) == 4 and runner.default_jobs(2) == 2
    assert runner.worker_env(2)["OMP_NUM_THREADS"] == "2"
    assert "OMP_NUM_THREADS" not in runner.worker_env(1)
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert runner.worker_env(4)["OMP_NUM_THREADS"] == "3"


def test_exp_show_is_asked_again_quietly_and_only_a_last_failure_is_said(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A worker creating its temporary workspace trips `dvc exp show` now and then; the retry
    that then works is no news, but a failure on every attempt is (a hang is said at once:
    test_a_hung_exp_show_is_asked_again)."""
    answers = iter([HarfusionError("no '.dvc'"), experiments.Baseline("c" * 40, None, {}, [])])

    def once(timeout: float) -> experiments.Baseline:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    monkeypatch.setattr(experiments, "_show_once", once)
    assert experiments.show(attempts=3, pause=0).rev == "c" * 40
    assert capsys.readouterr() == ("", "")

    def never(timeout: float) -> experiments.Baseline:
        raise HarfusionError("`dvc exp show` exited with 255: no '.dvc'")

    monkeypatch.setattr(experiments, "_show_once", never)
    with pytest.raises(HarfusionError, match="exited with 255"):
        experiments.show(attempts=3, pause=0)
