"""The schema of `params.yaml`.

Every stage validates the whole file, so a misspelt key from `dvc exp run -S fusoin=early` stops
the first stage that runs instead of being silently added as a new param.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from harfusion.errors import HarfusionError
from harfusion.layout import USER_DATASETS
from harfusion.yaml_file import read_mapping

# Lightning's StrategyRegistry names (2.6; a test compares them), kept here so that validating
# params does not import Lightning; less single_tpu and single_xla, which need a device object
# and fail as a name.
Strategy = Literal[
    "auto",
    "ddp",
    "ddp_find_unused_parameters_false",
    "ddp_find_unused_parameters_true",
    "ddp_fork",
    "ddp_fork_find_unused_parameters_false",
    "ddp_fork_find_unused_parameters_true",
    "ddp_notebook",
    "ddp_notebook_find_unused_parameters_false",
    "ddp_notebook_find_unused_parameters_true",
    "ddp_spawn",
    "ddp_spawn_find_unused_parameters_false",
    "ddp_spawn_find_unused_parameters_true",
    "deepspeed",
    "deepspeed_stage_1",
    "deepspeed_stage_2",
    "deepspeed_stage_2_offload",
    "deepspeed_stage_3",
    "deepspeed_stage_3_offload",
    "deepspeed_stage_3_offload_nvme",
    "fsdp",
    "fsdp_cpu_offload",
    "single_device",
    "xla",
    "xla_debug",
]
# What numpy's and Lightning's seeding accept (a negative seed failed a minute into training).
Seed = Annotated[int, Field(ge=0, le=2**32 - 1)]
MAX_MEMBERS = 100  # ensemble members; each is a whole training
Positive = Annotated[int, Field(ge=1)]
# What preprocess stores a subject id as (int32); file names spell it, so it is not negative.
SubjectId = Annotated[int, Field(ge=0, le=2**31 - 1)]
# The kinds of signal a dataset description gives its modalities; each has its own encoder
# settings (`model.front`) and its own channel groups (`dataset.channel_groups`).
Kind = Literal["motion", "waveform", "slow"]


class Strict(BaseModel):
    # No float param means anything at inf or NaN (`.inf` seconds overflowed deep in numpy).
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class SyntheticParams(Strict):
    out_dir: str = "data/raw/synthetic"
    seed: int = 2026  # apart from the top-level seed, so training seeds share one data set
    subjects: list[SubjectId] = Field(
        default_factory=lambda: list(range(101, 110)), min_length=1, max_length=1000
    )
    # An hour per activity and subject is 15 times PAMAP2 (~3 GB of rows per subject in memory).
    seconds_per_activity: float = Field(60.0, gt=0, le=3600)
    optional_sessions: bool = True
    transient_seconds: float = Field(8.0, ge=0, le=3600)
    packet_drop_rate: float = Field(0.002, ge=0, le=1)


class DataParams(Strict):
    # A shipped description's name (pamap2, mhealth) or the path of one in datasets/.
    dataset: str = "pamap2"
    raw_dir: str = "data/raw/synthetic"
    synthetic: SyntheticParams = SyntheticParams()

    @field_validator("dataset")
    @classmethod
    def _description_in_datasets(cls, dataset: str) -> str:
        if "/" not in dataset and "\\" not in dataset and not dataset.endswith((".yaml", ".yml")):
            return dataset  # a shipped name; the description module checks it exists
        path = Path(dataset)
        # A description elsewhere would be no dependency of any stage: DVC would not rerun what
        # an edit of it changes.
        if path.is_absolute() or path.parts[:1] != USER_DATASETS.parts or ".." in path.parts:
            raise ValueError(
                f"a description of your own goes in {USER_DATASETS}/ (e.g. "
                f"{USER_DATASETS}/{path.name}) so that DVC reruns what an edit of it changes"
            )
        return path.as_posix()


class PreprocessParams(Strict):
    # The session folders to read, in order; null: every one the dataset describes.
    sessions: list[str] | None = Field(None, min_length=1)

    @field_validator("sessions")
    @classmethod
    def _plain_unique_folders(cls, sessions: list[str] | None) -> list[str] | None:
        if sessions is None:
            return sessions
        if len(set(sessions)) != len(sessions):
            raise ValueError("sessions must not repeat (a session's files would count twice)")
        odd = [s for s in sessions if not s or "/" in s or "\\" in s or s in (".", "..")]
        if odd:
            raise ValueError(f"{odd}: a session is a folder name directly under data.raw_dir")
        return sessions

    max_shard_mb: float = Field(19.0, gt=0, le=19.5)


class SplitParams(Strict):
    strategy: Literal["shard", "subject"] = "shard"
    seed: Seed = 0
    train: float = Field(0.70, gt=0, lt=1)
    val: float = Field(0.15, gt=0, lt=1)
    test: float = Field(0.15, gt=0, lt=1)
    val_subjects: list[SubjectId] = Field(default_factory=lambda: [105])
    test_subjects: list[SubjectId] = Field(default_factory=lambda: [106])

    @model_validator(mode="after")
    def _fractions_sum_to_one(self) -> SplitParams:
        total = self.train + self.val + self.test
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"split.train + split.val + split.test must be 1, got {total:g}")
        overlap = set(self.val_subjects) & set(self.test_subjects)
        if self.strategy == "subject" and overlap:
            raise ValueError(
                f"subjects {sorted(overlap)} are in both val_subjects and test_subjects"
            )
        return self


class DatasetParams(Strict):
    chunk_stride: int | None = Field(None, ge=1)
    # Training windows only (null: chunk_stride): overlapping windows multiply the training set
    # for free, while validation and test windows stay the evaluation protocol's.
    train_stride: int | None = Field(128, ge=1)
    # Per kind of signal, the channel groups its modalities read, in this order (each the
    # listed groups it has); a kind not named reads its modalities' default groups.
    channel_groups: dict[Kind, Annotated[list[str], Field(min_length=1)]] = {}
    prefetch_shards: bool = True
    pin_memory: bool | Literal["auto"] = "auto"
    # auto: on a CUDA device with num_workers 0, keep the rows there and gather batches there
    gather_on_device: bool | Literal["auto"] = "auto"
    batch_size: int = Field(64, ge=1)
    num_workers: int = Field(0, ge=0)

    @field_validator("channel_groups")
    @classmethod
    def _unique_groups(cls, groups: dict[str, list[str]]) -> dict[str, list[str]]:
        for kind, names in groups.items():
            if len(set(names)) != len(names):
                raise ValueError(f"{kind}: channel groups must not repeat")
        return groups


class Front(Strict):
    """An encoder's convolutional front end: output channels and stride of each layer."""

    channels: list[Positive] = Field(min_length=1)
    strides: list[Positive] = Field(min_length=1)

    @model_validator(mode="after")
    def _matching_lengths(self) -> Front:
        if len(self.channels) != len(self.strides):
            raise ValueError("channels and strides need the same length (one per layer)")
        return self


