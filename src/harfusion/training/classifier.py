"""The LightningModule: a fusion model trained with modality dropout and augmentation.

A loss that turns NaN or inf stops training with a one-line error at the end of that epoch's
validation, before its checkpoint is saved: the run fails and writes no model (a diverged run
used to finish with exit 0, promoting an earlier checkpoint or a NaN model).
"""

from __future__ import annotations

import lightning as L
import torch
import torch.nn.functional as F
from torch import Tensor
from torchmetrics import MeanMetric, Metric
from torchmetrics.classification import MulticlassAccuracy
from torchmetrics.utilities import dim_zero_cat

from harfusion.errors import HarfusionError
from harfusion.evaluation.metrics import f1_per_class, macro_f1
from harfusion.models.augment import augment
from harfusion.models.fusion import FusionOutput, Shape, build_model
from harfusion.params import Params

Batch = dict


class MacroF1(Metric):
    """Validation macro F1 by `evaluation.metrics`' one definition, not torchmetrics' (whose
    macro average also counts a class only predicted, as 0): the epoch's labels and predicted
    classes (a few kilobytes) stay on the device, gathered across processes, and are scored
    once at its end, in float64 as evaluate scores (tests/test_macro_f1.py)."""

    full_state_update = False
    actual: list[Tensor]  # per batch; one tensor once synchronised across processes
    predicted: list[Tensor]

    def __init__(self) -> None:
        super().__init__()
        self.add_state("actual", default=[], dist_reduce_fx="cat")
        self.add_state("predicted", default=[], dist_reduce_fx="cat")

    def update(self, logits: Tensor, labels: Tensor) -> None:
        self.actual.append(labels.detach())
        self.predicted.append(logits.detach().argmax(dim=1))

    def compute(self) -> Tensor:
        per_class = f1_per_class(
            dim_zero_cat(self.actual).cpu().numpy(), dim_zero_cat(self.predicted).cpu().numpy()
        )
        score = macro_f1(per_class)
        return torch.tensor(float("nan") if score is None else score, dtype=torch.float64)


