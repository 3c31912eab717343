"""The tuning panel: the search space, searcher, scheduler, trials, concurrency and cluster address;
Launch runs a sweep (``dltoolkit.tune.sweep``) in the background with a live trial table and curves.

Example:
    >>> from dltoolkit.recipes import load_recipe
    >>> tuner = TuneController(SpecState(load_recipe("wine")))
    >>> tuner.set_space("train.batch_size", "choice", [8, 16])
    >>> sorted(tuner.state.spec.search.space)
    ['graph.nodes.hidden.units', 'train.batch_size', 'train.optimizer.lr']
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ipywidgets as w
import pandas as pd
import yaml

from dltoolkit._files import new_out_dir
from dltoolkit.errors import DLToolkitError, SpecError, message
from dltoolkit.widgets._common import MessageBox, explain, image, labelled, table_html
from dltoolkit.widgets._state import SpecState
from dltoolkit.widgets.graph_builder import replace

SEARCHERS = ("random", "grid", "optuna")
SCHEDULERS = ("fifo", "asha", "hyperband", "median", "pbt")


class TuneController:
    """Edits ``spec.search`` and runs the sweep in the background.

    Attributes:
        sweep: the running or last :class:`dltoolkit.tune.Sweep`, or None.
        status: "idle", "starting", "running", "stopping", "done" or "failed"; ``error`` its message.
        address: a Ray cluster address ("" for a local Ray).
    """

    def __init__(self, state: SpecState, out: str | Path = "runs") -> None:
        self.state = state
        self.out = Path(out)
        self.address = ""
        self.sweep = None
        self.status, self.error = "idle", ""
        self.rows = 0
        self.on_change: list[Callable[[], None]] = []
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ the space and settings
    def space(self) -> pd.DataFrame:
        rows = [
            {"path": p, "domain": next(iter(d)), "range": d[next(iter(d))]}
            for p, d in self.state.spec.search.space.items()
        ]
        return pd.DataFrame(rows, columns=["path", "domain", "range"])

    def set_space(self, path: str, domain: str, args: Any) -> None:
        """Add or change one tunable field; the path and range are checked against the spec."""
        from dltoolkit.tune.space import parse_space

        parsed = parse_space({path: {domain: args}})[path]
        spec = self.state.spec
        spec.with_values({path: parsed.values()[0]})  # the path exists and takes such values
        self.state.set(replace(spec, "search", "space", dict(spec.search.space) | {path: {domain: args}}))

    def remove_space(self, path: str) -> None:
        space = dict(self.state.spec.search.space)
        if path not in space:
            raise SpecError(message("Not in the search space", path, f"one of {sorted(space)}"))
        del space[path]
        self.state.set(replace(self.state.spec, "search", "space", space))

    def set(self, field: str, value: Any) -> None:
        """Set one ``search`` option (samples, search, scheduler, max_concurrent, max_epochs...)."""
        self.state.update({f"search.{field}": value})

    # ------------------------------------------------------------------ running
    @property
    def running(self) -> bool:
        launching = self._thread is not None and self._thread.is_alive()
        return launching or (self.sweep is not None and not self.sweep.done)

    def launch(self) -> threading.Thread:
        """Check and start the sweep in a background thread (Ray starts there, not in the kernel)."""
        if self.running:
            raise DLToolkitError("A sweep is already running: press Stop first or wait for it to end.")
        # Ray Tune repeats a checkpoint-sync warning into the cell's output every few seconds
        os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
        spec, data = self.state.spec, self.state.data
        self.sweep, self.status, self.error, self.rows = None, "starting", "", 0
        out = new_out_dir(f"{spec.name}-sweep", self.out)
        self._thread = threading.Thread(
            target=self._work, args=(spec, data, out), daemon=True, name="dltoolkit-sweep-launch"
        )
        self._thread.start()
        self._changed()
        return self._thread

    def _work(self, spec, data, out: Path) -> None:
        from dltoolkit.tune import sweep

        try:
            self.sweep = sweep(spec, address=self.address or None, out=out, data=data, background=True)
            self.sweep.subscribe(self._row)
            self.status = "running"
            self._changed()
            self.sweep.wait()
            self.status = "stopped" if self.sweep.stopped else "done"
        except Exception as e:  # shown in the panel, never raised into the kernel
            self.status, self.error = "failed", explain(e)
        self._changed()

    def _row(self, _row: dict[str, Any]) -> None:
        self.rows += 1
        self._changed()

    def _changed(self) -> None:
        for listener in list(self.on_change):
            listener()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the sweep to end; True when it has."""
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.running

    def stop(self) -> None:
        """Stop the sweep cleanly (finished trials are kept; the Ray it started is shut down)."""
        if self.sweep is not None and not self.sweep.done:
            self.status = "stopping"
            self._changed()
            threading.Thread(target=self.sweep.stop, daemon=True, name="dltoolkit-sweep-stop").start()

    def trials(self) -> pd.DataFrame:
        return self.sweep.trials() if self.sweep is not None else pd.DataFrame()

    def apply_best(self) -> dict[str, Any]:
        """Make the best trial's configuration the current spec; returns that configuration."""
        best = self.sweep.best if self.sweep is not None else None
        if not best:
            raise DLToolkitError("No trial has reported a result yet: launch a sweep and wait for results.")
        self.state.update(best["config"])
        return best["config"]


