"""Nothing we ship unpickles arbitrary objects or hands a string to a shell.

A static scan of every module under src/, stages/ and benchmarks/ keeps the rules from eroding
(a new `torch.load` without `weights_only=True` fails CI, with file:line), and behavioural tests
show the loaders refuse a file whose unpickling would run code.
"""

from __future__ import annotations

import ast
import pickle
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from harfusion.data.dataset import LegacyNpyWindows, ShardWindows, load_tensor_shard
from harfusion.errors import HarfusionError
from harfusion.layout import MODEL_FILE
from harfusion.models.model_file import load_model, model_card
from harfusion.params import Params
from harfusion.training.fit import read_checkpoint
from tests.helpers import PAMAP2, pamap2_channels, pamap2_inputs, pamap2_model

REPO = Path(__file__).resolve().parents[1]
SCANNED = ("src", "stages", "benchmarks")

TORCH_LOADS = frozenset({"torch.load", "torch.serialization.load"})
YAML_ALLOWED = frozenset({"safe_load", "safe_load_all", "safe_dump", "safe_dump_all", "YAMLError"})
SUBPROCESS_ARGV = frozenset(
    {"subprocess.run", "subprocess.call", "subprocess.check_call", "subprocess.check_output"}
    | {"subprocess.Popen"}
)
SHELL_ONLY = frozenset(
    {"os.system", "os.popen", "subprocess.getoutput", "subprocess.getstatusoutput"}
)
PICKLE_LOADS = frozenset(
    {"pickle.load", "pickle.loads", "pickle.Unpickler", "dill.load", "dill.loads"}
    | {"joblib.load", "shelve.open", "marshal.load", "marshal.loads"}
)
NUMPY_LOADS = frozenset({"numpy.load"})
SEQUENCE_TYPES = frozenset({"list", "tuple", "List", "Tuple", "Sequence"})


@dataclass(frozen=True, order=True)
class Offence:
    path: str
    line: int
    rule: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.rule}"


class _Scanner(ast.NodeVisitor):
    """Resolve names through the module's imports, then apply the rules to calls and references."""

    def __init__(self, path: str, tree: ast.Module) -> None:
        self.path = path
        self.offences: list[Offence] = []
        self.seen: Counter[str] = Counter()  # calls found per rule: the scan is not vacuous
        self.aliases: dict[str, str] = {}
        # name → whether each of its bindings is an argument list; a name is trusted as argv
        # only when every binding is (so `cmd = "ls"` anywhere makes `run(cmd)` an offence).
        self.bindings: dict[str, list[bool]] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.arg):
                self._bind(node.arg, _is_sequence_type(node.annotation))
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                self._bind(node.target.id, _is_sequence_type(node.annotation))
            elif isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        self._bind(target.id, self._is_argv(node.value, names=False))
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.asname:
                        self.aliases[alias.asname] = alias.name
                    else:
                        root = alias.name.split(".")[0]
                        self.aliases[root] = root
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                for alias in node.names:
                    name = f"{node.module}.{alias.name}"
                    self.aliases[alias.asname or alias.name] = name
                    self._check_reference(name, node)

    def _bind(self, name: str, is_argv: bool) -> None:
        self.bindings.setdefault(name, []).append(is_argv)

    def _is_argv(self, node: ast.expr | None, names: bool = True) -> bool:
        """A list of arguments, never one command string: literal, comprehension, list(...),
        their concatenation, or (with `names`) a name only ever bound or annotated as such."""
        if isinstance(node, ast.List | ast.Tuple | ast.ListComp):
            return True
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            return self._is_argv(node.left, names) and self._is_argv(node.right, names)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            return node.func.id in {"list", "tuple"}
        if names and isinstance(node, ast.Name):
            kinds = self.bindings.get(node.id, [])
            return bool(kinds) and all(kinds)
        return False

    def _flag(self, node: ast.AST, rule: str) -> None:
        self.offences.append(Offence(self.path, getattr(node, "lineno", 0), rule))

    def _qualified(self, node: ast.expr) -> str | None:
        if isinstance(node, ast.Name):
            return self.aliases.get(node.id)
        if isinstance(node, ast.Attribute):
            base = self._qualified(node.value)
            return f"{base}.{node.attr}" if base else None
        return None

    def _check_reference(self, name: str, node: ast.AST) -> None:
        module, _, attr = name.rpartition(".")
        if module == "yaml" and attr not in YAML_ALLOWED:
            self._flag(node, f"yaml.{attr}: only yaml.safe_load / yaml.safe_dump")
        elif name in SHELL_ONLY:
            self._flag(node, f"{name}: runs a shell; use subprocess with an argument list")
        elif name in PICKLE_LOADS:
            self._flag(node, f"{name}: unpickles arbitrary objects")

    def visit_Attribute(self, node: ast.Attribute) -> None:
        name = self._qualified(node)
        if name:
            self._check_reference(name, node)
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        name = self._qualified(node.func)
        keywords = {k.arg: k.value for k in node.keywords if k.arg}
        if name in TORCH_LOADS:
            self.seen["torch.load"] += 1
            if not _is_literal(keywords.get("weights_only"), True):
                self._flag(node, f"{name} without literal weights_only=True")
        elif name in SUBPROCESS_ARGV:
            self.seen["subprocess"] += 1
            if "shell" in keywords and not _is_literal(keywords["shell"], False):
                self._flag(node, f"{name} with shell= other than literal False")
            argv = node.args[0] if node.args else keywords.get("args")
            if not self._is_argv(argv):
                self._flag(node, f"{name}: first argument is not known to be an argument list")
        elif name in NUMPY_LOADS:
            self.seen["numpy.load"] += 1
            if "allow_pickle" in keywords and not _is_literal(keywords["allow_pickle"], False):
                self._flag(node, f"{name} with allow_pickle other than literal False")
        self.generic_visit(node)