class Fronts(Strict):
    """The front end per kind of signal; early fusion's concatenation uses `motion`'s."""

    motion: Front = Front(channels=[32, 64, 64], strides=[4, 4, 2])  # inertial, at the full rate
    waveform: Front = Front(channels=[32, 64, 64], strides=[4, 4, 2])  # ECG, EMG, PPG
    slow: Front = Front(channels=[8, 16], strides=[8, 8])  # changes over seconds: heart rate


class ModelParams(Strict):
    encoder: Literal["cnn", "cnn_gru", "cnn_attention"] = "cnn"
    embed_dim: int = Field(64, ge=8)
    front: Fronts = Fronts()
    dropout: float = Field(0.4, ge=0, lt=1)
    # Batch norm is the faster default; group norm makes each window independent of its batch.
    norm: Literal["batch", "group"] = "batch"
    # Heads of the `cnn_attention` encoder's own self-attention (`heads` is the cross-modal one).
    encoder_heads: int = Field(4, ge=1)

    @model_validator(mode="after")
    def _encoder_heads_divide_embedding(self) -> ModelParams:
        if self.embed_dim % self.encoder_heads:
            raise ValueError(
                f"model.encoder_heads={self.encoder_heads} must divide "
                f"model.embed_dim={self.embed_dim}"
            )
        return self


