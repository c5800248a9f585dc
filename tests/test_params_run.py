"""Every params file the schema accepts trains; anything else fails there, one line per key.

Hypothesis draws values inside and just outside each bound of the training-related sections
(issue 16: a negative seed, `cpu_threads: 0`, a 0 stride, `limit_train_batches: 0`,
`devices: 0` and unknown strategies validated and then crashed with a traceback).
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from harfusion.errors import HarfusionError
from harfusion.params import Params, PreprocessParams, TrainParams, load_params
from harfusion.training.fit import fit, make_trainer
from tests.helpers import IMU_GROUPS, MODALITIES, PAMAP2, TINY, merge

# Tiny defaults that the drawn values override: one convolution, one epoch.
BASE = merge(
    TINY,
    {"model": {"front": {"motion": {"channels": [8], "strides": [4]}}}, "train": {"max_epochs": 1}},
)
# A line of a schema error: `<file>: <dotted key or <top level>>: why`.
KEY_LINE = re.compile(r"^(?P<source>\S+): (?P<key>[\w.<> ]+): \S")


def conv(high: int) -> st.SearchStrategy[list[int]]:
    return st.lists(st.integers(1, high), min_size=1, max_size=2)


# Per key: values the schema must accept, and values it must refuse (one is tried at a time).
FIELDS: dict[str, tuple[st.SearchStrategy, list[Any]]] = {
    "seed": (st.sampled_from([0, 1, 7, 2**32 - 1]), [-1, 2**32]),
    "fusion": (st.sampled_from(["early", "late", "hybrid"]), ["mid"]),
    "heads": (st.sampled_from([1, 2, 4]), [0, 3]),
    "chunk_size": (st.sampled_from([16, 32, 64]), [15]),
    "modalities": (st.lists(st.sampled_from(MODALITIES), unique=True, min_size=1), [[]]),
    "split.seed": (st.sampled_from([0, 3]), [-1]),
    # Read by other stages than train: only the schema's answer is tried here.
    "data.synthetic.subjects": (
        st.lists(st.integers(0, 2**31 - 1), min_size=1, max_size=3),
        [[-5], [2**31], []],
    ),
    "data.synthetic.seconds_per_activity": (
        st.floats(0.5, 3600),
        [0.0, float("inf"), float("nan"), 1e9],
    ),
    "dataset.chunk_stride": (st.sampled_from([None, 16, 32]), [0]),
    "dataset.batch_size": (st.integers(2, 24), [0]),
    "dataset.channel_groups": (
        st.lists(st.sampled_from(sorted(IMU_GROUPS)), unique=True, min_size=1, max_size=3).map(
            lambda groups: {"motion": groups}
        ),
        [{"motion": []}, {"motion": ["acc16", "acc16"]}, {"fast": ["acc16"]}],
    ),
    "dataset.prefetch_shards": (st.booleans(), []),
    "dataset.gather_on_device": (st.sampled_from(["auto", False]), []),
    "model.encoder": (st.sampled_from(["cnn", "cnn_gru", "cnn_attention"]), ["rnn"]),
    "model.encoder_heads": (st.sampled_from([1, 2, 4]), [0]),
    "model.front.motion": (
        st.integers(1, 8).map(lambda s: {"channels": [8], "strides": [s]}),
        [{"channels": [0], "strides": [4]}, {"channels": [8], "strides": [4, 4]}],
    ),
    "model.front.slow": (
        conv(8).map(lambda c: {"channels": [c[0], c[-1]], "strides": [8, 2]}),
        [{"channels": [8, 0], "strides": [8, 8]}, {"channels": [8], "strides": [0]}],
    ),
    "model.dropout": (st.sampled_from([0.0, 0.5, 0.99]), [1.0]),
    "model.norm": (st.sampled_from(["batch", "group"]), []),
    "train.min_epochs": (st.just(1), [0, 2]),
    "train.max_epochs": (st.just(1), [0]),
    "train.patience": (st.integers(1, 3), [0]),
    # 1e30 diverges: a one-line error naming train.learning_rate, never a NaN model
    "train.learning_rate": (st.sampled_from([1e-4, 2e-3, 0.5, 50.0, 1e30]), [0.0, float("inf")]),
    "train.weight_decay": (st.sampled_from([0.0, 0.1]), [-0.1]),
    "train.label_smoothing": (st.sampled_from([0.0, 0.3]), [1.0]),
    "train.gradient_clip_norm": (st.sampled_from([1e-3, 5.0]), [0.0, float("nan")]),
    "train.modality_dropout": (st.sampled_from([0.0, 0.9]), [1.0]),
    "train.noise_std": (st.sampled_from([0.0, 2.0]), [-1.0]),
    "train.jitter_steps": (st.integers(0, 100), [-1]),
    "train.devices": (st.sampled_from(["auto", 1]), [0, -1, "0,1"]),
    # fsdp needs a GPU and deepspeed its package: named in one line where they cannot run.
    "train.strategy": (st.sampled_from(["auto", "single_device", "fsdp", "deepspeed"]), ["dpp"]),
    "train.cpu_threads": (st.sampled_from(["auto", 1]), [0]),
    "train.limit_train_batches": (st.sampled_from([1.0, 0.5, 2]), [0, 0.0, 1.5]),
    # Newer training params, used when the schema has them.
    "train.monitor": (st.sampled_from(["val_loss", "val_f1_macro"]), ["val_acc"]),
    "train.class_balance": (st.sampled_from(["none", "sampler", "loss"]), ["oversample"]),
    "train.rotation_degrees": (st.sampled_from([0.0, 30.0, 180.0]), [181.0]),
    "train.scale_std": (st.sampled_from([0.0, 0.3]), [1.0]),
    "train.time_warp": (st.sampled_from([0.0, 0.3]), [1.0]),
}
FIELDS = {
    key: value
    for key, value in FIELDS.items()
    if not key.startswith("train.") or key.split(".")[1] in TrainParams.model_fields
}
BREAKABLE = [key for key, (_, bad) in FIELDS.items() if bad]


@st.composite
def params_tree(draw) -> dict[str, Any]:
    """Valid values for a random subset of keys; in about a third of the examples one key
    broken."""
    broken = draw(st.one_of(st.none(), st.none(), st.sampled_from(BREAKABLE)))
    tree = yaml.safe_load(yaml.safe_dump(BASE))
    for dotted, (good, bad) in FIELDS.items():
        if dotted == broken:
            value = draw(st.sampled_from(bad))
        elif draw(st.booleans()):
            value = draw(good)
        else:
            continue
        *sections, leaf = dotted.split(".")
        node = tree
        for section in sections:
            node = node.setdefault(section, {})
        node[leaf] = value
    return tree


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Processed shards and splits of the `tensors` fixture's recordings, tensorized on demand."""
    from harfusion.data.preprocess import preprocess
    from harfusion.data.splits import write_splits
    from harfusion.params import SplitParams
    from tests.helpers import write_recording

    root = tmp_path_factory.mktemp("params_run")
    for subject in range(101, 106):
        segments = [(a, 300 + 37 * subject % 100) for a in (1, 4, 5)]
        write_recording(root / "raw" / "Protocol" / f"subject{subject}.dat", segments, subject)
    preprocess(root / "raw", root / "processed", PreprocessParams(sessions=["Protocol"]), PAMAP2)
    write_splits(root / "processed", root / "splits", SplitParams())
    return root


