"""Train a spec's model with a Lightning Trainer on in-memory tensors or streamed image batches.

Example:
    >>> result = fit(spec, prepared, workdir="runs/x")  # doctest: +SKIP
    >>> result.history.tail(1)                          # doctest: +SKIP
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback, EarlyStopping, ModelCheckpoint

from dltoolkit._hooks import cache_entry_points
from dltoolkit._quiet import quiet_libraries
from dltoolkit.errors import SpecError, TrainingError, message
from dltoolkit.graph import Graph, GraphModule
from dltoolkit.spec import Spec
from dltoolkit.train.finetune import finetune_callbacks
from dltoolkit.train.module import TaskModule, epoch_metrics

cache_entry_points()  # each Trainer would scan the installed packages again (see dltoolkit._hooks)


class TensorBatches:
    """Batches sliced straight from in-memory tensors: no per-sample collate, shuffled per epoch.

    Args:
        x, y: the whole split.
        batch_size: rows per batch (the last batch may be smaller).
        shuffle: reshuffle at every pass with a generator seeded from ``seed`` and the pass number.
    """

    def __init__(
        self, x: torch.Tensor, y: torch.Tensor, batch_size: int, shuffle: bool = False, seed: int = 0
    ):
        self.x, self.y, self.batch_size, self.shuffle, self.seed = x, y, batch_size, shuffle, seed
        self._epoch = 0

    def __len__(self) -> int:
        return math.ceil(len(self.x) / self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        # A generator: the pass is counted (and shuffled) only once iteration really starts, so an
        # iter() taken just to inspect the loader does not shift the shuffling of later epochs.
        x, y = self.x, self.y
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 100_003 + self._epoch)
            order = torch.randperm(len(x), generator=g)
            x, y = x[order], y[order]
        self._epoch += 1
        yield from zip(x.split(self.batch_size), y.split(self.batch_size), strict=True)


def batches(spec: Spec, data) -> tuple[Any, Any]:
    """The training and validation batches of prepared ``data``.

    In-memory splits are sliced by :class:`TensorBatches` (``train.steps_per_execution`` batches
    per Lightning step; validation in one batch). Streamed splits (image files, table rows) come from
    DataLoaders whose worker processes decode or read them, one ``train.batch_size`` batch at a time; the
    workers stay up between epochs.
    """
    if isinstance(data.X_train, torch.Tensor):
        chunk = spec.train.batch_size * spec.train.steps_per_execution
        train_batches = TensorBatches(data.X_train, data.y_train, chunk, shuffle=True, seed=spec.train.seed)
        return train_batches, TensorBatches(data.X_val, data.y_val, max(1, len(data.X_val)))  # one batch
    from dltoolkit.data.images.stream import loader
    from dltoolkit.data.tables.stream import TableRows

    size, workers = spec.train.batch_size, spec.data.workers
    if isinstance(data.X_train, TableRows):
        seed = spec.train.seed
        train = data.X_train.loader(size, workers=workers, shuffle=True, seed=seed, persistent=True)
        return train, data.X_val.loader(size, workers=workers, persistent=True)
    train = loader(data.X_train, size, workers=workers, shuffle=True, seed=spec.train.seed, persistent=True)
    return train, loader(data.X_val, size, workers=workers, persistent=True)


class History(Callback):
    """Collects the per-epoch metrics Lightning logged into a list of rows."""

    def __init__(self, listeners: Sequence[Callable[[dict[str, Any]], None]] = ()) -> None:
        self.rows: list[dict[str, Any]] = []
        self.listeners = list(listeners)

    def on_train_epoch_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        row: dict[str, Any] = {"epoch": trainer.current_epoch + 1}
        row |= epoch_metrics(trainer, module)
        self.rows.append(row)
        for listen in self.listeners:
            listen(dict(row))

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows)


class EpochProgress(Callback):
    """A tqdm bar advancing once per epoch with the latest metrics (cheap: no per-step refresh)."""

    def on_train_start(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        from tqdm.auto import tqdm

        self.bar = tqdm(total=trainer.max_epochs, desc="training", unit="epoch", leave=True)

    def on_train_epoch_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        shown = {k: f"{v:.4g}" for k, v in epoch_metrics(trainer, module).items() if k != "lr"}
        self.bar.set_postfix(shown, refresh=False)
        self.bar.update(1)

    def on_train_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        self.bar.close()

    def on_exception(self, trainer: pl.Trainer, module: pl.LightningModule, exception: BaseException) -> None:
        if hasattr(self, "bar"):
            self.bar.close()


@dataclass
class FitResult:
    """What training produced: the best model, the history and where its checkpoint is.

    ``epochs`` counts the epochs run (of at most ``max_epochs``); ``stopped_early`` is True when
    early stopping ended training.
    """

    model: GraphModule
    history: pd.DataFrame
    best_score: float | None
    best_epoch: int | None
    checkpoint: Path | None
    monitor: str
    epochs: int = 0
    max_epochs: int = 0
    stopped_early: bool = False

    @property
    def still_improving(self) -> bool:
        """True when training ended (not by early stopping) with its best epoch among the last few.

        "The last few" is the last tenth of the epochs run, at least 1 and at most 5 epochs.
        """
        if self.stopped_early or self.best_epoch is None or self.epochs < 1:
            return False
        window = max(1, min(5, self.epochs // 10))
        return self.best_epoch > self.epochs - window

    def info(self) -> dict[str, Any]:
        """The facts a run records about its training (for ``info.json`` and the report)."""
        return {
            "epochs": self.epochs,
            "max_epochs": self.max_epochs,
            "stopped_early": self.stopped_early,
            "still_improving": self.still_improving,
        }

    def warnings(self) -> list[str]:
        """One sentence when training ended while the monitored metric was still improving."""
        if not self.still_improving:
            return []
        fix = (
            "Raise train.epochs (train.early_stopping then stops when it no longer improves)."
            if self.epochs >= self.max_epochs
            else "Training was stopped before train.epochs; train longer."
        )
        return [
            f"Training ended at epoch {self.epochs} of {self.max_epochs} while {self.monitor} was "
            f"still improving (best at epoch {self.best_epoch}): the model is probably under-trained. {fix}"
        ]


def build_module(spec: Spec, graph: Graph, steps_per_epoch: int, augment=None, data=None) -> TaskModule:
    """The TaskModule of ``graph``; ``data`` (a Prepared) gives the target scaling and class weights."""
    return TaskModule(
        spec, graph.compile(), graph.n_outputs or 1, steps_per_epoch, augment, **module_options(data)
    )


def module_options(data) -> dict[str, Any]:
    """TaskModule's data-dependent arguments from a Prepared (plain values, safe to ship to workers)."""
    if data is None:
        return {}
    return {"target_scale": data.target.scale_params, "class_weights": data.class_weights}


