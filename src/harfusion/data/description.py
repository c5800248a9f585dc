"""A dataset as a description: where its recordings lie, how their text reads, which activities
they label, and which sensors, modalities and channels they hold.

A new dataset is a YAML file, not code. PAMAP2 and MHEALTH ship as `datasets/<name>.yaml`
beside this module; a user's own dataset is a file of the same shape, named by its path.
`load_description` checks a description whole and names the file and the key of every
complaint (`my.yaml: modalities.imu_wrist.groups.acc.bounds: ...`), so that a mistake stops
here rather than as a wrong column deep in a run.

The shape, top to bottom: `files` (the name pattern of a recording, `{subject}` in it and, for
datasets recorded in sessions, a `{session}/` folder), `format` (separator, header, the token of
a missing value, and the file's columns in order), the sampling rate, the `clock` (a timestamp
column, or `implicit`: row number / rate), `labels` (the label column, activity ids and names,
and the ids whose rows are dropped, such as transients), and `modalities`: each one a sensor
worn at a placement, of a kind of signal (`motion`, `waveform` or `slow`, which picks its
encoder settings), with named channel groups, the physical bounds of their values, which groups
are 3-axis vectors, which groups a model reads by default, and optional preprocessing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from importlib.resources import files as package_files
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_serializer,
    field_validator,
    model_validator,
)

from harfusion.errors import HarfusionError
from harfusion.layout import DATASET
from harfusion.params import Kind
from harfusion.yaml_file import read_mapping

# What a shipped description is named by in `data.dataset`: its file name without `.yaml`.
SHIPPED_DIR = package_files("harfusion.data") / "datasets"
# Columns of the processed shards that are not channels, first in every shard (the clock and
# label columns are stored under these names whatever a dataset calls them).
FIXED_COLUMNS = ("subject_id", "session", "timestamp_s", "activity_id")
RESERVED_NAMES = frozenset(FIXED_COLUMNS)
MAX_LABEL = 2**31 - 1  # shards store activity ids as int32
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")

# What a channel group measures; the classical baseline correlates the axes of acceleration.
Quantity = Literal[
    "acceleration",
    "angular_velocity",
    "magnetic_field",
    "orientation",
    "temperature",
    "heart_rate",
    "ecg",
    "other",
]


def _name(value: str) -> str:
    if not _NAME.fullmatch(value):
        raise ValueError(
            "must be letters, digits and _, starting with a letter (it names columns, params "
            "and files)"
        )
    return value


Name = Annotated[str, AfterValidator(_name)]
Text = Annotated[str, Field(min_length=1)]


def _bounds(value: tuple[float, float]) -> tuple[float, float]:
    if not value[0] < value[1]:
        raise ValueError(f"[low, high] needs low < high, got [{value[0]:g}, {value[1]:g}]")
    return value


Bounds = Annotated[tuple[float, float], AfterValidator(_bounds)]


def _unique(values: list) -> list:
    repeated = sorted({str(v) for v in values if values.count(v) > 1})
    if repeated:
        raise ValueError(f"{', '.join(repeated)} repeated")
    return values


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Files(Strict):
    """Where the recordings are: `pattern` relative to `data.raw_dir`, with `{subject}` (a whole
    number) in the file name and, when the dataset is recorded in sessions, a `{session}/`
    folder in front; a compressed copy (`<name>.gz`) is read as the plain file."""

    pattern: Text
    sessions: Annotated[list[Name], Field(min_length=1), AfterValidator(_unique)] | None = Field(
        None, validate_default=True
    )
    compression: Annotated[list[Literal["gz"]], AfterValidator(_unique)] = ["gz"]

    @field_validator("pattern")
    @classmethod
    def _one_subject_in_the_name(cls, pattern: str) -> str:
        if "\\" in pattern:
            raise ValueError("use '/' between the session folder and the file name")
        *folders, name = pattern.split("/")
        if folders not in ([], ["{session}"]):
            raise ValueError(
                "the only folder a pattern may have is a leading '{session}/' (recordings lie "
                "directly in data.raw_dir or in its session folders)"
            )
        if name.count("{subject}") != 1:
            raise ValueError("the file name needs '{subject}' exactly once")
        rest = name.replace("{subject}", "")
        if "{" in rest or "}" in rest:
            raise ValueError("only '{subject}' and a leading '{session}/' may stand in braces")
        return pattern

    @field_validator("sessions")
    @classmethod
    def _sessions_match_the_pattern(
        cls, sessions: list[str] | None, info: ValidationInfo
    ) -> list[str] | None:
        pattern = info.data.get("pattern")
        if pattern is None:
            return sessions
        if pattern.startswith("{session}/") and sessions is None:
            raise ValueError("a '{session}/' pattern needs the session folders listed")
        if not pattern.startswith("{session}/") and sessions is not None:
            raise ValueError("the pattern has no '{session}/' folder")
        return sessions

    @property
    def file_name(self) -> str:
        """The file name part of `pattern` (with `{subject}`)."""
        return self.pattern.rsplit("/", 1)[-1]

    def name_of(self, subject: int | str) -> str:
        return self.file_name.replace("{subject}", str(subject))


class TextFormat(Strict):
    """How a recording's text reads. `columns` lists the file's columns in order: the clock
    column, the label column, and channels, where a modality's name stands for all its
    channels in group order."""

    separator: Annotated[str, Field(min_length=1, max_length=1)]
    header: bool = False  # a first line of column names, skipped
    missing: str = "NaN"  # the token of a missing value (NaN in any spelling always is one)
    columns: Annotated[list[Name], Field(min_length=2), AfterValidator(_unique)]

    @field_validator("missing")
    @classmethod
    def _missing_is_one_field(cls, missing: str, info: ValidationInfo) -> str:
        if info.data.get("separator", "\n") in missing or "\n" in missing or "\r" in missing:
            raise ValueError("a missing-value token cannot hold the separator or a line end")
        return missing

    @field_validator("separator")
    @classmethod
    def _plain_separator(cls, separator: str) -> str:
        if separator in '\r\n"' or separator.isalnum() or separator in ".+-":
            raise ValueError(
                f'{separator!r} cannot separate numbers (a tab is written "\\t" in YAML)'
            )
        return separator

    @property
    def separator_name(self) -> str:
        names = {" ": "space", "\t": "tab", ",": "comma", ";": "semicolon", "|": "bar"}
        return names.get(self.separator, repr(self.separator))


class Clock(Strict):
    """A timestamp `column` (in `unit`; `bounds` in that unit), or, written `clock: implicit`,
    none: a row's time is its number / the sampling rate, from 0."""

    column: Name | None = None
    unit: Literal["s", "ms"] = "s"
    bounds: Bounds | None = None  # default: 0 to 1e10 s (seconds since a start, or Unix time)

    @model_validator(mode="before")
    @classmethod
    def _implicit(cls, value: Any) -> Any:
        if value == "implicit":
            return {}
        if not isinstance(value, dict) or not value.get("column"):
            raise ValueError("write `clock: implicit` or `clock: {column: <name>, unit: s}`")
        return value

    @property
    def implicit(self) -> bool:
        return self.column is None

    @property
    def per_second(self) -> float:
        """Units of the column in a second."""
        return 1000.0 if self.unit == "ms" else 1.0

    @property
    def limits(self) -> tuple[float, float]:
        return self.bounds or (0.0, 1e10 * self.per_second)


