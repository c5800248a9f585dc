"""Every value the `harfusion` command takes: a bad one is refused before anything is queued, in
one line (exit 1) or argparse's usage line (exit 2), never with a traceback; a good one goes on
to queue. Hypothesis draws commands mixing good and bad values of each option (issue 20: `loso
--subjects 101,abc`, `-S 'fusion=[early'`, YAML tags in `-S`, `--params` at broken YAML or at a
list, `--poll -1` after queueing, negative or absurd counts).

DVC is faked at the one place harfusion runs it (dvc_client's subprocess): `dvc exp run --queue`
raises `Queued`, so "goes on to queue" is seen without queueing; git runs for real in a scratch
project.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import subprocess
import types
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from harfusion.command import main
from harfusion.experiments import dvc_client

ROOT = Path(__file__).resolve().parents[1]


class Queued(BaseException):
    """`dvc exp run --queue` was reached: every value was accepted."""


def fake_run(argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    args = argv[3:]  # after `python -m dvc`
    if args[:3] == ["exp", "run", "--queue"]:
        raise Queued(" ".join(args))
    if args[:3] == ["exp", "show", "--json"]:
        payload = [{"rev": "workspace", "data": {}}, {"rev": "a" * 40, "name": "main"}]
        return subprocess.CompletedProcess(argv, 0, json.dumps(payload), "")
    if args == ["remote", "default"]:
        return subprocess.CompletedProcess(argv, 1, "", "ERROR: no default remote")
    return subprocess.CompletedProcess(argv, 0, "", "")


FAKE_SUBPROCESS = types.SimpleNamespace(
    run=fake_run,
    CompletedProcess=subprocess.CompletedProcess,
    TimeoutExpired=subprocess.TimeoutExpired,
)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A committed project with the repository's params and ablations, and bad files beside."""
    project = tmp_path_factory.mktemp("cli") / "project"
    project.mkdir()
    for name in ("params.yaml", "ablations.yaml"):
        shutil.copy(ROOT / name, project / name)
    (project / "broken.yaml").write_text("fusion: [early\n")
    (project / "list.yaml").write_text("- fusion\n- early\n")
    (project / "tagged.yaml").write_text("seed: !!python/object/apply:os.system ['echo owned']\n")
    (project / "folder.yaml").mkdir()
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], cwd=project, check=True)
    subprocess.run([*git, "add", "-A"], cwd=project, check=True)
    subprocess.run([*git, "commit", "-qm", "start"], cwd=project, check=True)
    return project


BAD_FILES = ["broken.yaml", "list.yaml", "tagged.yaml", "missing.yaml", "folder.yaml"]
# Per option: values to accept, values to refuse.
RUNNER_OPTIONS: dict[str, tuple[list[str], list[str]]] = {
    "-j": (["1", "2", "64"], ["0", "-5", "65", "10000000000000", "abc", "1.5", "nan"]),
    "--poll": (["0.5", "10", "3600"], ["-1", "0", "nan", "inf", "-inf", "3601", "1e400", "x"]),
    "--timeout": (["1", "86400"], ["0", "-3", "nan", "inf", "soon"]),
    "--restarts": (["0", "3", "100"], ["-1", "101", "99999999999999999999", "x"]),
    "--shard": (["1/1", "1/2"], ["0/2", "3/2", "a/b", "1/0", "", "-1/2", "1/2/3"]),
    "--logs": (["logs"], ["params.yaml/logs"]),
}
PLAN_OPTIONS: dict[str, tuple[list[str], list[str]]] = {
    "--seeds": (["1", "2"], ["0", "-2", "101", "1000000000", "two"]),
    "-S": (
        ["train.patience=2", "seed=7"],
        [
            "fusion=[early",
            "seed=!!python/object:os.system x",
            "seed=!!python/object/apply:os.system ['echo owned']",
            "=3",
            "nokey",
            "fusoin=early",
            "heads=3",
            "a..b=1",
        ],
    ),
    "--params": (["params.yaml"], BAD_FILES),
    "--ablations": (["ablations.yaml"], BAD_FILES),
}
SWEEP_OPTIONS = PLAN_OPTIONS | {"--only": (["fusion", "fusion-early,heads,"], ["nope"])}
# LOSO reads --ablations only for --config.
LOSO_OPTIONS = {k: v for k, v in PLAN_OPTIONS.items() if k != "--ablations"} | {
    "--subjects": (
        ["101,102,103", "101, 102, 103,104"],
        ["101,abc", "101,101,102", "", "101,102", "1,2,-3", "101,²,3", "1,2,99999999999"],
    ),
    "--folds": (["1", "3"], ["0", "-1", "10", "x"]),
    "--config": (["fusion-early"], ["nope"]),
    "--out": (["out"], ["params.yaml/out"]),
}
COMMANDS = {
    "sweep": SWEEP_OPTIONS | RUNNER_OPTIONS,
    "loso": LOSO_OPTIONS | RUNNER_OPTIONS,
    "gather sweep": SWEEP_OPTIONS | {"--git-remote": (["origin"], [])},
    "gather loso": LOSO_OPTIONS | {"--git-remote": (["origin"], [])},
    "compare": {
        "--ablations": (["ablations.yaml"], BAD_FILES),
        "--out": (["comparison"], ["params.yaml/comparison"]),
    },
    "report": {
        "--comparison": (["comparison", "nothing-here"], ["params.yaml/x"]),
        "--out": (["report.md"], ["params.yaml/report.md"]),
        "--loso": (["loso.md", "nothing.md", "folder.yaml"], []),  # optional: read if a file
    },
}