class FusionClassifier(L.LightningModule):
    class_weights: Tensor | None  # a buffer, so it follows the module to its device

    def __init__(
        self,
        params: Params | dict,
        channels: dict[str, int],
        kinds: dict[str, str],
        triads: dict[str, list[list[int]]],
        num_classes: int,
        class_weights: Tensor | list[float] | None = None,
        normalisation: dict[str, tuple[Tensor, Tensor]]
        | dict[str, list[list[float]]]
        | None = None,
    ) -> None:
        """`channels`, `kinds`, `triads`: per modality, in mask order, its input channels, its
        kind of signal and the positions of its 3-axis vectors. `class_weights`: per-class
        cross-entropy weights (`train.class_balance: loss`). `normalisation`: per modality the
        train mean and std the inputs were normalised with, which sensor rotation needs to work
        in physical units (none: inputs are physical).

        The arguments are kept in the checkpoint as plain data (params as a mapping, tensors as
        lists), so `FusionClassifier.load_from_checkpoint(path)` rebuilds the module from the
        checkpoint alone, loaded with `weights_only=True`."""
        super().__init__()
        params = params if isinstance(params, Params) else Params.model_validate(params)
        stats = {
            m: [torch.as_tensor(v).tolist() for v in pair]
            for m, pair in (normalisation or {}).items()
        }
        if stats and set(stats) != set(channels):  # never a modality rotated in other units
            raise HarfusionError(
                f"normalisation is for {', '.join(sorted(stats))}; the model's modalities are "
                f"{', '.join(channels)}"
            )
        self.save_hyperparameters(
            {
                "params": params.model_dump(),
                "channels": dict(channels),
                "kinds": dict(kinds),
                "triads": dict(triads),
                "num_classes": num_classes,
                "class_weights": None
                if class_weights is None
                else torch.as_tensor(class_weights).tolist(),
                "normalisation": stats or None,
            },
            logger=False,
        )
        weights = (
            None if class_weights is None else torch.as_tensor(class_weights, dtype=torch.float32)
        )
        self.register_buffer("class_weights", weights, persistent=False)
        self.triads = dict(triads)
        for modality, count in channels.items():
            mean, std = stats[modality] if stats else (torch.zeros(count), torch.ones(count))
            self.register_buffer(
                f"mean_{modality}", torch.as_tensor(mean).float(), persistent=False
            )
            self.register_buffer(f"std_{modality}", torch.as_tensor(std).float(), persistent=False)
        self.params = params
        self.model = build_model(
            params.fusion, Shape(channels, kinds, num_classes), params.model, params.heads
        )
        self.val_accuracy = MulticlassAccuracy(num_classes, average="micro")
        self.val_f1 = MacroF1()
        # NaN kept in the means (torchmetrics drops it by default), so a diverged step shows
        self.train_loss = MeanMetric(nan_strategy="disable")
        self.val_loss_mean = MeanMetric(nan_strategy="disable")  # per batch, as `val_loss`

    def forward(self, inputs: dict[str, Tensor], mask: Tensor) -> FusionOutput:
        return self.model(inputs, mask)

    def training_loss(self, batch: Batch) -> Tensor:
        """Augment, drop modalities, score: all of a training step but the optimiser.

        Kept apart from `training_step` so a bare PyTorch loop (benchmarks/) does the same work.
        """
        normalisation = {
            m: (self.get_buffer(f"mean_{m}"), self.get_buffer(f"std_{m}")) for m in batch["inputs"]
        }
        inputs, mask = augment(
            batch["inputs"], batch["mask"], self.params.train, self.triads, normalisation
        )
        output = self.model(inputs, mask)
        return F.cross_entropy(
            output.logits,
            batch["label"],
            weight=self.class_weights,
            label_smoothing=self.params.train.label_smoothing,
        )

    def training_step(self, batch: Batch, batch_idx: int) -> Tensor:
        loss = self.training_loss(batch)
        # A metric update per step and one `self.log` per epoch: `self.log` costs ~2 ms a call,
        # which the profiler showed as the bulk of Lightning's lead over a bare loop.
        self.train_loss.update(loss.detach(), weight=len(batch["label"]))
        return loss

    def on_train_epoch_end(self) -> None:
        self.log("train_loss", self.train_loss, prog_bar=True)

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        output = self.model(batch["inputs"], batch["mask"])
        loss = F.cross_entropy(output.logits, batch["label"])
        size = len(batch["label"])
        self.val_loss_mean.update(loss.detach())
        self.val_accuracy(output.logits, batch["label"])
        self.val_f1(output.logits, batch["label"])
        self.log("val_loss", loss, prog_bar=True, batch_size=size, sync_dist=True)
        self.log("val_acc", self.val_accuracy, prog_bar=True, batch_size=size)
        self.log("val_f1_macro", self.val_f1, batch_size=size)

    def on_validation_epoch_end(self) -> None:
        """Stop a diverged run (Lightning calls the checkpoint callbacks after this hook)."""
        validation = self.val_loss_mean.compute()
        self.val_loss_mean.reset()
        if self.trainer.sanity_checking:
            return
        for split, loss in (("training", self.train_loss.compute()), ("validation", validation)):
            if not torch.isfinite(loss):
                raise HarfusionError(
                    f"train: the {split} loss became {float(loss)} in epoch {self.current_epoch}: "
                    f"training diverged, most likely train.learning_rate "
                    f"({self.params.train.learning_rate:g}) is too high; no model was written"
                )

    def configure_optimizers(self):
        train = self.params.train
        optimizer = torch.optim.AdamW(
            self.parameters(), lr=train.learning_rate, weight_decay=train.weight_decay
        )
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=train.max_epochs)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": schedule, "interval": "epoch"},
        }