def _is_literal(node: ast.expr | None, value: bool) -> bool:
    return isinstance(node, ast.Constant) and node.value is value


def _is_sequence_type(annotation: ast.expr | None) -> bool:
    """`list[str]`, `Sequence[str]`, `tuple[str, ...]` (also dotted, e.g. `typing.List`)."""
    if isinstance(annotation, ast.Subscript):
        annotation = annotation.value
    if isinstance(annotation, ast.Attribute):
        return annotation.attr in SEQUENCE_TYPES
    return isinstance(annotation, ast.Name) and annotation.id in SEQUENCE_TYPES


def scan_source(source: str, path: str) -> _Scanner:
    tree = ast.parse(source, filename=path)
    scanner = _Scanner(path, tree)
    scanner.visit(tree)
    return scanner


def scan_repo() -> tuple[list[Offence], Counter[str], list[str]]:
    offences: list[Offence] = []
    seen: Counter[str] = Counter()
    files = sorted(p for root in SCANNED for p in (REPO / root).rglob("*.py"))
    for path in files:
        relative = path.relative_to(REPO).as_posix()
        scanner = scan_source(path.read_text(), relative)
        offences += scanner.offences
        seen += scanner.seen
    return sorted(offences), seen, [p.relative_to(REPO).as_posix() for p in files]


def test_source_tree_loads_and_spawns_safely() -> None:
    """torch.load(weights_only=True), yaml safe_* only, no shell, argv lists, no pickle loads."""
    offences, seen, files = scan_repo()
    assert not offences, "unsafe calls:\n" + "\n".join(map(str, offences))
    # Not vacuous: the scan read our loaders and saw the calls it is meant to police.
    assert {"src/harfusion/data/dataset.py", "src/harfusion/training/fit.py"} <= set(files)
    assert any(f.startswith("stages/") for f in files)
    assert seen["torch.load"] >= 3 and seen["subprocess"] >= 2 and seen["numpy.load"] >= 1


