"""dvc.yaml lists, for each stage, exactly the library code its script runs, so an edit reruns
exactly the stages it changes: derived from the imports with `ast`, transitively."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"


def _module_file(module: str) -> Path | None:
    path = SRC / f"{module.replace('.', '/')}.py"
    package = SRC / module.replace(".", "/") / "__init__.py"
    return path if path.exists() else package if package.exists() else None


def _imported(path: Path) -> set[Path]:
    """The harfusion modules `path` imports (`from harfusion.x import y` may name a module y)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("harfusion"):
            names = [node.module or ""] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names if a.name.startswith("harfusion")]
        found |= {file for name in names if (file := _module_file(name))}
    return found


def code_deps(script: Path) -> set[str]:
    """Every harfusion source file `script` runs, following imports transitively."""
    seen: set[Path] = set()
    todo = [script]
    while todo:
        for module in _imported(todo.pop()) - seen:
            seen.add(module)
            todo.append(module)
    return {p.relative_to(ROOT).as_posix() for p in seen if p.name != "__init__.py"}


STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_stage_deps_are_the_code_it_runs(stage: str) -> None:
    listed = {d for d in STAGES[stage]["deps"] if d.startswith("src/") and d.endswith(".py")}
    assert f"stages/{stage}.py" in STAGES[stage]["deps"]
    assert sorted(listed) == sorted(code_deps(ROOT / "stages" / f"{stage}.py"))


def test_a_removed_dep_is_noticed() -> None:
    """The derivation finds what a stage imports only indirectly (tensorize → preprocess)."""
    derived = code_deps(ROOT / "stages" / "tensorize.py")
    assert {"src/harfusion/data/tensorize.py", "src/harfusion/errors.py"} <= derived
    assert "src/harfusion/training/fit.py" not in derived
