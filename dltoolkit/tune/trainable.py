"""What runs in a Ray worker: one trial = the spec with the trial's values, trained by ``fit``.

:func:`train_trial` is a pure function of (config, spec, prepared data). The data arrive once per
worker through Ray's object store (``tune.with_parameters``). A Lightning callback,
:class:`TuneReport`, reports every epoch to Tune with a small checkpoint holding the latest state
(weights, optimizer, schedule, epoch: what PBT exploits and a resumed trial continues from) and the
best weights so far (what the sweep's best bundle is made from).

Setting the environment variable ``DLTOOLKIT_TUNE_TRACE`` to a directory makes every trained
epoch append ``<trial id> <epoch>`` to ``trace.txt`` there (used by the resume test).
"""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback

from dltoolkit.errors import TrainingError
from dltoolkit.spec import Spec

STATE_FILE = "state.pt"
TRACE_ENV = "DLTOOLKIT_TUNE_TRACE"


def train_trial(config: dict[str, Any], *, spec: Spec, data: Any) -> None:
    """Train one trial of ``spec`` with ``config`` (dotted path -> value), reporting each epoch."""
    from ray import tune

    from dltoolkit.bundle import graph_for
    from dltoolkit.data import make_augment
    from dltoolkit.train.fit import fit

    torch.set_num_threads(1)
    trial = spec.with_values(config)
    state = read_state(tune.get_checkpoint())
    if state is not None and state["epoch"] >= trial.train.epochs:
        return  # finished before the driver stopped; nothing left to train
    graph = graph_for(trial, data.preprocessor, data.n_outputs)
    report = TuneReport(*trial.task.monitor_metric(), base_lr=trial.train.optimizer.lr, state=state)
    with tempfile.TemporaryDirectory(prefix="dltoolkit-trial-") as work:
        augment = make_augment(trial.preprocess.augment, data.input_shape)
        fit(trial, graph, data, work, augment=augment, extra_callbacks=[report])


def read_state(checkpoint: Any) -> dict[str, Any] | None:
    """The state dict inside a trial checkpoint (None for no checkpoint, or one no longer on disk)."""
    if checkpoint is None:
        return None
    with checkpoint.as_directory() as folder:
        path = Path(folder) / STATE_FILE
        return torch.load(path, map_location="cpu", weights_only=False) if path.is_file() else None


class TuneReport(Callback):
    """Reports each epoch's metrics to Ray Tune with a checkpoint; restores a trial's state at start.

    Args:
        monitor, mode: the metric that picks the best weights kept in the checkpoint.
        base_lr: the trial's learning rate (PBT may change it when it restores another trial's state).
        state: a checkpoint state to continue from.
    """

    def __init__(self, monitor: str, mode: str, base_lr: float, state: dict[str, Any] | None = None):
        self.monitor, self.mode, self.base_lr, self.state = monitor, mode, base_lr, state
        self.best = state["best"] if state else None

    def on_train_start(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        if self.state is not None:
            restore(trainer, module, self.state, self.base_lr)

    def on_train_epoch_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        from ray import tune

        epoch = trainer.current_epoch + 1
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
        score = metrics.get(self.monitor)
        if score is None or not math.isfinite(score):
            raise TrainingError(f"The monitored metric {self.monitor!r} is {score} at epoch {epoch}.")
        if self.best is None or (
            score > self.best["score"] if self.mode == "max" else score < self.best["score"]
        ):
            weights = {k: v.detach().clone() for k, v in module.model.state_dict().items()}
            self.best = {"score": score, "epoch": epoch, "weights": weights}
        with tempfile.TemporaryDirectory(prefix="dltoolkit-ckpt-") as folder:
            torch.save(self._state(trainer, module, epoch), Path(folder) / STATE_FILE)
            tune.report(metrics | {"epoch": epoch}, checkpoint=tune.Checkpoint.from_directory(folder))
        _trace(epoch)

    def _state(self, trainer: pl.Trainer, module: pl.LightningModule, epoch: int) -> dict[str, Any]:
        schedules = trainer.lr_scheduler_configs
        return {
            "epoch": epoch,
            "base_lr": self.base_lr,
            "model": module.model.state_dict(),
            "optimizer": trainer.optimizers[0].state_dict(),
            "schedule": schedules[0].scheduler.state_dict() if schedules else None,
            "best": self.best,
        }


def restore(trainer: pl.Trainer, module: pl.LightningModule, state: dict[str, Any], base_lr: float) -> None:
    """Load weights, optimizer and schedule state and continue counting epochs from the checkpoint's."""
    module.model.load_state_dict(state["model"])
    optimizer = trainer.optimizers[0]
    optimizer.load_state_dict(state["optimizer"])
    schedules = trainer.lr_scheduler_configs
    if schedules and state["schedule"] is not None:
        schedules[0].scheduler.load_state_dict(state["schedule"])
    ratio = base_lr / state["base_lr"]
    if ratio != 1.0:  # PBT explored a new learning rate: rescale the schedule to it
        for group in optimizer.param_groups:
            group["lr"] *= ratio
            if "initial_lr" in group:
                group["initial_lr"] *= ratio
        if schedules and hasattr(schedules[0].scheduler, "base_lrs"):
            schedules[0].scheduler.base_lrs = [lr * ratio for lr in schedules[0].scheduler.base_lrs]
    progress = trainer.fit_loop.epoch_progress
    for tracker in (progress.current, progress.total):
        tracker.ready = tracker.started = tracker.processed = tracker.completed = state["epoch"]


def _trace(epoch: int) -> None:
    folder = os.environ.get(TRACE_ENV)
    if folder:
        from ray import tune

        with open(Path(folder) / "trace.txt", "a") as f:
            f.write(f"{tune.get_context().get_trial_id()} {epoch}\n")