PLANTED = """\
import os, pickle, subprocess, yaml
import numpy as np
import torch as T
from torch import load
from yaml import unsafe_load
T.load("m.pt")
load("m.pt", weights_only=False)
T.serialization.load("m.pt", weights_only=flag)
yaml.load(text, Loader=yaml.Loader)
yaml.full_load(text)
subprocess.run("ls -l", shell=True)
subprocess.check_output(f"ls {where}")
subprocess.Popen(args=command)
os.system("ls")
reader = os.popen
np.load("x.npy", allow_pickle=True)
pickle.loads(blob)
def spawn(command: str, argv: list[str]):
    subprocess.run(command)
    subprocess.run(argv)
    shell_line = "ls " + where
    subprocess.call(shell_line)
"""
PLANTED_OFFENCES = {
    (5, "yaml.unsafe_load"),
    (6, "torch.load without"),
    (7, "torch.load without"),
    (8, "torch.serialization.load without"),
    (9, "yaml.load"),
    (9, "yaml.Loader"),
    (10, "yaml.full_load"),
    (11, "subprocess.run with shell"),
    (11, "subprocess.run: first argument"),
    (12, "subprocess.check_output: first argument"),
    (13, "subprocess.Popen: first argument"),
    (14, "os.system"),
    (15, "os.popen"),
    (16, "numpy.load with allow_pickle"),
    (17, "pickle.loads"),
    (19, "subprocess.run: first argument"),
    (22, "subprocess.call: first argument"),
}
CLEAN = """\
import subprocess, sys, yaml
import numpy as np
import torch
torch.load("m.pt", weights_only=True, map_location="cpu")
yaml.safe_load(yaml.safe_dump({"a": 1}))
subprocess.run([sys.executable, "-m", "dvc", "exp", "show"], shell=False, check=True)
np.load("x.npy", allow_pickle=False)
def spawn(command: list[str], cwd: str):
    subprocess.Popen(command, cwd=cwd)
    argv = [sys.executable, "-V"]
    subprocess.check_output(argv + ["--help"], text=True)
    subprocess.call(list(command))
"""


def test_scanner_flags_planted_offences() -> None:
    """Control: every kind of offence is reported with its line, and the safe forms are not."""
    found = scan_source(PLANTED, "planted.py").offences
    assert all(str(o).startswith(f"planted.py:{o.line}: ") for o in found)
    reported = {(o.line, o.rule) for o in found}
    for line, prefix in PLANTED_OFFENCES:
        assert any(n == line and r.startswith(prefix) for n, r in reported), (line, prefix)
    assert len(found) == len(PLANTED_OFFENCES), "\n".join(map(str, found))
    assert scan_source(CLEAN, "clean.py").offences == []


