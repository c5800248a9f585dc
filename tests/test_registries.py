"""One registry per kind of choice: it names the choices, the params schema offers exactly those
(params.py imports no model or data code, so a test holds the two equal), and each place that
builds from a name refuses an unknown one, naming the choices (an unknown fusion used to become
hybrid, an unknown baseline model gradient boosting, an unknown split strategy `shard`)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import get_args

import pytest
from pydantic import BaseModel

from harfusion.data.splits import STRATEGIES, write_splits
from harfusion.errors import HarfusionError
from harfusion.evaluation.baseline import ESTIMATORS, make_estimator
from harfusion.models.encoders import ENCODERS, NORMS, build_encoder
from harfusion.models.fusion import FUSIONS
from harfusion.params import BaselineParams, ModelParams, Params, SplitParams
from harfusion.registry import Registry, UnknownChoice
from tests.helpers import pamap2_model


@pytest.mark.parametrize(
    ("registry", "schema", "key"),
    [
        (FUSIONS, Params, "fusion"),
        (ENCODERS, ModelParams, "encoder"),
        (NORMS, ModelParams, "norm"),
        (ESTIMATORS, BaselineParams, "model"),
        (STRATEGIES, SplitParams, "strategy"),
    ],
    ids=["fusion", "encoder", "norm", "baseline", "split"],
)
def test_the_schema_offers_exactly_the_registered_choices(
    registry: Registry, schema: type[BaseModel], key: str
) -> None:
    assert get_args(schema.model_fields[key].annotation) == tuple(registry)
    assert schema.model_fields[key].default in registry


def _refused(kind: str, name: str, known: Registry) -> str:
    return re.escape(f"unknown {kind} {name!r}; the choices are {', '.join(known)}")


def test_an_unknown_fusion_is_refused() -> None:
    """`model_copy` skips validation, as a params object built by code may."""
    params = Params().model_copy(update={"fusion": "mid"})
    with pytest.raises(UnknownChoice, match=_refused("fusion", "mid", FUSIONS)):
        pamap2_model(params, 3)


@pytest.mark.parametrize(
    ("key", "kind", "registry"), [("encoder", "encoder", ENCODERS), ("norm", "norm", NORMS)]
)
def test_an_unknown_encoder_or_norm_is_refused(key: str, kind: str, registry: Registry) -> None:
    model = ModelParams().model_copy(update={key: "rnn"})
    with pytest.raises(UnknownChoice, match=_refused(kind, "rnn", registry)):
        build_encoder("motion", 9, model)


def test_an_unknown_baseline_model_is_refused() -> None:
    baseline = BaselineParams().model_copy(update={"model": "svm"})
    with pytest.raises(UnknownChoice, match=_refused("baseline model", "svm", ESTIMATORS)):
        make_estimator(baseline, 0)


def test_an_unknown_split_strategy_is_refused_before_anything_is_read(tmp_path: Path) -> None:
    split = SplitParams().model_copy(update={"strategy": "random"})
    with pytest.raises(UnknownChoice, match=_refused("split strategy", "random", STRATEGIES)):
        write_splits(tmp_path / "no-shards", tmp_path / "splits", split)
    assert not (tmp_path / "splits").exists()


def test_a_registry_is_a_mapping_whose_misses_are_one_line_errors() -> None:
    colours = Registry("colour", {"red": 1, "blue": 2})
    assert list(colours) == ["red", "blue"] and colours["blue"] == 2
    assert "red" in colours and "green" not in colours and colours.get("green") is None
    with pytest.raises(HarfusionError) as info:
        colours["green"]
    assert str(info.value) == "unknown colour 'green'; the choices are red, blue"