class Labels(Strict):
    """The label `column`; `activities` are the classes, `ignore` the ids of rows that are no
    activity (a transient, the null class), dropped before windows are cut."""

    column: Name
    activities: Annotated[
        dict[Annotated[int, Field(ge=0, le=MAX_LABEL)], Text], Field(min_length=1)
    ]
    ignore: dict[Annotated[int, Field(ge=0, le=MAX_LABEL)], Text] = {}

    @field_validator("ignore")
    @classmethod
    def _distinct(cls, ignore: dict[int, str], info: ValidationInfo) -> dict[int, str]:
        activities = info.data.get("activities", {})
        both = sorted(set(activities) & set(ignore))
        if both:
            raise ValueError(f"{both} are activities too")
        names = [*activities.values(), *ignore.values()]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"the names {repeated} stand for more than one id")
        return ignore

    @property
    def known(self) -> frozenset[int]:
        return frozenset(self.activities) | frozenset(self.ignore)

    def name(self, label: int) -> str:
        return {**self.ignore, **self.activities}.get(label, f"activity {label}")


class ChannelGroup(Strict):
    """Channels a model reads or leaves together (an accelerometer's x, y, z)."""

    channels: Annotated[list[Name], Field(min_length=1), AfterValidator(_unique)]
    unit: str = ""
    # What the sensor can report, with a wide margin: a value outside is a corrupt file (a
    # 1e300 once blanked a channel through its normalisation std), never a hard movement.
    bounds: Bounds
    vector: bool = False  # x, y, z in the sensor's frame: a rotation of the sensor turns them
    quantity: Quantity = "other"

    @field_validator("vector")
    @classmethod
    def _three_axes(cls, vector: bool, info: ValidationInfo) -> bool:
        channels = info.data.get("channels", [None] * 3)
        if vector and len(channels) != 3:
            raise ValueError(f"a 3-axis vector has 3 channels, not {len(channels)}")
        return vector