class TrainParams(Strict):
    max_epochs: int = Field(30, ge=1)
    min_epochs: int = Field(1, ge=1)
    patience: int = Field(5, ge=1)
    # What early stopping and the kept checkpoint follow. Validation loss rewards confident
    # majority classes; macro F1 weighs a rare activity as much as a common one.
    monitor: Literal["val_loss", "val_f1_macro"] = "val_loss"
    learning_rate: float = Field(2e-3, gt=0)
    weight_decay: float = Field(1e-2, ge=0)
    label_smoothing: float = Field(0.05, ge=0, lt=1)
    # Real subjects record activities for very different lengths, so a class may have a few
    # training windows in a fold: `sampler` draws windows inversely to their class's count,
    # `loss` weights the cross-entropy that way instead.
    class_balance: Literal["none", "sampler", "loss"] = "loss"
    gradient_clip_norm: float = Field(1.0, gt=0)
    modality_dropout: float = Field(0.1, ge=0, lt=1)
    noise_std: float = Field(0.05, ge=0)
    jitter_steps: int = Field(16, ge=0)
    # Each IMU turned as a rigid body (acc, gyro, mag together) by up to this many degrees about
    # a random axis, once per window: sensors sit at a different angle on every person.
    rotation_degrees: float = Field(90.0, ge=0, le=180)
    # One amplitude factor ~ N(1, scale_std) per sensor and window: people move with more or
    # less vigour.
    scale_std: float = Field(0.0, ge=0, lt=1)
    # Smooth random change of speed, exp(N(0, time_warp)) locally, shared by all modalities of a
    # window: cadence differs between people.
    time_warp: float = Field(0.0, ge=0, lt=1)
    accelerator: Literal["auto", "cpu", "gpu", "cuda", "mps"] = "auto"
    devices: int | Literal["auto"] = "auto"  # how many (CUDA_VISIBLE_DEVICES picks which)
    strategy: Strategy = "auto"
    num_nodes: int = Field(1, ge=1)
    compile: bool = False
    # "auto": half the usable cores, at least one. Measured on a 2-vCPU machine, two OpenMP
    # threads trained these small convolutions and GRUs 4-7x slower than one.
    cpu_threads: int | Literal["auto"] = "auto"
    resume: bool = False
    # Members trained one after another, member k with seed (seed + 1000 k) mod 2**32, their
    # probabilities averaged: on real leave-one-subject-out three narrowed the spread across
    # people (benchmarks/calibration_study.md). 1: one model, exactly as before.
    ensemble: int = Field(3, ge=1, le=MAX_MEMBERS)
    # Which validation windows the temperature is fitted on (models/calibrator.py):
    # trained_classes (classes that had training windows), all_windows, or none (T = 1).
    calibration: Literal["trained_classes", "all_windows", "none"] = "trained_classes"
    limit_train_batches: float | int = 1.0  # a fraction of the batches, or a number of them

    @field_validator("devices", "cpu_threads")
    @classmethod
    def _at_least_one(cls, value: int | str) -> int | str:
        if isinstance(value, int) and value < 1:
            raise ValueError("must be 'auto' or at least 1")
        return value

    @field_validator("limit_train_batches")
    @classmethod
    def _some_batches(cls, value: float) -> float:
        if not (0 < value <= 1 if isinstance(value, float) else value >= 1):
            raise ValueError("must be a fraction in (0, 1] or a whole number of batches >= 1")
        return value

    @model_validator(mode="after")
    def _epochs_in_order(self) -> TrainParams:
        if self.min_epochs > self.max_epochs:
            raise ValueError(
                f"train.min_epochs={self.min_epochs} exceeds train.max_epochs={self.max_epochs}"
            )
        return self


class BaselineParams(Strict):
    """The classical reference every deep result is shown beside (stage `baseline`)."""

    model: Literal["random_forest", "hist_gradient_boosting"] = "random_forest"
    trees: int = Field(100, ge=1)  # forest size, or boosting iterations
    max_depth: int | None = Field(None, ge=1)
    min_samples_leaf: int = Field(1, ge=1)
    class_weight: Literal["balanced"] | None = None


class EvaluateParams(Strict):
    ece_bins: int = Field(15, ge=2)
    mc_samples: int = Field(20, ge=1)
    latency_batches: int = Field(20, ge=1)
    latency_warmup: int = Field(3, ge=0)


