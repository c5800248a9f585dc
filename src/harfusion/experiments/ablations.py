"""The configurations of `ablations.yaml` and the DVC experiments they expand into.

A configuration is a name plus `-S` overrides on top of params.yaml. With several seeds it becomes
one experiment per seed, named `<config>-s<seed>`, so the comparison can map every experiment back
to its configuration from the name alone. A group may name no modality and ask for one
configuration per modality of the dataset instead (`per_modality`): `single-imu_hand` on PAMAP2,
`single-ecg` on MHEALTH.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from harfusion.data.description import load_description
from harfusion.errors import HarfusionError
from harfusion.params import Params, describe, load_params

# Experiment names become git refs; keep them to characters no shell or ref syntax cares about.
NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
SEED_SUFFIX = re.compile(r"^(?P<config>.+)-s(?P<seed>\d+)$")
KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")  # a dotted params name


class Group(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    title: str
    axis: str
    reference: str | None = None  # a configuration of another group, shown in this group's figure
    missing_modality: bool = False
    configs: dict[str, dict[str, Any]] = {}
    # One configuration per modality of the dataset, `<group>-<modality>`: these overrides and
    # `modalities: [<modality>]`.
    per_modality: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _some_configs(self) -> Group:
        if not self.configs and self.per_modality is None:
            raise ValueError("a group needs `configs` or `per_modality`")
        if self.configs and self.per_modality is not None:
            raise ValueError("a group has either `configs` or `per_modality`, not both")
        return self

    def expanded(self, name: str, modalities: tuple[str, ...]) -> Group:
        """The group with its per-modality configurations written out."""
        if self.per_modality is None:
            return self
        configs = {f"{name}-{m}": self.per_modality | {"modalities": [m]} for m in modalities}
        return self.model_copy(update={"configs": configs, "per_modality": None})


class Ablations(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    groups: dict[str, Group] = Field(min_length=1)

    @model_validator(mode="after")
    def _names(self) -> Ablations:
        names = [name for group in self.groups.values() for name in group.configs]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"configuration names repeat: {repeated}")
        for name in [*names, *self.groups]:
            if not NAME.match(name) or SEED_SUFFIX.match(name):
                raise ValueError(
                    f"{name!r}: use lowercase letters, digits, '.', '_', '-' and no '-s<digits>' "
                    "ending (reserved for seeds)"
                )
        clashes = sorted(set(names) & set(self.groups))
        if clashes:
            raise ValueError(f"{clashes} name both a group and a configuration")
        for group_name, group in self.groups.items():
            if group.reference is not None and group.reference not in names:
                raise ValueError(
                    f"groups.{group_name}.reference: no configuration {group.reference!r}"
                )
        return self

    @property
    def configs(self) -> list[Config]:
        return [
            Config(name, group_name, overrides)
            for group_name, group in self.groups.items()
            for name, overrides in group.configs.items()
        ]

    def config(self, name: str) -> Config | None:
        return next((config for config in self.configs if config.name == name), None)

    def select(self, only: list[str] | None) -> list[Config]:
        """All configurations, or those named (by configuration or group) in `only`."""
        if not only:
            return self.configs
        unknown = [item for item in only if item not in self.groups and self.config(item) is None]
        if unknown:
            raise HarfusionError(
                f"--only: unknown {unknown}; groups: {', '.join(self.groups)}; "
                f"configurations: {', '.join(c.name for c in self.configs)}"
            )
        return [c for c in self.configs if c.name in only or c.group in only]

    def resolve(self, experiment: str) -> tuple[Config, int | None] | None:
        """The configuration an experiment name belongs to, and the seed its name carries."""
        config = self.config(experiment)
        if config is not None:
            return config, None
        match = SEED_SUFFIX.match(experiment)
        if match and (config := self.config(match["config"])) is not None:
            return config, int(match["seed"])
        return None


@dataclass(frozen=True)
class Config:
    name: str
    group: str
    overrides: dict[str, Any]


@dataclass(frozen=True)
class Run:
    """One experiment to queue: a configuration, and a seed when the sweep repeats seeds."""

    name: str
    config: Config
    overrides: dict[str, Any]

    def set_args(self) -> list[str]:
        """`-S key=value` arguments for `dvc exp run`; values in YAML, as DVC parses them."""
        return [
            arg
            for key, value in self.overrides.items()
            for arg in ("-S", f"{key}={yaml_value(value)}")
        ]


def yaml_value(value: Any) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, width=10_000)
    return text.removesuffix("\n").removesuffix("\n...").strip()


def parse_set(items: list[str]) -> dict[str, Any]:
    """`key=value` strings (as for `dvc exp run -S`) into a dict with YAML-typed values. Plain
    YAML only: a tag such as `!!python/object` is refused, as DVC's own loader refuses it."""
    overrides = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not KEY.fullmatch(key):
            raise HarfusionError(f"-S {item!r}: expected key=value, the key a dotted params name")
        try:
            overrides[key] = yaml.safe_load(value)
        except yaml.YAMLError as exc:
            raise HarfusionError(f"-S {item!r}: not a YAML value ({one_line(exc)})") from None
    return overrides