class Preprocess(Strict):
    """What preprocess does to a modality's channels in each recording before anything else."""

    fill: bool = False  # forward-fill, then back-fill: a sensor slower than the sampling rate
    median_window: int = Field(1, ge=1)  # samples of a centred rolling median; 1 = none


class Modality(Strict):
    """One sensor at one placement: what a model treats as one input (and may lose)."""

    label: Text  # how figures and reports name it
    placement: Text
    kind: Kind
    prefix: str = ""  # a channel's column is prefix + its name in the group
    groups: Annotated[dict[Name, ChannelGroup], Field(min_length=1)]
    # The groups a model reads unless `dataset.channel_groups` says otherwise; None: all.
    default_groups: Annotated[list[Name], Field(min_length=1), AfterValidator(_unique)] | None = (
        None
    )
    preprocess: Preprocess = Preprocess()

    @field_validator("default_groups")
    @classmethod
    def _known_groups(cls, default: list[str] | None, info: ValidationInfo) -> list[str] | None:
        groups = info.data.get("groups", {})
        unknown = [g for g in default or [] if groups and g not in groups]
        if unknown:
            raise ValueError(f"{', '.join(unknown)} not among the groups ({', '.join(groups)})")
        return default

    def columns(self, groups: Sequence[str]) -> list[str]:
        return [self.prefix + c for group in groups for c in self.groups[group].channels]

    @property
    def all_columns(self) -> list[str]:
        return self.columns(list(self.groups))

    @property
    def defaults(self) -> list[str]:
        return list(self.default_groups or self.groups)