class Params(Strict):
    seed: Seed = 42
    fusion: Literal["early", "late", "hybrid"] = "hybrid"
    heads: int = Field(4, ge=1)
    chunk_size: int = Field(512, ge=16)
    # The modalities the model reads, in mask order; all: the dataset's, in its order.
    modalities: Literal["all"] | Annotated[list[str], Field(min_length=1)] = "all"
    data: DataParams = DataParams()
    preprocess: PreprocessParams = PreprocessParams()
    split: SplitParams = SplitParams()
    dataset: DatasetParams = DatasetParams()
    model: ModelParams = ModelParams()
    train: TrainParams = TrainParams()
    baseline: BaselineParams = BaselineParams()
    evaluate: EvaluateParams = EvaluateParams()

    @field_validator("modalities")
    @classmethod
    def _unique_modalities(cls, modalities: list[str] | str) -> list[str] | str:
        if isinstance(modalities, list) and len(set(modalities)) != len(modalities):
            raise ValueError("modalities must not repeat")
        return modalities

    @model_validator(mode="after")
    def _heads_divide_embedding(self) -> Params:
        if self.model.embed_dim % self.heads:
            raise ValueError(
                f"heads={self.heads} must divide model.embed_dim={self.model.embed_dim}"
            )
        return self

    @model_validator(mode="after")
    def _batch_norm_needs_two_windows(self) -> Params:
        # A conv front end that shortens a window to one step leaves batch norm a single value
        # per channel in a one-window batch, which it cannot normalise (a crash in training).
        if self.model.norm == "batch" and self.dataset.batch_size < 2:
            raise ValueError(
                "dataset.batch_size=1 needs model.norm: group (batch norm normalises over the "
                "windows of a batch)"
            )
        return self

    @property
    def stride(self) -> int:
        return self.dataset.chunk_stride or self.chunk_size

    @property
    def train_stride(self) -> int:
        return self.dataset.train_stride or self.stride


# Which params identify a trained model, beside its windows (`data/processed_tensors`, hashed
# on their own): the `train` stage's `params:` in dvc.yaml (tests/test_params.py holds them
# equal) and what a resumed run must share with the run whose checkpoint it takes
# (`training.fit.fingerprint`), less `RESUME_MAY_CHANGE`. A dotted key names one field of a
# section.
TRAINED_BY = (
    "seed",
    "fusion",
    "heads",
    "modalities",
    "data.dataset",
    "dataset",
    "model",
    "train",
)
RESUME_MAY_CHANGE = ("train.resume",)  # how to train, not what: resuming turns it on
# Those that decide the network's shape, from which a model file rebuilds it (with its channels).
ARCHITECTURE = ("fusion", "heads", "model")
# The top-level params a configuration sets, besides each experiment's `seed`: comparisons and
# reports show a configuration by them.
SWEPT = ("fusion", "heads", "chunk_size", "modalities")


def _tree(keys: tuple[str, ...]) -> dict[str, Any]:
    """Dotted keys as pydantic's include / exclude mapping: {"train": {"resume": True}}."""
    tree: dict[str, Any] = {}
    for key in keys:
        section, _, field = key.partition(".")
        if not field:
            tree[section] = True
        elif tree.get(section) is not True:
            tree[section] = tree.get(section, {}) | {field: True}
    return tree


def trained_by(params: Params) -> dict[str, Any]:
    """The values of `TRAINED_BY`, less `RESUME_MAY_CHANGE`."""
    return params.model_dump(include=_tree(TRAINED_BY), exclude=_tree(RESUME_MAY_CHANGE))


def _key(item: Any) -> str:
    """The dotted key of one pydantic error. A union reports each member's failure under a
    tag after the key (`train.devices.int`, `train.devices.literal['auto']`); cut those off."""
    if item["type"] == "extra_forbidden":
        return ".".join(str(part) for part in item["loc"])
    parts, model = [], Params
    for part in item["loc"]:
        fields = getattr(model, "model_fields", None)
        if isinstance(part, int):
            parts.append(str(part))
        elif fields is not None and part in fields:
            parts.append(part)
            model = fields[part].annotation
        else:
            break
    return ".".join(parts) or "<top level>"


def describe(error: ValidationError, source: str | Path) -> str:
    """One line per wrong key, `source: key: why (got value)`; a union's several complaints
    about one key share its line."""
    reasons: dict[str, list[str]] = {}
    for item in error.errors():
        key, message = _key(item), item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            reason = "unknown key (misspelt? see params.py for the valid keys)"
        elif isinstance(item["input"], (str, int, float, bool)):
            reason = f"{message} (got {item['input']!r})"
        else:
            reason = message
        if reason not in reasons.setdefault(key, []):
            reasons[key].append(reason)
    return "\n".join(f"{source}: {key}: {'; or '.join(why)}" for key, why in reasons.items())


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and validate params; any unknown key, bad type or impossible value is an error."""
    path = Path(path)
    raw = read_mapping(path, "params", empty_ok=True)
    try:
        return Params.model_validate(raw)
    except ValidationError as exc:
        raise HarfusionError(describe(exc, path)) from None
