"""Windows of per-modality sensor tensors, from tensor shards or the legacy `.npy` layout.

A sample is `{"inputs": {modality: float32 [T, C]}, "mask": bool [M], "label": int}`; the mask
says which modalities are present, the mechanism that modality dropout and missing-modality
evaluation also use: a modality whose sensor sent (almost) nothing in a window is absent there
(`presence`; tensorize lists those windows), not zeros posing as readings.
`ShardWindows.__getitems__` gathers a whole batch in a few tensor ops (torch's batched-fetch
hook), since a Python call per window starved training of data.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TypedDict

import numpy as np
import torch
from torch.utils.data import Dataset, default_collate

from harfusion.data.presence import too_sparse
from harfusion.data.windows import WindowSpec
from harfusion.errors import HarfusionError, refused_torch_file
from harfusion.layout import MANIFEST, NORM_STATS


class Sample(TypedDict):
    inputs: dict[str, torch.Tensor]
    mask: torch.Tensor
    label: int


def load_tensor_shard(path: Path, mmap: bool = False) -> dict:
    try:
        return torch.load(path, weights_only=True, mmap=mmap)
    except FileNotFoundError:
        raise HarfusionError(
            f"{path}: tensor shard is missing; run `dvc repro tensorize`"
        ) from None
    except Exception as exc:  # torch raises RuntimeError, EOFError, UnpicklingError, ...
        raise refused_torch_file(path, "a readable tensor shard", exc) from None


class Batch(TypedDict):
    inputs: dict[str, torch.Tensor]
    mask: torch.Tensor
    label: torch.Tensor


def collate_windows(samples: list[Sample] | Batch) -> Batch:
    """Pass a batch `__getitems__` already gathered through; stack single samples."""
    return default_collate(samples) if isinstance(samples, list) else samples


class ShardWindows(Dataset):
    """Windows listed in `manifest.json`, normalised with train-split statistics."""

    def __init__(
        self,
        tensor_dir: str | Path,
        split: str,
        channel_names: Mapping[str, Sequence[str]],
        prefetch_shards: bool = True,
        raw: bool = False,
    ) -> None:
        """`channel_names`: per modality, in mask order, the columns it reads
        (`Description.inputs`). `raw`: the windows in physical units with NaN where a sensor
        sent nothing, for a model that normalises them itself (`models.predictor`); otherwise
        normalised."""
        self.tensor_dir = Path(tensor_dir)
        self.raw = raw
        manifest = json.loads((self.tensor_dir / MANIFEST).read_text())
        stats = json.loads((self.tensor_dir / NORM_STATS).read_text())
        self.modalities = list(channel_names)
        self.classes: list[int] = manifest["classes"]
        self.class_names: list[str] = manifest["class_names"]
        self.chunk_size: int = manifest["chunk_size"]
        self.shards: list[dict] = manifest["shards"]
        self.windows = torch.tensor(manifest["windows"][split], dtype=torch.long).reshape(-1, 2)
        # per window and modality: False where the window lacks it (tensorize lists those)
        self.present = torch.ones(len(self.windows), len(self.modalities), dtype=torch.bool)
        absent = manifest.get("absent", {}).get(split, {})
        for column, modality in enumerate(self.modalities):
            self.present[absent.get(modality, []), column] = False
        self.channel_names = {m: list(names) for m, names in channel_names.items()}
        self.columns = self._column_indexes(manifest["columns"])
        self.column_count = len(manifest["columns"])
        self.spec = WindowSpec(
            str(self.tensor_dir / MANIFEST),
            self.chunk_size,
            {m: len(names) for m, names in self.channel_names.items()},
            self.channel_names,
            self.classes,
            self.class_names,
        )
        mean = torch.tensor(stats["mean"], dtype=torch.float32)
        std = torch.tensor(stats["std"], dtype=torch.float32)
        self.norm = {m: (mean[idx], std[idx]) for m, idx in self.columns.items()}
        self._check_windows()
        label_of = {activity: i for i, activity in enumerate(self.classes)}
        self.shard_labels = torch.tensor([label_of[s["activity"]] for s in self.shards])
        self._mmaps: dict[int, torch.Tensor] = {}
        self.prefetch = prefetch_shards
        if prefetch_shards:
            self._rows, self._row_of = self._concatenate()

    def _column_indexes(self, columns: list[str]) -> dict[str, torch.Tensor]:
        """Per modality, where its channels are among the shards' `columns`."""
        index = {name: i for i, name in enumerate(columns)}
        for modality, names in self.channel_names.items():
            lacking = [name for name in names if name not in index]
            if lacking:
                raise HarfusionError(
                    f"{self.tensor_dir / MANIFEST}: no column {', '.join(lacking)} for "
                    f"modality {modality} (the tensors have {', '.join(columns)})"
                )
        return {
            m: torch.tensor([index[c] for c in names]) for m, names in self.channel_names.items()
        }

    def _check_windows(self) -> None:
        """Every window inside the rows its shard's manifest entry lists."""
        rows = torch.tensor([shard["rows"] for shard in self.shards] + [0])
        shard, start = self.windows[:, 0], self.windows[:, 1]
        inside = (shard >= 0) & (shard < len(self.shards)) & (start >= 0)
        inside &= start + self.chunk_size <= rows[shard.clamp(0, len(self.shards))]
        if not inside.all():
            bad = int(torch.argmin(inside.int()))
            raise HarfusionError(
                f"{self.tensor_dir / MANIFEST}: window {self.windows[bad].tolist()} is not inside "
                "a listed shard; run `dvc repro tensorize`"
            )

    def _concatenate(self) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """The rows this split uses, normalised once per modality, and each window's first row."""
        used = self.windows[:, 0].unique().tolist()
        offsets, parts, total = {}, [], 0
        for shard in used:
            offsets[shard] = total
            parts.append(self._load(shard))
            total += len(parts[-1])
        starts = torch.tensor([offsets[s] for s in self.windows[:, 0].tolist()], dtype=torch.long)
        return self._normalised(torch.cat(parts)), starts + self.windows[:, 1]

    def _mapped(self, shard: int) -> torch.Tensor:
        """A shard's features, memory-mapped (for `prefetch_shards: false`)."""
        if shard not in self._mmaps:
            self._mmaps[shard] = self._load(shard, mmap=True)
        return self._mmaps[shard]

    def _load(self, shard: int, mmap: bool = False) -> torch.Tensor:
        """A shard's features, checked against its manifest entry: a shard of other rows would
        shift every window after it (the prefetched rows are one concatenation)."""
        entry = self.shards[shard]
        path = self.tensor_dir / entry["path"]
        saved = load_tensor_shard(path, mmap)
        features = saved.get("features") if isinstance(saved, dict) else None
        shape = (entry["rows"], self.column_count)
        if not isinstance(features, torch.Tensor) or tuple(features.shape) != shape:
            found = tuple(features.shape) if isinstance(features, torch.Tensor) else "no tensor"
            raise HarfusionError(
                f"{path}: holds features of shape {found}, {self.tensor_dir / MANIFEST} says "
                f"{entry['rows']} rows of {self.column_count} columns; run `dvc repro tensorize`"
            )
        return features

    def __len__(self) -> int:
        return len(self.windows)

    def _normalised(self, windows: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per modality, (x - train mean) / train std with NaN as 0, for rows [..., C_all]
        (unless `raw`)."""
        inputs = {}
        for modality, columns in self.columns.items():
            if self.raw:
                inputs[modality] = windows[..., columns]
                continue
            mean, std = self.norm[modality]
            values = (windows[..., columns] - mean) / std
            inputs[modality] = torch.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)
        return inputs

    def __getitem__(self, index: int) -> Sample:
        shard, start = self.windows[index].tolist()
        if self.prefetch:
            first = int(self._row_of[index])
            inputs = {m: x[first : first + self.chunk_size] for m, x in self._rows.items()}
        else:
            inputs = self._normalised(self._mapped(shard)[start : start + self.chunk_size])
        return {
            "inputs": inputs,
            "mask": self.present[index].cpu(),
            "label": int(self.shard_labels[shard]),
        }

    def to(self, device: torch.device) -> ShardWindows:
        """Keep the split's rows on `device`, so batches are gathered there (no host copies)."""
        if self.prefetch and self.device == device:
            return self
        if not self.prefetch:
            raise HarfusionError("dataset.gather_on_device needs dataset.prefetch_shards: true")
        self._rows = {m: x.to(device) for m, x in self._rows.items()}
        self._row_of = self._row_of.to(device)
        self.present = self.present.to(device)
        self.shard_labels = self.shard_labels.to(device)
        return self

    @property
    def device(self) -> torch.device:
        return self._row_of.device if self.prefetch else torch.device("cpu")

    def __getitems__(self, indices: list[int]) -> Batch | list[Sample]:
        if not self.prefetch:
            return [self[i] for i in indices]
        index = torch.as_tensor(indices, dtype=torch.long)
        first = self._row_of[index.to(self.device)]
        return {
            # unfold views every window without copying; indexing it copies only the batch
            "inputs": {
                m: x.unfold(0, self.chunk_size, 1)[first].transpose(1, 2).contiguous()
                for m, x in self._rows.items()
            },
            "mask": self.present[index.to(self.device)],
            "label": self.shard_labels[self.windows[index, 0].to(self.device)],
        }


class LegacyNpyWindows(Dataset):
    """The old layout: `{split}_{modality}.npy` [N, T, C] beside `{split}_labels.npy` [N]."""

    def __init__(self, data_dir: str | Path, split: str, modalities: Sequence[str]) -> None:
        data_dir = Path(data_dir)
        self.modalities = list(modalities)
        arrays = {}
        for modality in self.modalities:
            path = data_dir / f"{split}_{modality}.npy"
            if not path.exists():
                raise HarfusionError(f"{path}: missing for modality {modality!r}")
            arrays[modality] = torch.from_numpy(_windows_array(path)).float()
        raw_labels = {s: _label_array(p) for s, p in _legacy_label_files(data_dir).items()}
        self.classes = sorted({int(v) for labels in raw_labels.values() for v in labels})
        self.class_names = [str(c) for c in self.classes]
        label_of = {activity: i for i, activity in enumerate(self.classes)}
        self.targets = torch.tensor([label_of[int(v)] for v in raw_labels[split]])
        lengths = {len(self.targets), *(len(a) for a in arrays.values())}
        steps = {a.shape[1] for a in arrays.values()}
        if len(lengths) != 1 or len(steps) != 1:
            raise HarfusionError(
                f"{data_dir}: {split} arrays disagree on the number of windows or their length"
            )
        self.chunk_size = steps.pop()
        channels = {m: a.shape[2] for m, a in arrays.items()}
        self.spec = WindowSpec(str(data_dir), self.chunk_size, channels, None, self.classes)
        missing = [a.isnan().all(dim=2).sum(dim=1).numpy() for a in arrays.values()]
        present = [~too_sparse(count, self.chunk_size) for count in missing]
        self.present = torch.from_numpy(np.stack(present, axis=1))
        self.arrays = {
            m: torch.nan_to_num(a, nan=0.0, posinf=0.0, neginf=0.0) for m, a in arrays.items()
        }

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> Sample:
        return {
            "inputs": {m: a[index] for m, a in self.arrays.items()},
            "mask": self.present[index],
            "label": int(self.targets[index]),
        }


def _npy(path: Path) -> np.ndarray:
    """A `.npy` array, never unpickled: an object array is refused in one line."""
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as exc:
        if "allow_pickle" in str(exc):  # object arrays hold pickles
            raise HarfusionError(
                f"{path}: holds pickled Python objects (an object array), which are never "
                "loaded since loading them can run code"
            ) from None
        raise HarfusionError(f"{path}: not a .npy array ({exc})") from None
    except (OSError, EOFError) as exc:
        raise HarfusionError(f"{path}: not a readable .npy array ({exc})") from None


def _windows_array(path: Path) -> np.ndarray:
    array = _npy(path)
    if array.ndim != 3 or array.dtype.kind not in "iuf" or 0 in array.shape:
        raise HarfusionError(
            f"{path}: expected numbers of shape [windows, steps, channels], got "
            f"{array.dtype} {array.shape}"
        )
    return array


def _label_array(path: Path) -> np.ndarray:
    labels = _npy(path)
    whole = labels.dtype.kind in "iu" or (
        labels.dtype.kind == "f" and np.isfinite(labels).all() and (labels == labels.round()).all()
    )
    if labels.ndim != 1 or not whole:
        raise HarfusionError(
            f"{path}: expected one whole-number class id per window, got "
            f"{labels.dtype} {labels.shape}"
        )
    return labels.astype(np.int64)


def _legacy_label_files(data_dir: Path) -> dict[str, Path]:
    return {p.name.removesuffix("_labels.npy"): p for p in sorted(data_dir.glob("*_labels.npy"))}


def open_windows(
    data_dir: str | Path,
    split: str,
    channel_names: Mapping[str, Sequence[str]],
    prefetch_shards: bool = True,
    raw: bool = False,
) -> ShardWindows | LegacyNpyWindows:
    """Tensor shards when a manifest exists, else the legacy `.npy` layout (which holds its
    windows ready for the model: `raw` changes nothing there)."""
    data_dir = Path(data_dir)
    if (data_dir / MANIFEST).exists():
        return ShardWindows(data_dir, split, channel_names, prefetch_shards, raw)
    if split in _legacy_label_files(data_dir):
        return LegacyNpyWindows(data_dir, split, list(channel_names))
    raise HarfusionError(
        f"{data_dir}: neither {MANIFEST} nor {split}_labels.npy found; run `dvc repro tensorize`"
    )
