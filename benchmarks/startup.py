"""Start-up of each stage's process, and a no-op `dvc repro`.

    uv run python benchmarks/startup.py                  # this checkout, after `uv run dvc repro`
    uv run python benchmarks/startup.py --repo DIR       # another checkout (end_to_end.py does)
    uv run python benchmarks/startup.py --smoke          # one stage; for CI

A stage's start-up is its process importing the stage script without running it; the baseline
is a process importing only the third-party packages that script pulls in, so the ratio is what
our own modules add. The no-op repro's baseline is `dvc --version`, DVC's own start-up.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml
from _common import ROOT, Row, parser, report, run_child

PROBE = """
import json, runpy, sys
sys.path.insert(0, "src")
runpy.run_path({script!r}, run_name="startup")
files = {{n: getattr(m, "__file__", None) or "" for n, m in list(sys.modules.items())}}
names = {{n.split(".")[0] for n, f in files.items() if "-packages" in f}} - {{"harfusion"}}
print("modules:", json.dumps(sorted(n for n in names if not n.startswith("_"))))
"""


def stage_scripts(repo: Path) -> dict[str, str]:
    stages = yaml.safe_load((repo / "dvc.yaml").read_text())["stages"]
    return {name: stage["cmd"].split()[-1] for name, stage in stages.items()}


def third_party(repo: Path, script: str) -> list[str]:
    probe = PROBE.format(script=script)
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=repo, capture_output=True, text=True, check=True
    ).stdout
    line = next(line for line in out.splitlines() if line.startswith("modules:"))
    return json.loads(line.removeprefix("modules:"))


def dvc(repo: Path, *args: str) -> float:
    return run_child([str(Path(sys.executable).with_name("dvc")), *args], cwd=repo).seconds


def main() -> None:
    args = parser(__doc__ or "")
    args.add_argument("--repo", type=Path, default=ROOT)
    options = args.parse_args()
    repo: Path = options.repo
    scripts = stage_scripts(repo)
    if options.smoke:
        scripts = dict(list(scripts.items())[:1])
    rows = []
    for name, script in scripts.items():
        modules = third_party(repo, script)
        ours = run_child([sys.executable, "-c", PROBE.format(script=script)], cwd=repo)
        bare = run_child([sys.executable, "-c", "import " + ", ".join(modules or ["sys"])])
        rows.append(Row(f"stage {name}: start-up vs its imports", ours.seconds, bare.seconds,
                        "s", "<= 5 s"))  # fmt: skip
    dvc_bin = str(Path(sys.executable).with_name("dvc"))
    status = subprocess.run(
        [dvc_bin, "status", "--json"], cwd=repo, capture_output=True, text=True, check=True
    ).stdout
    if not json.loads(status):
        repro = dvc(repo, "repro")
    elif options.smoke:
        repro = dvc(repo, "status")  # nothing reproduced here: time the same up-to-date check
    else:
        raise SystemExit(f"{repo}: pipeline not up to date; run `uv run dvc repro` first")
    rows.append(Row("no-op dvc repro vs dvc --version", repro, dvc(repo, "--version"), "s",
                    "<= 3 s"))  # fmt: skip
    report("start-up", rows)


if __name__ == "__main__":
    main()