class TunePanel(w.VBox):
    """Search space table and editor, sweep settings, Launch / Stop, live trials, best and plots."""

    def __init__(self, controller: TuneController, interval: float = 0.5) -> None:
        super().__init__()
        self.add_class("dlt-tune-panel")
        self.controller = c = controller
        self.interval = interval
        s = c.state.spec.search
        self.message = MessageBox()
        self.space = labelled(w.HTML(), "dlt-space")
        self.path = labelled(w.Text(description="Path", placeholder="train.optimizer.lr"), "dlt-space-path")
        self.range = labelled(
            w.Text(description="Range", placeholder="{loguniform: [0.0001, 0.1]}"), "dlt-space-range"
        )
        self.set_button = labelled(w.Button(description="Set"), "dlt-space-set")
        self.remove_button = labelled(w.Button(description="Remove"), "dlt-space-remove")
        self.fields = {
            "search": w.Dropdown(options=SEARCHERS, value=s.search, description="Searcher"),
            "scheduler": w.Dropdown(options=SCHEDULERS, value=s.scheduler, description="Scheduler"),
            "samples": w.IntText(value=s.samples, description="Trials"),
            "max_concurrent": w.IntText(value=s.max_concurrent or 0, description="Concurrent"),
            "max_epochs": w.IntText(value=s.max_epochs or c.state.spec.train.epochs, description="Epochs"),
        }
        for name, field in self.fields.items():
            field.add_class(f"dlt-tune-{name.replace('_', '-')}")
            field.observe(lambda ch, n=name: self._set(n, ch["new"]), "value")
        self.address = labelled(
            w.Text(description="Cluster", placeholder="local Ray (or host:port)"), "dlt-tune-address"
        )
        self.address.observe(lambda ch: setattr(c, "address", ch["new"].strip()), "value")
        self.launch_button = labelled(
            w.Button(description="Launch", icon="rocket", button_style="success"), "dlt-launch-button"
        )
        self.stop_button = labelled(
            w.Button(description="Stop", icon="stop", button_style="danger"), "dlt-tune-stop-button"
        )
        self.best_button = labelled(w.Button(description="Use best config"), "dlt-use-best")
        self.status = labelled(w.HTML(), "dlt-tune-status")
        self.trials = labelled(w.HTML(), "dlt-trials")
        self.best = labelled(w.HTML(), "dlt-best")
        self.curves, self.parallel, self.importance = (
            image(f"dlt-tune-{k}") for k in ("curves", "parallel", "importance")
        )
        self.set_button.on_click(lambda _: self._try(self._set_space))
        self.remove_button.on_click(lambda _: self._try(c.remove_space, self.path.value.strip()))
        self.launch_button.on_click(lambda _: self._try(self._launch))
        self.stop_button.on_click(lambda _: c.stop())
        self.best_button.on_click(lambda _: self._try(self._use_best))
        fields = list(self.fields.values())
        self.children = [
            w.HTML("<b>Search space</b>"),
            self.space,
            w.HBox([self.path, self.range, self.set_button, self.remove_button]),
            w.HBox([w.VBox(fields[:3]), w.VBox([*fields[3:], self.address])]),
            w.HBox([self.launch_button, self.stop_button, self.best_button, self.status]),
            self.message,
            self.trials,
            self.best,
            w.HBox([self.curves, w.VBox([self.parallel, self.importance])]),
        ]
        self._dirty = threading.Event()
        self._drawn_final = None
        c.on_change.append(self._dirty.set)
        c.state.observe(lambda _spec: self._draw_space())
        self._draw_space()

    # ------------------------------------------------------------------ actions
    def _try(self, action, *args: Any) -> None:
        self.message.clear()
        try:
            action(*args)
        except (DLToolkitError, ValueError, KeyError) as e:
            self.message.error(e)

    def _set(self, name: str, value: Any) -> None:
        if name == "max_concurrent" and not value:
            value = None
        self._try(self.controller.set, name, value)

    def _set_space(self) -> None:
        path = self.path.value.strip()
        parsed = yaml.safe_load(self.range.value) if self.range.value.strip() else None
        if not (isinstance(parsed, dict) and len(parsed) == 1):
            raise SpecError(
                message("Unreadable range", self.range.value, "one domain, e.g. {choice: [32, 64]}")
            )
        domain, args = next(iter(parsed.items()))
        self.controller.set_space(path, domain, args)

    def _launch(self) -> None:
        if self.message.is_error:
            return
        self.controller.launch()
        self._drawn_final = None
        threading.Thread(target=self._watch, daemon=True, name="dltoolkit-tune-panel").start()

    def _use_best(self) -> None:
        config = self.controller.apply_best()
        self.message.info(f"The spec now uses the best configuration: {config}")

    # ------------------------------------------------------------------ drawing
    def _draw_space(self) -> None:
        self.space.value = table_html(self.controller.space(), "dlt-table dlt-space-table")

    def _watch(self) -> None:
        """Redraw from this thread at most every ``interval`` seconds while the sweep runs."""
        while True:
            self._dirty.wait(self.interval)
            self._dirty.clear()
            self.refresh()
            if not self.controller.running:
                self.refresh()
                return

    def refresh(self) -> None:
        c = self.controller
        text = {
            "idle": "",
            "starting": "checking the space and starting Ray…",
            "running": "running",
            "stopping": "stopping…",
            "stopped": "stopped",
            "done": "done",
            "failed": "failed",
        }[c.status]
        table = c.trials()
        if len(table):
            text += f" · {len(table)} trial(s), {c.rows} result(s)"
        self.status.value = f'<span class="dlt-tune-status-{c.status}">{text}</span>'
        if c.error:
            self.message.error(c.error)
        if len(table):
            self.trials.value = table_html(table, "dlt-table dlt-trials-table")
            self.curves.show(c.sweep.plot_curves())
        if c.status in ("done", "stopped") and self._drawn_final is not c.sweep and len(table):
            self._drawn_final = c.sweep
            self._final()

    def _final(self) -> None:
        sweep = self.controller.sweep
        best = sweep.best
        if best:
            self.best.value = (
                f'<div class="dlt-best-config"><b>Best</b> {sweep.plan.metric} = {best["score"]:.4g} '
                f"(epoch {best['epoch']}): <code>{best['config']}</code></div>"
            )
        for picture, draw in ((self.parallel, sweep.plot_parallel), (self.importance, sweep.plot_importance)):
            try:
                picture.show(draw())
            except (DLToolkitError, ValueError) as e:  # e.g. too few trials for importance
                self.message.info(f"No {picture._dom_classes[0][10:]} plot: {explain(e)}")
