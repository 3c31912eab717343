"""The training panel: training settings, a Train button that trains in a background thread with
live learning curves, a Stop button that ends training cleanly after the current batch, and a
Suggest button that runs the learning-rate range test (:func:`dltoolkit.lr_find`) and writes its
suggestion into the spec.

Example:
    >>> from dltoolkit.recipes import load_recipe
    >>> trainer = TrainController(SpecState(load_recipe("seed-linear")))
    >>> trainer.set("train.optimizer.lr", -1.0)
    Traceback (most recent call last):
    ...
    dltoolkit.errors.SpecError: Invalid spec:
      Invalid value for 'train.optimizer.lr': received -1.0; expected input should be greater than 0.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ipywidgets as w
import pandas as pd
import pytorch_lightning as pl
from pytorch_lightning.callbacks import Callback

from dltoolkit._files import new_out_dir
from dltoolkit.api import Run
from dltoolkit.errors import DLToolkitError
from dltoolkit.widgets._common import MessageBox, explain, image, labelled, whole_labels, wrap
from dltoolkit.widgets._state import SpecState


class StopOnEvent(Callback):
    """Asks Lightning to stop after the current batch once ``event`` is set."""

    def __init__(self, event: threading.Event) -> None:
        self.event = event

    def on_train_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        if self.event.is_set():
            trainer.should_stop = True

    def on_train_epoch_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        if self.event.is_set():
            trainer.should_stop = True


def train_run(spec, data, out: Path, listeners=(), callbacks=()) -> Run:
    """``dltoolkit.api.run`` writing plots and report, with the panel's listeners and callbacks."""
    from dltoolkit.api import run

    return run(spec, data, out=out, listeners=listeners, callbacks=callbacks)