def make_trainer(spec: Spec, workdir: Path, callbacks: list[Callback], **overrides: Any) -> pl.Trainer:
    """A Trainer set for small in-memory models: no logger, no per-step work, no sanity pass.

    Its accelerator and precision come from ``train.accelerator`` and ``train.precision`` (see
    :func:`device_settings`); ``overrides`` replace any argument.
    """
    accelerator, precision = device_settings(spec)
    args: dict[str, Any] = dict(
        max_epochs=spec.train.epochs,
        accelerator=accelerator,
        precision=precision,
        devices=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        deterministic="warn",  # CUDA ops without a deterministic kernel warn instead of failing
        default_root_dir=str(workdir),
        callbacks=callbacks,
        log_every_n_steps=1_000_000,
    )
    args.update(overrides)
    return pl.Trainer(**args)


PRECISIONS = {"32": "32-true", "bf16-mixed": "bf16-mixed", "16-mixed": "16-mixed"}  # spec -> Lightning


def device_settings(spec: Spec, cuda: bool | None = None, where: str | None = None) -> tuple[str, str]:
    """Lightning's ``(accelerator, precision)`` for the spec's ``train.accelerator`` and ``train.precision``.

    Args:
        spec: the experiment spec.
        cuda: whether a CUDA GPU is there to train on (default: ``torch.cuda.is_available()``).
        where: what the errors say about the GPUs there are (default: what PyTorch sees here).

    Raises:
        SpecError: ``train.accelerator`` is gpu (or cuda) without a CUDA GPU, or ``train.precision``
            is 16-mixed where training would not run on a GPU (float16 autocast with gradient
            scaling is a CUDA feature; bf16-mixed runs on CPU).
    """
    cuda = torch.cuda.is_available() if cuda is None else cuda
    where = where or "PyTorch sees no CUDA GPU here (torch.cuda.is_available() is False)"
    want = spec.train.accelerator
    if want in ("gpu", "cuda") and not cuda:
        raise SpecError(
            message(
                f"train.accelerator asks for a GPU but {where}",
                want,
                "cpu or auto where there is no CUDA GPU",
                "Set train.accelerator: auto (a GPU when there is one, else the CPU) or cpu; for a GPU, "
                "install a CUDA build of PyTorch on a machine with an NVIDIA GPU.",
            )
        )
    accelerator = "gpu" if want in ("gpu", "cuda") or (want == "auto" and cuda) else "cpu"
    precision = spec.train.precision
    if precision == "16-mixed" and accelerator != "gpu":
        raise SpecError(
            message(
                "train.precision 16-mixed needs a CUDA GPU" + ("" if cuda else f", and {where}"),
                {"train.precision": precision, "train.accelerator": want},
                "16-mixed together with train.accelerator gpu or auto on a machine with a CUDA GPU",
                "Use train.precision: bf16-mixed (bfloat16 autocast, which runs on CPU) or 32"
                + (", or set train.accelerator: gpu." if cuda else "."),
            )
        )
    return accelerator, PRECISIONS[precision]