class _RunsCode:
    """Unpickling this creates `marker`: stands in for any code an attacker's file would run."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (exec, (f"open({str(self.marker)!r}, 'w').close()",))


def _write_payload(path: Path, marker: Path, kind: str) -> None:
    payload = {"features": _RunsCode(marker), "architecture": _RunsCode(marker)}
    if kind.startswith("pickle"):
        # torch's refusal of protocol 5 words it differently: its reason on a line of its own
        path.write_bytes(pickle.dumps(payload, protocol=5 if kind == "pickle5" else 2))
    else:
        torch.save(payload, path, _use_new_zipfile_serialization=kind == "torch-zip")


KINDS = ["torch-zip", "torch-legacy", "pickle", "pickle5"]


@pytest.mark.parametrize("kind", KINDS)
def test_payload_runs_code_when_loaded_unsafely(tmp_path: Path, kind: str) -> None:
    """Control: the payload is live, so the refusals below are not refusals of a dud."""
    path, marker = tmp_path / "evil.pt", tmp_path / "ran"
    _write_payload(path, marker, kind)
    if kind.startswith("pickle"):
        pickle.loads(path.read_bytes())
    else:
        torch.load(path, weights_only=False)
    assert marker.exists()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("mmap", [False, True])
def test_tensor_shard_loader_refuses_code(tmp_path: Path, kind: str, mmap: bool) -> None:
    path, marker = tmp_path / "shard.pt", tmp_path / "ran"
    _write_payload(path, marker, kind)
    with pytest.raises(HarfusionError, match="not a readable tensor shard"):
        load_tensor_shard(path, mmap=mmap)
    assert not marker.exists()


@pytest.mark.parametrize("prefetch", [True, False])
def test_dataset_refuses_a_poisoned_shard(tensors: Path, prefetch: bool) -> None:
    """The path training takes: a manifest-listed shard replaced by a payload."""
    tensor_dir = tensors / "tensors"
    data = ShardWindows(tensor_dir, "train", pamap2_channels(["imu_hand"], ["acc16"]))
    shard = int(data.windows[0, 0])
    marker = tensors / "ran"
    _write_payload(tensor_dir / data.shards[shard]["path"], marker, "torch-zip")
    with pytest.raises(HarfusionError, match="not a readable tensor shard"):
        fresh = ShardWindows(
            tensor_dir, "train", pamap2_channels(["imu_hand"], ["acc16"]), prefetch
        )
        fresh[0]
    assert not marker.exists()


def _params() -> Params:
    return Params.model_validate({"chunk_size": 64, "fusion": "late"})


@pytest.mark.parametrize("kind", KINDS)
def test_model_loader_refuses_code(tmp_path: Path, kind: str) -> None:
    marker = tmp_path / "ran"
    _write_payload(tmp_path / MODEL_FILE, marker, kind)
    with pytest.raises(HarfusionError, match="not a harfusion model file"):
        load_model(tmp_path / MODEL_FILE)
    assert not marker.exists()


def test_model_loader_accepts_a_plain_model(tmp_path: Path) -> None:
    """Control: weights_only=True still loads what training writes (so refusal is specific)."""
    params = _params()
    written = _saved(params)
    torch.save(written, tmp_path / MODEL_FILE)
    loaded, saved = load_model(tmp_path / MODEL_FILE)
    assert saved["classes"] == [1, 4, 5]
    for key, value in written["members"][0].items():
        assert torch.equal(loaded.ensemble.members[0].state_dict()[key], value)


def test_legacy_npy_refuses_object_arrays(tmp_path: Path) -> None:
    """The legacy layout loads with allow_pickle=False: an object array never unpickles."""
    marker = tmp_path / "ran"
    poisoned = np.empty(2, dtype=object)
    poisoned[:] = [_RunsCode(marker), _RunsCode(marker)]
    np.save(tmp_path / "val_imu_hand.npy", np.zeros((2, 32, 9), np.float32))
    np.save(tmp_path / "val_labels.npy", poisoned, allow_pickle=True)
    with pytest.raises(
        HarfusionError, match=r"val_labels\.npy: holds pickled Python objects"
    ) as info:
        LegacyNpyWindows(tmp_path, "val", ["imu_hand"])
    assert "\n" not in str(info.value) and "allow_pickle" not in str(info.value)
    assert not marker.exists()


@pytest.mark.parametrize("kind", KINDS)
def test_refusals_do_not_pass_on_torchs_advice(tmp_path: Path, kind: str) -> None:
    """Torch's refusal says to load again with weights_only=False, i.e. to run the payload."""
    for name in (MODEL_FILE, "shard.pt", "last.ckpt"):
        _write_payload(tmp_path / name, tmp_path / "ran", kind)
    for load in (
        lambda: load_model(tmp_path / MODEL_FILE),
        lambda: load_tensor_shard(tmp_path / "shard.pt"),
        lambda: load_tensor_shard(tmp_path / "shard.pt", mmap=True),
        lambda: read_checkpoint(tmp_path / "last.ckpt"),  # a resumed training's
    ):
        with pytest.raises(HarfusionError) as info:
            load()
        message = str(info.value)
        assert "weights_only" not in message and "trust" not in message, message
        assert "succeed" not in message and "safe_globals" not in message, message
        assert "\n" not in message and "()" not in message, message
        if "mmap can only be used" not in message:  # mmap reads torch's zip files only
            assert "pickled Python objects" in message and "never loaded" in message
    assert not (tmp_path / "ran").exists()