@st.composite
def commands(draw: st.DrawFn) -> tuple[list[str], bool]:
    """(argv, whether some value in it is one to refuse)."""
    name = draw(st.sampled_from(["sweep", "loso"] * 3 + sorted(COMMANDS)))  # mostly these two
    table = COMMANDS[name]
    argv, bad = name.split(), False
    for option in draw(st.lists(st.sampled_from(sorted(table)), unique=True, max_size=4)):
        good_values, bad_values = table[option]
        refuse = bool(bad_values) and draw(st.booleans())
        value = draw(st.sampled_from(bad_values if refuse else good_values))
        argv.append(f"{option}={value}")  # `=`: a value may begin with '-'
        bad |= refuse
    return argv, bad


def run(project: Path, argv: list[str]) -> tuple[int | str, str]:
    """(exit status, or "queued" when it reached queueing; stderr)."""
    err = io.StringIO()
    with (
        contextlib.chdir(project),
        contextlib.redirect_stderr(err),
        contextlib.redirect_stdout(io.StringIO()),
    ):
        try:
            status: int | str = main(argv)
        except SystemExit as exit:
            status = exit.code if isinstance(exit.code, int) else 1
        except Queued:
            status = "queued"
    return status, err.getvalue()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(command=commands())
def test_every_value_is_refused_in_a_line_or_goes_on_to_queue(
    project: Path, command: tuple[list[str], bool], monkeypatch_module: pytest.MonkeyPatch
) -> None:
    argv, bad = command
    status, err = run(project, argv)
    event(f"{argv[0]}: {status}")
    assert "Traceback" not in err, (argv, err)
    if bad:
        assert status in (1, 2), (argv, status, err)
        last = err.strip().splitlines()[-1]
        assert last.startswith("error: " if status == 1 else "harfusion "), (argv, err)
    elif argv[0] in ("sweep", "loso"):
        assert status == "queued", (argv, status, err)
    else:  # gather finds nothing on the remote; compare and report have no experiments
        assert status in (0, 1), (argv, status, err)
    assert not (project / ".dvc/tmp/harfusion/queueing.json").exists()


@pytest.fixture(scope="module")
def monkeypatch_module() -> Any:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(dvc_client, "subprocess", FAKE_SUBPROCESS)
        yield patch


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["loso", "--subjects", "101,abc"], "'abc' is not one"),
        (["sweep", "--only", "fusion", "-S", "fusion=[early"], "-S 'fusion=[early': not a YAML"),
        (["sweep", "-S", "seed=!!python/object:os.system x"], "could not determine a constructor"),
        (["sweep", "--params", "broken.yaml"], "broken.yaml: not valid YAML"),
        (["sweep", "--params", "list.yaml"], "list.yaml: expected a mapping"),
        (["sweep", "--poll", "-1"], "--poll: above 0 and at most 3600, got -1"),
        (["loso", "--poll", "nan"], "--poll: above 0 and at most 3600, got nan"),
        (["sweep", "-j", "-2"], "-j: from 1 to 64, got -2"),
        (["loso", "--seeds", "0"], "--seeds: from 1 to 100, got 0"),
        (["sweep", "--shard", "3/2"], "expected I/N with 1 <= I <= N"),
    ],
)
def test_the_reported_cases_are_one_line(
    project: Path, argv: list[str], message: str, monkeypatch_module: pytest.MonkeyPatch
) -> None:
    status, err = run(project, argv)
    *usage, last = err.strip().splitlines()
    assert status in (1, 2) and message in last, err
    if status == 1:
        assert not usage and last.startswith("error: "), err
    else:  # argparse: its usage (wrapped), then one line naming the option
        assert usage[0].startswith("usage: ") and last.startswith(f"harfusion {argv[0]}: error: ")


def test_the_runner_speaks_as_the_command_that_runs_it(
    project: Path, monkeypatch_module: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 21: LOSO's lines began with `sweep:`."""
    with contextlib.chdir(project):
        assert main(["loso", "--dry-run", "--shard", "2/2"]) == 0
        assert capsys.readouterr().out.startswith("loso: shard 2/2: 4 of 9 experiments\n")
        assert main(["sweep", "--dry-run", "--shard", "2/2", "--only", "fusion"]) == 0
        assert capsys.readouterr().out.startswith("sweep: shard 2/2: 1 of 3 experiments\n")
