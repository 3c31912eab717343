"""One trial's training, wherever it runs: a warm trial worker or the Tune trial actor itself.

:func:`train` trains the spec with the trial's values through :func:`dltoolkit.train.fit.fit`
(the same Lightning training as ``dltoolkit.run``) and hands every epoch to ``emit(metrics, epoch,
state)``: the metrics, and the trial's state as bytes (weights, optimizer, schedule, epoch: what
PBT exploits and a resumed trial continues from; plus the best weights so far, what the sweep's
best bundle is made from). The caller turns that into a Tune report with a checkpoint.

This module imports torch and Lightning; the light side (what Tune runs) is
:mod:`dltoolkit.tune.trainable`.
"""

from __future__ import annotations

import copy
import io
import math
import pickle
import tempfile
from collections.abc import Callable
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback

from dltoolkit._hooks import set_epoch
from dltoolkit.errors import TrainingError, message
from dltoolkit.spec import Spec
from dltoolkit.train.module import epoch_metrics, task_model

Emit = Callable[[dict[str, float], int, Any], None]  # state: bytes, or a LazyState with lazy=True


def train(
    trial: Spec, data: Any, state: bytes | None, emit: Emit, lazy: bool = False, ray_data: bool = False
) -> None:
    """Train ``trial`` (a spec with the trial's values) on prepared ``data``, from ``state`` if given.

    Each epoch's state reaches ``emit`` as bytes, or with ``lazy`` as a :class:`LazyState` (a copy
    made in memory, serialized only if the caller calls it: the local engine writes a trial's state
    when the trial ends, not every epoch). With ``ray_data`` (a Ray trial over a streamed source) the
    training rows are read with Ray Data (:func:`dltoolkit.tune.ray_data.trial_batches`) and the
    first epoch's metrics carry what was read (:func:`~dltoolkit.tune.ray_data.read_facts`).
    """
    from dltoolkit.bundle import graph_for
    from dltoolkit.data import make_augment
    from dltoolkit.train.fit import fit

    torch.set_num_threads(trial.train.threads or 1)
    start = load_state(state)
    if start is not None and start["epoch"] >= trial.train.epochs:
        return  # finished before the driver stopped; nothing left to train
    graph = graph_for(trial, data.preprocessor, data.n_outputs)
    loaders = None
    if ray_data:
        from dltoolkit.tune.ray_data import read_facts, trial_batches

        loaders = trial_batches(trial, data)
        emit = _first_with(emit, lambda: read_facts(loaders[0]))
    report = EpochReport(
        *trial.task.monitor_metric(), base_lr=trial.train.optimizer.lr, emit=emit, state=start, lazy=lazy
    )
    with tempfile.TemporaryDirectory(prefix="dltoolkit-trial-") as work:
        augment = make_augment(trial.preprocess.augment, data.input_shape)
        # no Lightning checkpoint: EpochReport keeps the trial's best weights in its state
        fit(
            trial,
            graph,
            data,
            work,
            augment=augment,
            extra_callbacks=[report],
            checkpoint=False,
            loaders=loaders,
        )


def _first_with(emit: Emit, facts: Callable[[], dict[str, Any]]) -> Emit:
    """``emit`` whose first call's metrics also hold ``facts()``."""
    done = False

    def first(metrics: dict[str, float], epoch: int, state: Any) -> None:
        nonlocal done
        if not done:
            metrics, done = metrics | facts(), True
        emit(metrics, epoch, state)

    return first


def load_state(blob: bytes | None) -> dict[str, Any] | None:
    """A trial state written by :func:`dump_state`, read with ``weights_only=True``.

    The state is plain data (tensors, numbers, strings, lists, dicts), so unpickling never runs code
    from a checkpoint; anything else in it is refused with a :class:`TrainingError`.
    """
    if blob is None:
        return None
    try:
        return torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise TrainingError(
            message(
                "A trial checkpoint holds more than tensors and plain values, so it is not loaded",
                str(e).splitlines()[0][:200],
                "a state written by dltoolkit (weights, optimizer and schedule state, numbers)",
                "Resume only sweep folders you trust; start the sweep again into a new folder.",
            )
        ) from e


def dump_state(state: dict[str, Any]) -> bytes:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


class LazyState:
    """A trial's state at the end of an epoch, copied in memory; calling it gives the bytes
    :func:`dump_state` would (serialized once, on the first call)."""

    def __init__(self, state: dict[str, Any]) -> None:
        self._state: dict[str, Any] | None = state
        self._bytes: bytes | None = None

    def __call__(self) -> bytes:
        if self._bytes is None:
            assert self._state is not None  # dropped only once serialized
            self._bytes, self._state = dump_state(self._state), None
        return self._bytes


class EpochReport(Callback):
    """Hands each epoch's metrics and state to ``emit``; restores a trial's state at the start.

    Args:
        monitor, mode: the metric that picks the best weights kept in the state.
        base_lr: the trial's learning rate (PBT may change it when it restores another trial's state).
        emit: called as ``emit(metrics, epoch, state)`` after every training epoch.
        state: a state to continue from.
        lazy: hand ``emit`` a :class:`LazyState` instead of the state's bytes.
    """

    def __init__(
        self,
        monitor: str,
        mode: str,
        base_lr: float,
        emit: Emit,
        state: dict[str, Any] | None = None,
        lazy: bool = False,
    ) -> None:
        self.monitor, self.mode, self.base_lr, self.emit, self.state = monitor, mode, base_lr, emit, state
        self.best = state["best"] if state else None
        self.lazy = lazy

    def on_train_start(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        if self.state is not None:
            restore(trainer, module, self.state, self.base_lr)

    def on_train_epoch_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        epoch = trainer.current_epoch + 1
        metrics = epoch_metrics(trainer, module)
        score = metrics.get(self.monitor)
        if score is None or not math.isfinite(score):
            raise TrainingError(f"The monitored metric {self.monitor!r} is {score} at epoch {epoch}.")
        if self.best is None or (
            score > self.best["score"] if self.mode == "max" else score < self.best["score"]
        ):
            weights = {k: v.detach().clone() for k, v in task_model(module).state_dict().items()}
            self.best = {"score": score, "epoch": epoch, "weights": weights}
        state = self._state(trainer, module, epoch)
        self.emit(metrics, epoch, LazyState(state) if self.lazy else dump_state(state))

    def _state(self, trainer: pl.Trainer, module: pl.LightningModule, epoch: int) -> dict[str, Any]:
        schedules = trainer.lr_scheduler_configs
        live = {
            "model": task_model(module).state_dict(),
            "optimizer": trainer.optimizers[0].state_dict(),
            "schedule": schedules[0].scheduler.state_dict() if schedules else None,
        }
        if self.lazy:  # training goes on: a copy (the best weights are a copy already)
            live = copy.deepcopy(live)
        return {"epoch": epoch, "base_lr": self.base_lr, **live, "best": self.best}


def restore(trainer: pl.Trainer, module: pl.LightningModule, state: dict[str, Any], base_lr: float) -> None:
    """Load weights, optimizer and schedule state and continue counting epochs from the state's."""
    task_model(module).load_state_dict(state["model"])
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
    set_epoch(trainer, state["epoch"])  # a private Lightning counter: see dltoolkit._hooks