class Description(Strict):
    name: Text
    about: str = ""  # where the data comes from and how to cite it
    files: Files
    format: TextFormat
    sampling_rate_hz: float = Field(gt=0, le=100_000)
    clock: Clock
    labels: Labels
    # In this order modalities are listed, masked and fed to the model (`modalities: all`).
    modalities: Annotated[dict[Name, Modality], Field(min_length=1)]

    @field_serializer("clock")
    def _clock_as_written(self, clock: Clock) -> Any:
        """An implicit clock as `implicit`, so the dump reads back (`dataset.json`)."""
        return "implicit" if clock.implicit else clock.model_dump()

    @model_validator(mode="after")
    def _consistent(self) -> Description:
        """Cross-key checks; a complaint starts with its key (`describe` keeps it whole)."""
        owner = self._channel_owners()
        special = [c for c in (self.clock.column, self.labels.column) if c is not None]
        if self.clock.column == self.labels.column:
            raise ValueError("labels.column: the clock column cannot be the label column")
        for column in special:
            if column in owner or column in self.modalities:
                raise ValueError(f"format.columns: {column} is a channel or modality name too")
        unknown = [c for c in self.format.columns if c not in (*owner, *special, *self.modalities)]
        if unknown:
            raise ValueError(
                f"format.columns: {unknown[0]} is no modality, channel, clock or label column"
            )
        repeated = sorted({c for c in self.columns if self.columns.count(c) > 1})
        if repeated:
            raise ValueError(f"format.columns: {', '.join(repeated)} more than once")
        lacking = [c for c in special if c not in self.columns]
        for modality, spec in self.modalities.items():
            own = [c for c in spec.all_columns if c not in self.columns]
            lacking += [modality] if own == spec.all_columns else own
        if lacking:
            raise ValueError(f"format.columns: lacks {', '.join(lacking)}")
        return self

    def _channel_owners(self) -> dict[str, str]:
        """Channel → its modality; every channel a name of its own, and no overlong median."""
        owner: dict[str, str] = {}
        for modality, spec in self.modalities.items():
            for group in spec.groups:
                key = f"modalities.{modality}.groups.{group}.channels"
                for column in spec.columns([group]):
                    if not _NAME.fullmatch(column):
                        raise ValueError(f"{key}: {column!r} (prefix + name) is not a name")
                    if column in owner:
                        raise ValueError(f"{key}: {column} is also a channel of {owner[column]}")
                    if column in RESERVED_NAMES or column in self.modalities:
                        raise ValueError(f"{key}: {column} is a reserved or modality name")
                    owner[column] = modality
            window = spec.preprocess.median_window
            if window > 60 * self.sampling_rate_hz:
                raise ValueError(
                    f"modalities.{modality}.preprocess.median_window: {window} samples is over a "
                    "minute; it would smooth away the activities themselves"
                )
        return owner

    @cached_property
    def columns(self) -> tuple[str, ...]:
        """The file's columns in order, modalities expanded into their channels."""
        columns: list[str] = []
        for entry in self.format.columns:
            spec = self.modalities.get(entry)
            columns += spec.all_columns if spec else [entry]
        return tuple(columns)

    @cached_property
    def channels(self) -> tuple[str, ...]:
        """Every sensor channel, in file order: the columns shards and tensors store."""
        special = (self.clock.column, self.labels.column)
        return tuple(c for c in self.columns if c not in special)

    @property
    def processed_columns(self) -> tuple[str, ...]:
        """The columns of a processed shard: the fixed four, then the channels."""
        return (*FIXED_COLUMNS, *self.channels)

    @cached_property
    def bounds(self) -> dict[str, tuple[float, float, str]]:
        """(low, high, unit) per channel, and the clock column's when it has one."""
        bounds = {
            spec.prefix + channel: (*group.bounds, group.unit)
            for spec in self.modalities.values()
            for group in spec.groups.values()
            for channel in group.channels
        }
        if self.clock.column is not None:
            bounds[self.clock.column] = (*self.clock.limits, self.clock.unit)
        return bounds

    @property
    def modality_names(self) -> tuple[str, ...]:
        return tuple(self.modalities)

    @property
    def modality_labels(self) -> dict[str, str]:
        return {name: spec.label for name, spec in self.modalities.items()}

    def activity_name(self, label: int) -> str:
        return self.labels.name(label)

    def modality_channels(self, modality: str) -> list[str]:
        """All of a modality's channels (the ones whose absence makes a sample missing)."""
        return self.modalities[modality].all_columns

    def groups_for(
        self, modalities: Sequence[str], groups_by_kind: Mapping[Any, Sequence[str]] | None = None
    ) -> dict[str, list[str]]:
        """Per modality, the channel groups a model reads: for a modality whose kind
        `groups_by_kind` names (`dataset.channel_groups`), those of the listed groups it has,
        in the listed order; for any other its `default_groups`."""
        chosen = dict(groups_by_kind or {})
        kinds = {spec.kind for spec in self.modalities.values()}
        for kind, groups in chosen.items():
            if kind not in kinds:
                raise HarfusionError(
                    f"dataset.channel_groups.{kind}: {self.name} has no {kind} modality "
                    f"(its kinds: {', '.join(sorted(kinds))})"
                )
            offered = {g for s in self.modalities.values() if s.kind == kind for g in s.groups}
            unknown = [g for g in groups if g not in offered]
            if unknown:
                raise HarfusionError(
                    f"dataset.channel_groups.{kind}: no {kind} modality of {self.name} has "
                    f"{', '.join(unknown)} (its groups: {', '.join(sorted(offered))})"
                )
        selected = {}
        for modality in modalities:
            spec = self.modalities[modality]
            if spec.kind not in chosen:
                selected[modality] = spec.defaults
                continue
            selected[modality] = [g for g in chosen[spec.kind] if g in spec.groups]
            if not selected[modality]:
                raise HarfusionError(
                    f"dataset.channel_groups.{spec.kind}: {modality} has none of "
                    f"{', '.join(chosen[spec.kind])} (it has {', '.join(spec.groups)}); "
                    "leave it out of `modalities` or list one of its groups"
                )
        return selected

    def channels_of(self, modality: str, groups: Sequence[str]) -> list[str]:
        """The columns a model reads for `modality` with these groups, in the groups' order."""
        return self.modalities[modality].columns(groups)

    def vector_triads(self, modality: str, groups: Sequence[str]) -> list[list[int]]:
        """Positions, among `channels_of(modality, groups)`, of each 3-axis vector: the columns
        one rotation of the sensor turns together."""
        spec = self.modalities[modality]
        triads, offset = [], 0
        for group in groups:
            if spec.groups[group].vector:
                triads.append([offset, offset + 1, offset + 2])
            offset += len(spec.groups[group].channels)
        return triads

    def acceleration_axes(self, modality: str, groups: Sequence[str]) -> list[str]:
        """The x, y, z channels of the modality's first 3-axis acceleration group among
        `groups`, in this description's group order (the classical baseline correlates them);
        none if it reads no such group."""
        spec = self.modalities[modality]
        for name, group in spec.groups.items():
            if name in groups and group.vector and group.quantity == "acceleration":
                return spec.columns([name])
        return []

    def select(self, modalities: Sequence[str] | str) -> tuple[str, ...]:
        """`modalities` as params give it (`all` or a list), checked against this dataset."""
        if modalities == "all":
            return self.modality_names
        unknown = [m for m in modalities if m not in self.modalities]
        if unknown:
            raise HarfusionError(
                f"modalities: {', '.join(unknown)} not in {self.name} (its modalities: "
                f"{', '.join(self.modalities)})"
            )
        return tuple(modalities)

    def inputs(
        self, modalities: Sequence[str] | str, groups_by_kind: Mapping[Any, Sequence[str]]
    ) -> Inputs:
        """What a model reads of this dataset with these params (`modalities`,
        `dataset.channel_groups`)."""
        chosen = self.select(modalities)
        groups = self.groups_for(chosen, groups_by_kind)
        return Inputs(
            modalities=chosen,
            channel_names={m: self.channels_of(m, groups[m]) for m in chosen},
            kinds={m: self.modalities[m].kind for m in chosen},
            triads={m: self.vector_triads(m, groups[m]) for m in chosen},
            groups=groups,
        )


