"""One generic LightningModule built from the spec: graph, loss from the task, metrics, optimizer.

Training metrics are accumulated on-device per step (loss sum, correct count) and logged once
per epoch; validation runs as one batch over the in-memory validation split. Small models are
overhead-bound, so nothing per step calls ``self.log``.

The validation metrics are the test metrics of :mod:`dltoolkit.evaluate.metrics` computed by the
same functions on the validation split, so a name means one thing everywhere: ``val_acc`` is the
test ``accuracy``; ``val_precision``, ``val_recall``, ``val_f1`` are macro averages over the
classes and ``val_roc_auc`` is the test ``roc_auc``; ``val_mse``, ``val_rmse``, ``val_mae``,
``val_r2`` are in the target's own units (predictions and targets mapped back from the scaled
units the model is trained in). ``train_loss`` and ``val_loss`` are the training loss, in those
scaled units for regression (and with the class weights, when set); ``train_loss`` and
``train_acc`` average over the epoch's training batches while the weights change.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from pytorch_lightning.plugins.precision import Precision
from pytorch_lightning.strategies import SingleDeviceStrategy
from pytorch_lightning.utilities.model_helpers import is_overridden

from dltoolkit._hooks import lean_step
from dltoolkit.errors import TrainingError
from dltoolkit.evaluate.metrics import classification_scores, regression_scores
from dltoolkit.spec import Spec
from dltoolkit.train.losses import loss_name
from dltoolkit.train.optim import make_optimizer, make_schedule

if TYPE_CHECKING:
    from dltoolkit.graph.graph import GraphModule

VAL_NAMES = {"accuracy": "val_acc"}  # test metric -> its validation name when not just val_<name>


class _EpochSums:
    """Per-epoch training sums kept outside nn.Module (whose __setattr__ is slow per step)."""

    def __init__(self) -> None:
        self.loss, self.correct, self.seen = 0.0, torch.zeros(()), 0  # loss sum, correct count, rows

    def reset(self, device: torch.device) -> None:
        self.loss, self.correct, self.seen = 0.0, torch.zeros((), dtype=torch.long, device=device), 0


class TaskModule(pl.LightningModule):
    """The model (a compiled graph) plus loss, metrics and optimizer, all from the spec.

    Args:
        spec: the experiment spec.
        model: the compiled graph (``Graph.compile()``).
        n_outputs: classes for multiclass, 1 for binary and regression.
        steps_per_epoch: for per-step schedules such as one-cycle.
        augment: optional batch transform applied to training inputs.
        target_scale: regression: ``(center, spread)`` of the target scaling, so that the
            ``val_*`` metrics are reported in the target's units (``value = scaled * spread + center``).
        class_weights: classification: one loss weight per class, in label order (None: equal).
    """

    class_weights: torch.Tensor | None  # a buffer (nn.Module's __getattr__ types it Tensor | Module)

    def __init__(
        self,
        spec: Spec,
        model: GraphModule,
        n_outputs: int,
        steps_per_epoch: int,
        augment=None,
        *,
        target_scale: tuple[float, float] = (0.0, 1.0),
        class_weights: Sequence[float] | None = None,
    ) -> None:
        super().__init__()
        self.spec, self.model, self.n_outputs = spec, model, n_outputs
        self.steps_per_epoch, self.augment = steps_per_epoch, augment
        self.kind = spec.task.kind
        self.loss_kind = loss_name(spec)
        self.target_scale = (float(target_scale[0]), float(target_scale[1]))
        weights = None if class_weights is None else torch.tensor(class_weights, dtype=torch.float32)
        self.register_buffer("class_weights", weights, persistent=False)
        self._epoch = _EpochSums()
        # this epoch's metrics, all of them (read through epoch_metrics()); only those Lightning's
        # own callbacks need (the monitored metric for checkpointing and early stopping, val_loss
        # for a plateau schedule) go through self.log, at about a millisecond of bookkeeping each
        self.epoch_metrics: dict[str, float] = {}
        self._logged = {spec.task.monitor_metric()[0], "val_loss"}
        # Manual optimisation: Lightning's automatic closure machinery costs more per step than a
        # small model's whole forward and backward pass; the step below is the textbook one.
        self.automatic_optimization = False

    # ------------------------------------------------------------------ core
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.loss_kind == "cross_entropy":
            if out.shape[-1] == 1:  # binary with a single logit
                out = torch.cat([torch.zeros_like(out), out], dim=-1)
            return F.cross_entropy(
                out, y, weight=self.class_weights, label_smoothing=self.spec.train.label_smoothing
            )
        if self.loss_kind == "bce":
            target = y.float()
            if self.spec.train.label_smoothing:
                target = (
                    target * (1 - self.spec.train.label_smoothing) + 0.5 * self.spec.train.label_smoothing
                )
            if self.class_weights is None:
                return F.binary_cross_entropy_with_logits(out.squeeze(-1), target)
            # weighted mean over the rows, as cross_entropy(weight=...) averages
            w = self.class_weights[y]
            losses = F.binary_cross_entropy_with_logits(out.squeeze(-1), target, reduction="none")
            return (losses * w).sum() / w.sum()
        pred = out.squeeze(-1)
        return F.mse_loss(pred, y) if self.loss_kind == "mse" else F.huber_loss(pred, y)

    def predict_output(self, out: torch.Tensor) -> torch.Tensor:
        """Probabilities (n, C) for classification (binary: [1-p, p]); values (n,) for regression."""
        if self.kind == "regression":
            return out.squeeze(-1)
        if out.shape[-1] == 1:
            p = torch.sigmoid(out.squeeze(-1))
            return torch.stack([1 - p, p], dim=-1)
        return torch.softmax(out, dim=-1)

    # ------------------------------------------------------------------ training
    def on_train_start(self) -> None:
        # Lightning's own optimizer wrapper and schedulers (its public manual-optimisation API):
        # LightningOptimizer.step() runs the precision plugin (mixed precision's autocast and
        # gradient scaling), the on_before_optimizer_step hooks and the step count behind
        # trainer.global_step.
        optimizer = self.optimizers()
        assert not isinstance(optimizer, list)  # configure_optimizers gives one optimizer
        self._optimizer = optimizer
        schedules = self.lr_schedulers()
        self._schedule = schedules[0] if isinstance(schedules, list) else schedules
        self._interval = self._schedule_interval
        self._lean = lean_step(optimizer) if self._dispatch_does_nothing() else None

    def _dispatch_does_nothing(self) -> bool:
        """Whether ``manual_backward`` and ``LightningOptimizer.step()`` would only call
        ``loss.backward()`` and ``optimizer.step()`` (plus this module's gradient clipping): 32-bit
        precision on one device (no gradient scaling, no DDP reducer) and no callback or module hook
        around the backward pass or the optimizer step. Lightning's dispatch then costs about a
        tenth of a small model's step for nothing, so the step does those calls itself (counted in
        ``trainer.global_step`` all the same: :func:`dltoolkit._hooks.lean_step`); otherwise it goes
        through ``manual_backward`` and ``optimizer.step()`` as Lightning's manual optimisation asks."""
        trainer = self.trainer
        hooks = ("on_before_backward", "on_after_backward", "on_before_optimizer_step", "on_before_zero_grad")
        callbacks: list[pl.Callback] = trainer.callbacks  # type: ignore[attr-defined]  # set by Lightning's connector
        own = ("on_before_backward", "on_after_backward", "backward", "optimizer_step", "on_before_zero_grad")
        return (
            type(trainer.precision_plugin) is Precision
            and type(trainer.strategy) is SingleDeviceStrategy
            and not any(is_overridden(h, cb, pl.Callback) for cb in callbacks for h in hooks)
            and not any(is_overridden(h, self, pl.LightningModule) for h in own)
            and type(self).on_before_optimizer_step is TaskModule.on_before_optimizer_step  # _clip only
        )

    def on_train_epoch_start(self) -> None:
        self._epoch.reset(self.device)

    def transfer_batch_to_device(self, batch, device: torch.device, dataloader_idx: int):
        # Our batches are (x, y) tensor pairs, usually already on the device: skip the generic walk.
        x, y = batch
        if x.device == device and y.device == device:
            return batch
        return x.to(device, non_blocking=True), y.to(device, non_blocking=True)

    def training_step(self, batch, batch_idx: int) -> None:
        # One Lightning step carries ``train.steps_per_execution`` mini-batches (as in Keras):
        # each one below is a full optimizer step; Lightning's per-step hooks run once per chunk.
        # The losses are read (one sync) and the correct predictions counted once per chunk.
        x, y = batch
        size = self.spec.train.batch_size
        outs, losses = [], []
        for xb, yb in zip(x.split(size), y.split(size), strict=True):
            out, loss = self._optimizer_step(xb, yb)
            outs.append(out.detach())
            losses.append(loss.detach())
        values = torch.stack(losses).tolist()
        first = batch_idx * self.spec.train.steps_per_execution
        for i, value in enumerate(values):
            if not math.isfinite(value):
                raise TrainingError(
                    f"The training loss became {value} at epoch {self.current_epoch + 1}, step "
                    f"{first + i + 1} of the epoch. Lower train.optimizer.lr, set train.grad_clip, "
                    "or check the inputs for extreme values."
                )
        sums = self._epoch
        sums.loss += sum(value * len(o) for value, o in zip(values, outs, strict=True))
        if self.kind != "regression":
            with torch.no_grad():
                sums.correct += (self._classes(torch.cat(outs)) == y).sum()  # stays on the device
        sums.seen += len(y)

    def _optimizer_step(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimizer step on one mini-batch: (its outputs, its loss)."""
        if self.augment is not None:
            x = self.augment(x)
        opt = self._optimizer
        opt.zero_grad(set_to_none=True)
        out = self.model(x)
        loss = self.loss(out, y)
        if self._lean is not None:  # nothing for Lightning's dispatch to do (see _dispatch_does_nothing)
            loss.backward()
            self._clip(opt)
            self._lean()
        else:
            # through the strategy and precision plugin: gradient scaling for 16-mixed, DDP's
            # reducer armed for this backward in data-parallel training, the hooks
            self.manual_backward(loss)
            opt.step()  # clipping happens in on_before_optimizer_step (after AMP unscales)
        if self._schedule is not None and self._interval == "step":
            self._schedule.step()
        return out, loss

    def on_before_optimizer_step(self, optimizer) -> None:
        # Lightning calls this inside opt.step(), after mixed precision has unscaled the gradients
        # (manual optimisation: the Trainer's own gradient_clip_val does not apply)
        self._clip(optimizer)

    def _clip(self, optimizer) -> None:
        if self.spec.train.grad_clip:
            self.clip_gradients(
                optimizer, gradient_clip_val=self.spec.train.grad_clip, gradient_clip_algorithm="norm"
            )

    def _classes(self, out: torch.Tensor) -> torch.Tensor:
        return (out.squeeze(-1) > 0).long() if out.shape[-1] == 1 else out.argmax(-1)

    def _train_epoch_metrics(self) -> dict[str, float]:
        n = max(1, self._epoch.seen)
        out = {"train_loss": self._epoch.loss / n}
        if self.kind != "regression":
            out["train_acc"] = self._epoch.correct.item() / n
        out["lr"] = float(self.trainer.optimizers[0].param_groups[0]["lr"])
        return out

    def on_validation_epoch_start(self) -> None:
        self._val_loss = [0.0, 0]  # loss sum, rows
        self._val_out: list[tuple[torch.Tensor, torch.Tensor]] = []  # (outputs, targets) per batch

    def validation_step(self, batch, batch_idx: int) -> None:
        x, y = batch
        out = self.model(x)
        self._val_loss[0] += self.loss(out, y).item() * len(y)
        self._val_loss[1] += len(y)
        self._val_out.append((self.predict_output(out).detach(), y))

    def val_scores(self) -> dict[str, float]:
        """This epoch's validation metrics, named ``val_<test metric>`` (``val_acc``: accuracy)."""
        if not self._val_out:
            return {}
        out = torch.cat([o for o, _ in self._val_out]).cpu().double()
        y = torch.cat([t for _, t in self._val_out]).cpu()
        if self.kind == "regression":
            center, spread = self.target_scale
            scores = regression_scores(y.double() * spread + center, out * spread + center)
        else:
            scores = classification_scores(self.kind, y, out)
        return {VAL_NAMES.get(k, f"val_{k}"): v for k, v in scores.items() if v is not None}

    def on_validation_epoch_end(self) -> None:
        # Runs after the epoch's last training batch: the whole epoch's metrics are set here, so
        # that callbacks reading them at on_train_epoch_end see this epoch's numbers. Lightning's
        # self.log costs about a millisecond per name and epoch (its result collection moves every
        # logged value to the device on each call): only the names its callbacks read go through it.
        metrics = {"val_loss": self._val_loss[0] / max(1, self._val_loss[1])}
        metrics |= self.val_scores()
        if self._epoch.seen:  # inside fit, after a training epoch
            metrics |= self._train_epoch_metrics()
        self.epoch_metrics = metrics
        self.log_dict({k: v for k, v in metrics.items() if k in self._logged}, sync_dist=False)
        if self._epoch.seen:
            self._epoch_schedule_step()

    def _epoch_schedule_step(self) -> None:
        sched = self._schedule
        if sched is None or self._interval != "epoch":
            return
        if isinstance(sched, torch.optim.lr_scheduler.ReduceLROnPlateau):
            sched.step(self.epoch_metrics["val_loss"])
        else:
            sched.step()

    def configure_optimizers(self):
        opt = make_optimizer(self.spec.train.optimizer, self.parameters())
        sched, self._schedule_interval = make_schedule(
            self.spec.train.schedule, opt, self.spec.train.epochs, self.steps_per_epoch
        )
        if sched is None:
            return opt
        return {
            "optimizer": opt,
            "lr_scheduler": {"scheduler": sched, "interval": self._schedule_interval},
        }


def epoch_metrics(trainer: pl.Trainer, module: pl.LightningModule) -> dict[str, float]:
    """The latest epoch's metrics, every name (``train_loss``, ``val_*``, ``lr``), as floats: a
    :class:`TaskModule` keeps them itself (Lightning's ``callback_metrics`` holds only the names its
    callbacks need); for any other module, ``callback_metrics``."""
    if isinstance(module, TaskModule):
        return dict(module.epoch_metrics)
    return {k: float(v) for k, v in trainer.callback_metrics.items()}


def task_model(module: pl.LightningModule) -> GraphModule:
    """The network of the :class:`TaskModule` Lightning hands a callback (typed there as its base class)."""
    assert isinstance(module, TaskModule), type(module)
    return module.model