def command_overrides(items: list[str], ensemble: int | None) -> dict[str, Any]:
    """A command's `-S` items and its `--ensemble` (None: not given) as overrides."""
    return parse_set(items) | ({"train.ensemble": ensemble} if ensemble is not None else {})


def one_line(exc: yaml.YAMLError) -> str:
    """A YAML error's several lines as one, e.g. `expected ',' or ']' … line 1, column 7`."""
    return " ".join(str(exc).split())


def expand(configs: list[Config], seeds: int, extra: dict[str, Any] | None = None) -> list[Run]:
    """One run per configuration, or per configuration and seed 1..`seeds` when `seeds` > 1."""
    if seeds < 1:
        raise HarfusionError(f"--seeds must be at least 1, got {seeds}")
    extra = extra or {}
    if seeds == 1:
        return [Run(c.name, c, c.overrides | extra) for c in configs]
    return [
        Run(f"{c.name}-s{seed}", c, c.overrides | extra | {"seed": seed})
        for c in configs
        for seed in range(1, seeds + 1)
    ]


def assign(tree: dict[str, Any], dotted: str, value: Any) -> None:
    """Set `a.b.c` in a params tree, as `dvc exp run -S a.b.c=value` does."""
    *parents, leaf = dotted.split(".")
    for key in parents:
        child = tree.setdefault(key, {})
        if not isinstance(child, dict):
            raise HarfusionError(f"{dotted}: {key} is not a section of params")
        tree = child
    tree[leaf] = value


def overridden(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """The params tree `base` (params.yaml) with `-S` overrides applied."""
    tree = yaml.safe_load(yaml.safe_dump(base))  # a deep copy
    for key, value in overrides.items():
        assign(tree, key, value)
    return tree


def run_tree(run: Run, base: dict[str, Any]) -> dict[str, Any]:
    """The params tree `run` runs with: `base` (params.yaml) with its `-S` overrides applied."""
    return overridden(base, run.overrides)


def check_runs(runs: list[Run], params_path: Path) -> list[Params]:
    """Validate every run's params before anything is queued, so a bad override fails at once."""
    base = load_params(params_path).model_dump()
    checked = []
    for run in runs:
        try:
            checked.append(Params.model_validate(run_tree(run, base)))
        except ValidationError as exc:
            raise HarfusionError(describe(exc, f"{params_path} with {run.name}'s -S")) from None
    return checked


def dataset_modalities(params_path: Path, overrides: dict[str, Any]) -> tuple[str, ...]:
    """The modalities of the dataset the params in `params_path` name with `overrides` (`-S
    data.dataset=mhealth`): what `per_modality` groups expand into."""
    tree = overridden(load_params(params_path).model_dump(), overrides)
    dataset = (tree.get("data") or {}).get("dataset")  # the rest: `check_runs` checks it
    return load_description(str(dataset)).modality_names


def load_ablations(path: str | Path, modalities: tuple[str, ...]) -> Ablations:
    """The configurations in `path`, `per_modality` groups expanded over `modalities` (the
    dataset's, `dataset_modalities`)."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise HarfusionError(f"{path}: not found") from None
    except yaml.YAMLError as exc:
        raise HarfusionError(f"{path}: not valid YAML: {one_line(exc)}") from None
    try:
        if isinstance(raw, dict) and isinstance(raw.get("groups"), dict):
            raw = raw | {
                "groups": {
                    name: Group.model_validate(group).expanded(name, modalities)
                    for name, group in raw["groups"].items()
                }
            }
        return Ablations.model_validate(raw)
    except ValidationError as exc:
        raise HarfusionError(describe(exc, path)) from None