@dataclass(frozen=True)
class Inputs:
    """The modalities a model reads (in mask order), with their channels by name, their kinds
    and the positions of their 3-axis vectors."""

    modalities: tuple[str, ...]
    channel_names: dict[str, list[str]]
    kinds: dict[str, str]
    triads: dict[str, list[list[int]]]
    groups: dict[str, list[str]]

    @property
    def channels(self) -> dict[str, int]:
        return {m: len(names) for m, names in self.channel_names.items()}


def describe(error: ValidationError, source: str | Path) -> str:
    """One line per complaint, `source: key: why (got value)`."""
    lines = []
    for item in error.errors():
        parts = [str(p) for p in item["loc"] if p != "[key]"]
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown key (misspelt?)"
        elif isinstance(item["input"], (str, int, float, bool)) and parts:
            message += f" (got {item['input']!r})"
        if "[key]" in item["loc"]:
            message = f"as a key: {message}"
        # A cross-key check has no location; its message starts with its key.
        lines.append(f"{source}: {'.'.join(parts) + ': ' if parts else ''}{message}")
    return "\n".join(dict.fromkeys(lines))


def shipped() -> list[str]:
    """The datasets that ship with harfusion, by the name `data.dataset` takes."""
    return sorted(
        p.name.removesuffix(".yaml") for p in SHIPPED_DIR.iterdir() if p.name.endswith(".yaml")
    )


def description_path(dataset: str) -> Path:
    """The file `data.dataset` names: a shipped dataset's name, or a path to a YAML file."""
    if "/" not in dataset and "\\" not in dataset and not dataset.endswith((".yaml", ".yml")):
        if dataset not in shipped():
            raise HarfusionError(
                f"data.dataset: {dataset!r} is not a shipped dataset ({', '.join(shipped())}); "
                "name your own description by its path, e.g. datasets/mine.yaml"
            )
        return Path(str(SHIPPED_DIR / f"{dataset}.yaml"))
    path = Path(dataset)
    if not path.is_file():
        raise HarfusionError(f"data.dataset: {path}: no such description file")
    return path


def write_dataset(description: Description, folder: Path) -> None:
    """Store the checked description beside the data made with it."""
    dump = description.model_dump(mode="json", exclude_defaults=False)
    (folder / DATASET).write_text(json.dumps(dump, indent=1, ensure_ascii=False) + "\n")


def read_dataset(folder: str | Path) -> Description:
    """The description the data in `folder` (processed shards, tensors) were made with."""
    path = Path(folder) / DATASET
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise HarfusionError(
            f"{path}: missing; the data in {folder} predate dataset descriptions: rerun `dvc repro`"
        ) from None
    except (OSError, ValueError) as exc:
        raise HarfusionError(f"{path}: cannot read ({exc})") from None
    try:
        return Description.model_validate(raw)
    except ValidationError as exc:
        raise HarfusionError(describe(exc, path)) from None


def load_description(dataset: str | Path) -> Description:
    """The checked description `data.dataset` names (`pamap2`, `mhealth` or a path)."""
    path = description_path(str(dataset))
    raw = read_mapping(path, "name, files, format, ...")
    try:
        return Description.model_validate(raw)
    except ValidationError as exc:
        raise HarfusionError(describe(exc, path)) from None
