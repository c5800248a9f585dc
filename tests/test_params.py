from pathlib import Path

import pytest
import yaml

from harfusion.errors import HarfusionError
from harfusion.pamap2 import IMU_CHANNEL_GROUPS
from harfusion.params import ChannelGroup, Params, load_params

ROOT = Path(__file__).resolve().parents[1]


def test_committed_params_are_valid_and_complete() -> None:
    params = load_params(ROOT / "params.yaml")
    assert params.fusion in {"early", "late", "hybrid"}
    committed = yaml.safe_load((ROOT / "params.yaml").read_text())
    # every section a user can -S into is written out in params.yaml
    assert set(committed) == set(Params.model_fields)


def test_channel_groups_match_schema() -> None:
    assert set(ChannelGroup.__args__) == set(IMU_CHANNEL_GROUPS)


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
        ("modalities: [imu_hand, imu_knee]\n", "modalities.1", "imu_knee"),
        ("modalities: []\n", "modalities", "at least 1"),
        ("split:\n  train: 0.8\n", "split", "must be 1"),
        ("heads: 3\n", "<top level>", "must divide"),
    ],
)
def test_bad_params_name_the_key(tmp_path: Path, text: str, key: str, why: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(HarfusionError) as info:
        load_params(path)
    message = str(info.value)
    assert str(path) in message
    assert f"  {key}:" in message
    assert why in message


def test_not_a_mapping(tmp_path: Path) -> None:
    with pytest.raises(HarfusionError, match="mapping"):
        load_params(_write(tmp_path, "- 1\n- 2\n"))


def test_stride_defaults_to_chunk_size() -> None:
    assert Params(chunk_size=256).stride == 256
    assert Params.model_validate({"chunk_size": 256, "dataset": {"chunk_stride": 64}}).stride == 64
