"""The `harfusion` command line: quick to answer `--help`, every option explained, a version."""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from importlib import import_module
from importlib.metadata import version

import pytest

from harfusion.command import COMMANDS, main, parser


def _options(parse: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    for action in parse._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _options(sub, (*path, name))
        elif action.option_strings:
            yield path, action


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_option_says_what_it_does(command: str) -> None:
    undocumented = [
        (path, action.option_strings)
        for path, action in _options(parser(command))
        if not (action.help or "").strip()
    ]
    assert undocumented == []


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_the_summary_is_the_modules_own(command: str) -> None:
    """The summaries `harfusion --help` shows without importing a module are its docstring's."""
    module, summary = COMMANDS[command]
    first = " ".join((import_module(module).__doc__ or "").strip().split("\n\n")[0].split())
    assert summary == first


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit, match="0"):
        main(["--version"])
    assert capsys.readouterr().out == f"harfusion {version('harfusion')}\n"


@pytest.mark.slow
def test_help_answers_within_a_second_and_a_half() -> None:
    """A fresh interpreter, as a user starts it: no subcommand's module (DVC, torch,
    matplotlib) is imported for the list of commands."""
    code = "import sys; from harfusion.command import main; main(['--help'])"
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    seconds = time.perf_counter() - started
    assert result.returncode == 0 and "sweep" in result.stdout
    assert seconds < 1.5, f"harfusion --help took {seconds:.2f} s"
    listing = "try:\n    main(['--help'])\nexcept SystemExit:\n    print(sorted(sys.modules))"
    loaded = subprocess.run(
        [sys.executable, "-c", code.replace("main(['--help'])", "\n" + listing)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()[-1]
    assert "'torch'" not in loaded and "'dvc'" not in loaded and "'matplotlib'" not in loaded


def test_ctrl_c_outside_the_queue_ends_without_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def interrupted(args) -> int:
        raise KeyboardInterrupt

    import harfusion.experiments.comparison as comparison

    monkeypatch.setattr(comparison, "run", interrupted)
    assert main(["compare"]) == 130
    assert capsys.readouterr().err == "harfusion: interrupted\n"