class TrainController:
    """Edits the spec's train section and trains it in a background thread.

    Attributes:
        rows: the per-epoch metrics of the current (or last) training.
        result: the :class:`dltoolkit.api.Run` of the last finished training, or None.
        error: the message of the last failed training, or "".
        status: "idle", "running", "stopping", "stopped", "done" or "failed".
        found: the :class:`~dltoolkit.train.lr_find.LRFind` of the last learning-rate range test, or None.
        finding: True while a range test runs.
    """

    def __init__(self, state: SpecState, out: str | Path = "runs") -> None:
        self.state = state
        self.out = Path(out)
        self.rows: list[dict[str, Any]] = []
        self.result: Run | None = None
        self.error = ""
        self.status = "idle"
        self.on_epoch: list[Callable[[dict[str, Any]], None]] = []
        self.on_done: list[Callable[[TrainController], None]] = []
        self.seconds: list[float] = []  # wall time of each epoch of the current (or last) training
        self.epochs = 0  # the epochs the current (or last) training was asked for
        self._stop = threading.Event()
        self._last = 0.0
        self._thread: threading.Thread | None = None
        self.found: Any = None
        self.finding = False
        self.on_found: list[Callable[[TrainController], None]] = []

    def set(self, path: str, value: Any) -> None:
        """Set one training option by dotted path, e.g. ``("train.optimizer.lr", 0.01)`` (validated)."""
        if not path.startswith("train."):
            path = f"train.{path}"
        self.state.update({path: value})

    @property
    def running(self) -> bool:
        alive = self._thread is not None and self._thread.is_alive()
        return alive and self.status in ("running", "stopping")  # not while telling on_done listeners

    def history(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows)

    def start(self, out: str | Path | None = None) -> threading.Thread:
        """Train the current spec in a background thread; returns the thread."""
        if self.running:
            raise DLToolkitError("Training is already running: press Stop first or wait for it to end.")
        if self.finding:
            raise DLToolkitError("The learning-rate range test is running: train once it has ended.")
        self.rows, self.result, self.error, self.status = [], None, "", "running"
        self._stop.clear()
        spec, data = self.state.spec, self.state.data
        self.seconds, self.epochs, self._last = [], spec.train.epochs, time.perf_counter()
        folder = Path(out) if out else new_out_dir(spec.name, self.out)
        self._thread = threading.Thread(
            target=self._work, args=(spec, data, folder), daemon=True, name="dltoolkit-train"
        )
        self._thread.start()
        return self._thread

    def suggest(self) -> threading.Thread:
        """Run the learning-rate range test on the current spec in a background thread.

        On success :attr:`found` holds the result and its suggestion is written into the shared
        spec (``train.optimizer.lr``), so every panel sees it; on failure :attr:`error` says why.
        """
        if self.running or self.finding:
            raise DLToolkitError(
                "Training or a range test is running: wait for it to end, then press Suggest."
            )
        self.finding, self.error = True, ""
        spec, data = self.state.spec, self.state.data
        self._thread = threading.Thread(
            target=self._find, args=(spec, data), daemon=True, name="dltoolkit-lr-find"
        )
        self._thread.start()
        return self._thread

    def _find(self, spec, data) -> None:
        from dltoolkit.train.lr_find import lr_find

        try:
            self.found = lr_find(spec, data)
            self.state.update({"train.optimizer.lr": self.found.suggestion})
        except Exception as e:  # reported in the panel, never raised into the kernel
            self.found, self.error = None, explain(e)
        self.finding = False
        for listener in list(self.on_found):
            listener(self)

    def stop(self) -> None:
        """Ask training to stop after the current batch (the best model so far is kept and evaluated)."""
        if self.running:
            self.status = "stopping"
            self._stop.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the background training (or range test); True when it has ended."""
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.running and not self.finding

    def eta(self) -> float | None:
        """Seconds left at the mean pace of the epochs so far (None before the first epoch ends)."""
        if not self.seconds or not self.running:
            return None
        return sum(self.seconds) / len(self.seconds) * max(self.epochs - len(self.seconds), 0)

    def _epoch(self, row: dict[str, Any]) -> None:
        now = time.perf_counter()
        self.seconds.append(now - self._last)
        self._last = now
        self.rows.append(row)
        for listener in list(self.on_epoch):
            listener(row)

    def _work(self, spec, data, folder: Path) -> None:
        try:
            self.result = train_run(spec, data, folder, [self._epoch], [StopOnEvent(self._stop)])
            self.status = "stopped" if self._stop.is_set() else "done"
        except Exception as e:  # reported in the panel, never raised into the kernel
            self.error, self.status = explain(e), "failed"
        for listener in list(self.on_done):
            listener(self)


class TrainPanel(w.VBox):
    """Optimizer, schedule, learning rate, batch size, epochs...; Train / Stop; live curves."""

    def __init__(self, controller: TrainController) -> None:
        from dltoolkit.train.optim import OPTIMIZERS, SCHEDULES

        super().__init__()
        self.add_class("dlt-train-panel")
        self.controller = c = controller
        self.message = MessageBox()
        t = c.state.spec.train
        self.fields: dict[str, w.Widget] = {
            "optimizer.name": w.Dropdown(
                options=OPTIMIZERS.names(), value=t.optimizer.name, description="Optimizer"
            ),
            "schedule.name": w.Dropdown(
                options=SCHEDULES.names(), value=t.schedule.name, description="Schedule"
            ),
            "optimizer.lr": w.FloatText(value=t.optimizer.lr, description="Learning rate"),
            "optimizer.weight_decay": w.FloatText(value=t.optimizer.weight_decay, description="Weight decay"),
            "batch_size": w.IntText(value=t.batch_size, description="Batch size"),
            "epochs": w.IntText(value=t.epochs, description="Epochs"),
            "early_stopping": w.IntText(value=t.early_stopping or 0, description="Early stop"),
            "seed": w.IntText(value=t.seed, description="Seed"),
        }
        whole_labels(*self.fields.values())
        for path, field in self.fields.items():
            field.add_class("dlt-train-" + path.replace(".", "-").replace("_", "-"))
            field.observe(lambda ch, p=path: self._set(p, ch["new"]), "value")
        self.train_button = labelled(
            w.Button(description="Train", icon="play", button_style="success"), "dlt-train-button"
        )
        self.suggest_button = labelled(
            w.Button(
                description="Suggest",
                icon="search",
                tooltip="suggest a learning rate with a range test (dltoolkit.lr_find)",
            ),
            "dlt-suggest-lr-button",
        )
        self.stop_button = labelled(
            w.Button(description="Stop", icon="stop", button_style="danger"), "dlt-stop-button"
        )
        self.status = labelled(w.HTML(), "dlt-train-status")
        self.progress = labelled(
            w.IntProgress(value=0, min=0, max=1, layout=w.Layout(width="240px", visibility="hidden")),
            "dlt-train-progress",
        )
        self.epoch_table = labelled(
            w.HTML(layout=w.Layout(max_height="320px", overflow="auto", min_width="320px")), "dlt-epoch-table"
        )
        self.curves = image("dlt-train-curves")
        self.lr_plot = image("dlt-lr-find-plot")
        self.suggest_button.on_click(lambda _: self._suggest())
        c.on_found.append(lambda _c: self._found())
        self.train_button.on_click(lambda _: self._start())
        self.stop_button.on_click(lambda _: c.stop())
        c.on_epoch.append(lambda _row: self._draw())
        c.on_done.append(lambda _c: self._draw())
        fields = list(self.fields.values())
        self.children = [
            w.HBox([w.VBox(fields[:4]), w.VBox(fields[4:])], layout=wrap()),
            w.HBox(
                [self.train_button, self.stop_button, self.suggest_button, self.progress, self.status],
                layout=wrap(),
            ),
            self.message,
            self.lr_plot,
            w.HBox([self.curves, self.epoch_table], layout=wrap()),
        ]
        c.state.observe(lambda _spec: self._sync())
        self._buttons()

    def _set(self, path: str, value: Any) -> None:
        if self._syncing:
            return
        if path == "early_stopping" and not value:
            value = None
        self.message.clear()
        try:
            self.controller.set(path, value)
            self._rejected = None
        except (DLToolkitError, ValueError) as e:
            self._rejected = path
            self.message.error(e)

    _syncing = False
    _rejected: str | None = None  # a field whose value the spec refused (training waits for a fix)

    def _sync(self) -> None:
        self._syncing = True
        try:
            for path, field in self.fields.items():
                value = self.controller.state.spec.get_value(f"train.{path}")
                field.value = 0 if value is None else value
        finally:
            self._syncing = False

    def _start(self) -> None:
        if self._rejected:  # a field holds a rejected value: do not train with the old one silently
            self.message.error(self.message.text + "\nFix this value before training.")
            return
        self.message.clear()  # the last training's error no longer holds
        try:
            self.controller.start()
        except DLToolkitError as e:
            self.message.error(e)
        self._draw()

    def _suggest(self) -> None:
        self.message.clear()
        try:
            self.controller.suggest()
        except DLToolkitError as e:
            self.message.error(e)
            return
        self.status.value = '<span class="dlt-status-finding">finding a learning rate…</span>'
        self._buttons()

    def _found(self) -> None:
        c = self.controller
        self._buttons()
        self.status.value = ""
        if c.found is None:
            self.message.error(c.error)
            return
        self.lr_plot.show(c.found.plot())
        how = "diverged" if c.found.diverged else "did not diverge"
        self.message.info(
            f"Learning rate set to {c.found.suggestion:.2g} in the spec (train.optimizer.lr): where the "
            f"smoothed loss fell fastest in a {len(c.found.lrs)}-step range test (the loss {how})."
        )

    def _buttons(self) -> None:
        """Train and Suggest are disabled while either runs, Stop while training does not (or is stopping)."""
        c = self.controller
        self.train_button.disabled = c.running or c.finding
        self.suggest_button.disabled = c.running or c.finding
        self.stop_button.disabled = not c.running or c.status == "stopping"

    def _draw(self) -> None:
        from dltoolkit.evaluate import LearningCurveDisplay

        c = self.controller
        epochs = len(c.rows)
        self._buttons()
        self._progress(epochs)
        text = {
            "running": f"training… epoch {epochs}/{c.epochs}",
            "stopping": "stopping…",
            "stopped": f"stopped after {epochs} epoch(s)",
            "done": f"done: {epochs} epoch(s)",
            "failed": "failed",
            "idle": "",
        }[c.status]
        if c.result is not None:
            text += f" · {_headline(c.result.metrics)} · saved in {c.result.out}"
        self.status.value = f'<span class="dlt-status-{c.status}">{text}</span>'
        if c.error:
            self.message.error(c.error)
        if epochs:
            self.curves.show(LearningCurveDisplay.from_history(c.history()).plot())
            self.epoch_table.value = epoch_table(c.history(), c.seconds)

    def _progress(self, epochs: int) -> None:
        c, bar = self.controller, self.progress
        if c.status == "idle":
            return
        bar.layout.visibility = "visible"
        bar.max, bar.value = max(c.epochs, 1), min(epochs, max(c.epochs, 1))
        eta = c.eta()
        bar.description = f"ETA {eta:.0f} s" if eta is not None else ""
        bar.bar_style = {"failed": "danger", "stopped": "warning", "done": "success"}.get(c.status, "info")


def epoch_table(history: pd.DataFrame, seconds: list[float]) -> str:
    """The per-epoch table: losses and metrics (4 significant digits) and each epoch's wall time."""
    from dltoolkit.widgets._common import table_html

    table = history.copy()
    if len(seconds) == len(table):
        table["seconds"] = [round(t, 2) for t in seconds]
    keep = [c for c in table.columns if c == "epoch" or c == "seconds" or c.startswith(("train_", "val_"))]
    return table_html(table[keep].iloc[::-1], "dlt-table dlt-epochs-table")  # the newest epoch on top


def _headline(metrics: dict[str, Any]) -> str:
    for key in ("accuracy", "r2", "mae"):
        if metrics.get(key) is not None:
            return f"test {key} {metrics[key]:.3f}"
    return ""
