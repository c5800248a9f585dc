import json
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel

from harfusion.errors import HarfusionError
from harfusion.params import (
    ARCHITECTURE,
    RESUME_MAY_CHANGE,
    SWEPT,
    TRAINED_BY,
    Params,
    Strategy,
    load_params,
    trained_by,
)

ROOT = Path(__file__).resolve().parents[1]


def test_committed_params_are_valid_and_complete() -> None:
    params = load_params(ROOT / "params.yaml")
    assert params.fusion in {"early", "late", "hybrid"}
    committed = yaml.safe_load((ROOT / "params.yaml").read_text())
    # every section a user can -S into is written out in params.yaml
    assert set(committed) == set(Params.model_fields)


def test_schema_defaults_equal_params_yaml() -> None:
    """params.yaml is the one source of defaults; code that builds `Params()` must agree."""
    assert Params() == load_params(ROOT / "params.yaml")


def test_params_know_no_dataset() -> None:
    """params.py imports no dataset module: the house's one arrow back up is gone."""
    source = (ROOT / "src/harfusion/params.py").read_text()
    assert "harfusion.data" not in source
    assert Params().modalities == "all" and Params().dataset.channel_groups == {}


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "key", "why"),
    [
        ("fusoin: early\n", "fusoin", "unknown key"),
        ("split:\n  stratgy: shard\n", "split.stratgy", "unknown key"),
        ("chunk_size: 0\n", "chunk_size", "greater than or equal"),
        ("chunk_size: big\n", "chunk_size", "valid integer"),
        ("fusion: mid\n", "fusion", "'early', 'late' or 'hybrid'"),
        ("modalities: every\n", "modalities", "'all'"),  # names: checked against the dataset
        ("modalities: []\n", "modalities", "at least 1"),
        ("split:\n  train: 0.8\n", "split", "must be 1"),
        ("heads: 3\n", "<top level>", "must divide"),
        # Issue 16: each of these was accepted and crashed a minute later with a traceback.
        ("seed: -1\n", "seed", "greater than or equal to 0"),
        ("seed: 4294967296\n", "seed", "less than or equal to 4294967295"),
        ("split:\n  seed: -3\n", "split.seed", "greater than or equal to 0"),
        ("train:\n  cpu_threads: 0\n", "train.cpu_threads", "at least 1"),
        ("train:\n  cpu_threads: many\n", "train.cpu_threads", "'auto'"),
        (
            "model:\n  front:\n    motion: {channels: [8], strides: [0]}\n",
            "model.front.motion.strides.0",
            "greater than or equal",
        ),
        (
            "model:\n  front:\n    slow: {channels: [0], strides: [8]}\n",
            "model.front.slow.channels.0",
            "greater than",
        ),
        (
            "model:\n  front:\n    waveform: {channels: [8, 8], strides: [8]}\n",
            "model.front.waveform",
            "same length",
        ),
        (
            "model:\n  front:\n    motoin: {channels: [8], strides: [8]}\n",
            "model.front.motoin",
            "unknown key",
        ),
        ("data:\n  dataset: /tmp/mine.yaml\n", "data.dataset", "datasets/mine.yaml"),
        ("data:\n  dataset: ../mine.yaml\n", "data.dataset", "goes in datasets/"),
        ("dataset:\n  channel_groups: {fast: [acc16]}\n", "dataset.channel_groups", "motion"),
        ("train:\n  limit_train_batches: 0\n", "train.limit_train_batches", "fraction in (0, 1]"),
        ("train:\n  limit_train_batches: 1.5\n", "train.limit_train_batches", "whole number"),
        ("train:\n  devices: 0\n", "train.devices", "at least 1"),
        ("train:\n  devices: '0,1'\n", "train.devices", "'auto'"),
        ("train:\n  strategy: dpp\n", "train.strategy", "'ddp'"),
        ("train:\n  min_epochs: 5\n  max_epochs: 3\n", "train", "train.min_epochs=5 exceeds"),
        ("dataset:\n  batch_size: 1\n", "<top level>", "dataset.batch_size=1 needs model.norm"),
        ("preprocess:\n  sessions: [Protocol, Protocol]\n", "preprocess.sessions", "repeat"),
        ("preprocess:\n  sessions: [../x]\n", "preprocess.sessions", "folder name"),
    ],
)
def test_bad_params_name_the_key(tmp_path: Path, text: str, key: str, why: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(HarfusionError) as info:
        load_params(path)
    message = str(info.value)
    assert len(message.splitlines()) == 1
    assert message.startswith(f"{path}: {key}: ")
    assert why in message


def test_accepted_edge_values_validate() -> None:
    """Control: the rules above reject only the impossible."""
    Params.model_validate(
        {
            "seed": 0,
            "split": {"seed": 2**32 - 1},
            "train": {"cpu_threads": 1, "devices": 1, "limit_train_batches": 3},
            "dataset": {"batch_size": 1},
            "model": {"norm": "group", "front": {"motion": {"channels": [8], "strides": [1]}}},
        }
    )
    Params.model_validate({"train": {"min_epochs": 3, "max_epochs": 3, "strategy": "ddp_spawn"}})


def test_strategies_are_lightnings() -> None:
    """The schema lists Lightning's strategies without importing Lightning; keep them equal."""
    from lightning.pytorch.strategies import StrategyRegistry

    need_a_device = {"single_tpu", "single_xla"}  # a TypeError when named as a string
    registry = set(StrategyRegistry.available_strategies())
    assert set(Strategy.__args__) == {"auto", *registry - need_a_device}


def test_not_a_mapping(tmp_path: Path) -> None:
    with pytest.raises(HarfusionError, match="mapping"):
        load_params(_write(tmp_path, "- 1\n- 2\n"))


def test_stride_defaults_to_chunk_size() -> None:
    assert Params(chunk_size=256).stride == 256
    assert Params.model_validate({"chunk_size": 256, "dataset": {"chunk_stride": 64}}).stride == 64


def test_sweep_precheck_prints_one_line_per_bad_override(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """It printed pydantic's raw dump, and let values the schema accepted crash in the queue."""
    from harfusion.command import main

    argv = ["sweep", "--dry-run", "--only", "heads-8", "-S", "train.devices=0", "-S", "seed=-1"]
    files = ["--ablations", str(ROOT / "ablations.yaml"), "--params", str(ROOT / "params.yaml")]
    with pytest.raises(SystemExit, match="1"):
        main(argv + files)
    err = capsys.readouterr().err.splitlines()
    prefix = f"{ROOT / 'params.yaml'} with heads-8's -S"
    assert err == [
        f"error: {prefix}: seed: Input should be greater than or equal to 0 (got -1)",
        f"{prefix}: train.devices: must be 'auto' or at least 1 (got 0)",
    ]


def test_the_train_stage_depends_on_the_params_that_identify_a_model() -> None:
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    assert stages["train"]["params"] == list(TRAINED_BY)
    assert set(ARCHITECTURE) <= set(TRAINED_BY)  # what shapes the network tells models apart
    assert {key.split(".")[0] for key in RESUME_MAY_CHANGE} <= set(TRAINED_BY)
    # every top-level param that is no section is swept, and shown by reports
    scalars = {k for k, f in Params.model_fields.items() if not isinstance(f.default, BaseModel)}
    assert {*SWEPT, "seed"} == scalars


def test_resume_fingerprints_hash_what_the_dataset_move_hashed() -> None:
    """Checkpoints of runs killed before the declaration still resume: the hashed params are
    the very dict the fingerprint hashed then; how to resume is no part of them."""
    for params in (
        Params(),
        Params.model_validate({"fusion": "early", "train": {"resume": True, "max_epochs": 3}}),
    ):
        before = params.model_dump(include={"seed", "fusion", "heads", "modalities", "dataset"})
        before["data"] = {"dataset": params.data.dataset}
        before |= params.model_dump(include={"model", "train"}, exclude={"train": {"resume"}})
        assert json.dumps(trained_by(params), sort_keys=True) == json.dumps(before, sort_keys=True)
    resumed = Params.model_validate({"train": {"resume": True}})
    assert trained_by(resumed) == trained_by(Params())
    longer = Params.model_validate({"train": {"max_epochs": 31}})
    assert trained_by(longer) != trained_by(Params())
    assert trained_by(Params.model_validate({"chunk_size": 256})) == trained_by(Params())
    other = Params.model_validate({"data": {"dataset": "mhealth"}})
    assert trained_by(other) != trained_by(Params())


def test_a_model_files_architecture_is_what_it_was() -> None:
    from harfusion.data.description import load_description
    from harfusion.models.model_file import architecture

    params = Params.model_validate({"fusion": "late", "modalities": ["imu_hand", "heart_rate"]})
    inputs = load_description("pamap2").inputs(params.modalities, params.dataset.channel_groups)
    keys = ("fusion", "heads", "model")
    before = {k: v for k, v in params.model_dump().items() if k in keys} | {
        "modalities": ["imu_hand", "heart_rate"],
        "channel_groups": inputs.groups,
    }
    assert list(architecture(params, inputs).items()) == list(before.items())  # same order