def fit(
    spec: Spec,
    graph: Graph,
    data,
    workdir: str | os.PathLike,
    *,
    progress: bool = False,
    listeners: Sequence[Callable[[dict[str, Any]], None]] = (),
    augment=None,
    extra_callbacks: Sequence[Callback] = (),
    checkpoint: bool = True,
    loaders: tuple[Any, Any] | None = None,
) -> FitResult:
    """Train ``graph`` on ``data`` (a dltoolkit.data.Prepared) as the spec says; return the best model.

    A NaN loss raises TrainingError naming the epoch and step; the best checkpoint so far stays in
    ``workdir/checkpoints`` and its path is in the message. ``checkpoint=False`` (a sweep's trial,
    whose own callback keeps its best weights) writes no checkpoint: the model returned is the last
    epoch's, and ``best_score``/``best_epoch`` come from the history. ``loaders`` replaces the
    training and validation batches :func:`batches` would make (a sweep trial reading with Ray Data).
    """
    workdir = Path(workdir)
    if spec.train.threads:
        torch.set_num_threads(spec.train.threads)
    pl.seed_everything(spec.train.seed, workers=False, verbose=False)
    train, val = loaders if loaders is not None else batches(spec, data)
    steps = math.ceil(len(data.X_train) / spec.train.batch_size)
    module = build_module(spec, graph, steps, augment, data)
    monitor, mode = spec.task.monitor_metric()
    ckpt = None
    if checkpoint:
        ckpt = ModelCheckpoint(
            dirpath=workdir / "checkpoints",
            filename="best",
            monitor=monitor,
            mode=mode,
            save_weights_only=True,
            save_last=False,
            enable_version_counter=False,
        )
    history = History(listeners)
    callbacks: list[Callback] = [history, *finetune_callbacks(module.model), *extra_callbacks]
    if ckpt is not None:
        callbacks.insert(1, ckpt)
    early = None
    if spec.train.early_stopping:
        early = EarlyStopping(monitor=monitor, mode=mode, patience=spec.train.early_stopping)
        callbacks.append(early)
    if progress:
        callbacks.append(EpochProgress())
    with quiet_libraries():  # Lightning's banners and tips (see dltoolkit._quiet)
        trainer = make_trainer(spec, workdir, callbacks, enable_checkpointing=checkpoint)
    with quiet_libraries(), warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore",
            message=".*(does not have many workers|IterableDataset|LightningModule.*"
            "has parameters that were not used|smaller than the logging).*",
        )
        try:
            trainer.fit(module, train_dataloaders=train, val_dataloaders=val)
        except TrainingError as e:
            if ckpt is None:
                raise
            kept = ckpt.best_model_path or "none (no epoch finished)"
            raise TrainingError(f"{e} The best checkpoint so far is kept: {kept}.") from None
    result = _result(module, ckpt, history, monitor, mode)
    result.epochs, result.max_epochs = len(result.history), spec.train.epochs
    result.stopped_early = early is not None and early.stopped_epoch > 0
    return result


def _result(
    module: TaskModule, ckpt: ModelCheckpoint | None, history: History, monitor: str, mode: str
) -> FitResult:
    frame = history.frame()
    if ckpt is None:  # no checkpoint: the last epoch's model, the best score from the history
        scores = frame[monitor].dropna() if monitor in frame else pd.Series(dtype=float)
        best = None if scores.empty else float(scores.max() if mode == "max" else scores.min())
        path = None
    else:
        path = Path(ckpt.best_model_path) if ckpt.best_model_path else None
        best = float(ckpt.best_model_score) if ckpt.best_model_score is not None else None
    if path is not None:
        state = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
        module.load_state_dict(state)
    best_epoch = None
    if best is not None and monitor in frame:
        best_epoch = int(frame.loc[(frame[monitor] - best).abs().idxmin(), "epoch"])
    model = module.model.cpu().eval()
    return FitResult(model, frame, best, best_epoch, path, monitor)