def tensors_for(root: Path, params: Params) -> Path:
    from harfusion.data.tensorize import tensorize

    name = f"tensors-{params.chunk_size}-{params.stride}-{params.train_stride}"
    out = root / name
    if not out.exists():
        tensorize(
            root / "splits",
            root / "processed",
            out,
            params.chunk_size,
            params.stride,
            params.train_stride,
        )
    return out


@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(tree=params_tree())
def test_params_are_rejected_in_one_line_or_train(data: Path, tree: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        source = work / "params.yaml"
        source.write_text(yaml.safe_dump(tree))
        try:
            params = load_params(source)
        except HarfusionError as error:
            lines = str(error).splitlines()
            for line in lines:
                match = KEY_LINE.match(line)
                assert match and match["source"] == str(source), line
            event("rejected by the schema")
            return
        try:
            summary = fit(params, tensors_for(data, params), work / "models", work / "reports")
        except HarfusionError as error:  # a setting this machine cannot run: named, one line
            message = str(error)
            assert "\n" not in message and any(key in message for key in FIELDS), message
            event("refused at run time")
            return
        assert summary["epochs"] >= 1
        assert (work / "models" / "model.pt").exists()
        event("trained")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine can run on a GPU")
@pytest.mark.parametrize("train", [{"accelerator": "gpu"}, {"strategy": "fsdp"}])
def test_settings_this_machine_cannot_run_are_one_line(train: dict[str, str]) -> None:
    """Lightning's MisconfigurationException / ValueError came out as a traceback."""
    with pytest.raises(HarfusionError) as info:
        make_trainer(Params.model_validate({"train": train}), [], False)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("train.accelerator=") and "Lightning cannot run these here" in message