def _saved(params: Params) -> dict:
    """A model file as training writes it (untrained weights)."""
    model = pamap2_model(params, 3)
    inputs = pamap2_inputs(params)
    stats = {m: (torch.zeros(c), torch.ones(c)) for m, c in inputs.channels.items()}
    card = model_card(
        params,
        inputs,
        PAMAP2,
        [1, 4, 5],
        ["lying", "walking", "running"],
        64,
        stats,
        {"method": "temperature", "temperature": 1.5},
        {"fingerprint": "sha256:0"},
        {"epochs": 1, "best_val_loss": 0.5},
    )
    return card | {"members": [model.state_dict()]}


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda saved: [1, 2, 3], "not a harfusion model file .holds a list, not a mapping"),
        (lambda saved: {"weights": 1}, "not a harfusion model file .no 'format'"),
        (
            lambda saved: {k: v for k, v in saved.items() if k != "architecture"},
            "no 'architecture'",
        ),
        (lambda saved: saved | {"classes": "1,4,5"}, "'classes' is a str"),
        (lambda saved: saved | {"members": [{"w": [1.0]}]}, "a member's weights are not a"),
        (lambda saved: saved | {"members": []}, "no weights of each member"),
        (
            lambda saved: saved | {"channels": saved["channels"] | {"imu_hand": "9"}},
            "'channels' is not a positive",
        ),
        (
            lambda saved: saved | {"normalisation": saved["normalisation"] | {"std": {}}},
            "'normalisation' has no std per modality",
        ),
        (
            lambda saved: saved | {"calibration": {"method": "vector", "weights": [1.0]}},
            "calibration 'vector', which this harfusion does not know: update harfusion",
        ),
        (
            lambda saved: saved | {"calibration": {"method": "temperature", "temperature": 0}},
            "calibration temperature 0 is not a positive number",
        ),
        (
            lambda saved: saved | {"preprocessing": {"sampling_rate_hz": 100.0}},
            "no 'channel_groups'",
        ),
        (
            lambda saved: saved | {"classes": [1], "class_names": ["lying"]},
            "weights do not fit .*need at least 2 classes",
        ),
        (
            lambda saved: saved | {"members": [dict(list(saved["members"][0].items())[1:])]},
            "weights do not fit .*Missing key",
        ),
        (
            lambda saved: saved | {"classes": [1, 4, 5, 6], "class_names": list("abcd")},
            "weights do not fit .*size mismatch",
        ),
        (
            lambda saved: {"state_dict": {}, "architecture": {}, "classes": [1, 4]},
            "model file format 1, older than this harfusion reads .3.: retrain it",
        ),
        (
            lambda saved: saved | {"format_version": 4},
            "model file format 4, newer than this harfusion reads .3.: update harfusion",
        ),
    ],
    ids=[
        "list",
        "foreign",
        "no-arch",
        "classes-str",
        "weights-list",
        "no-members",
        "channels-str",
        "no-std",
        "calibration-unknown",
        "temperature-0",
        "preprocessing",
        "one-class",
        "missing",
        "shape",
        "format-1",
        "format-4",
    ],
)
def test_model_file_of_the_wrong_structure_is_one_line(tmp_path: Path, damage, reason) -> None:
    """These raised KeyError / TypeError / RuntimeError tracebacks in evaluate."""
    params = _params()
    torch.save(damage(_saved(params)), tmp_path / MODEL_FILE)
    with pytest.raises(HarfusionError, match=reason) as info:
        load_model(tmp_path / MODEL_FILE)
    assert "\n" not in str(info.value)
    assert str(info.value).startswith(f"{tmp_path / MODEL_FILE}: ")
