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
from typing import TYPE_CHECKING, Any

import ipywidgets as w
import pandas as pd
import yaml

from dltoolkit._files import new_out_dir
from dltoolkit.errors import DLToolkitError, SpecError, message
from dltoolkit.widgets._common import MessageBox, explain, labelled, table_html, wrap
from dltoolkit.widgets._state import SpecState
from dltoolkit.widgets.graph_builder import replace
from dltoolkit.widgets.sweep_view import SweepView

if TYPE_CHECKING:
    from dltoolkit.tune.sweep import Sweep

SEARCHERS = ("random", "grid", "optuna")
SCHEDULERS = ("fifo", "asha", "hyperband", "median", "pbt")
ENGINES = ("auto", "local", "ray")


class TuneController:
    """Edits ``spec.search`` and runs the sweep in the background.

    Attributes:
        sweep: the running or last :class:`dltoolkit.tune.Sweep`, or None.
        status: "idle", "starting", "running", "stopping", "done" or "failed"; ``error`` its message.
        address: a Ray cluster address ("" for a local Ray).
    """

    def __init__(self, state: SpecState, out: str | os.PathLike = "runs") -> None:
        self.state = state
        self.out = Path(out)
        self.address = ""
        self.sweep: Sweep | None = None
        self.status, self.error = "idle", ""
        self.on_change: list[Callable[[], None]] = []
        self.phase = ""  # what a starting sweep is doing (checking, starting Ray, starting workers)
        self._thread: threading.Thread | None = None
        self._out: Path | None = None

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

    @property
    def folder(self) -> Path | None:
        """The folder of the running or last sweep (None before the first launch)."""
        return self._out

    @property
    def can_resume(self) -> bool:
        """A stopped (or failed) sweep whose folder holds Ray's experiment state can go on."""
        from dltoolkit.tune.local import STUDY_FILE
        from dltoolkit.tune.sweep import EXPERIMENT

        out = self._out
        state = out is not None and ((out / EXPERIMENT).is_dir() or (out / STUDY_FILE).is_file())
        return not self.running and self.status in ("stopped", "failed") and state

    def launch(self) -> threading.Thread:
        """Check and start the sweep in a background thread; Ray starts on a thread of its own that
        lives as long as the kernel (see ``dltoolkit.tune._ray.start_ray``)."""
        if self.running:
            raise DLToolkitError("A sweep is already running: press Stop first or wait for it to end.")
        spec = self.state.spec
        out = new_out_dir(f"{spec.name}-sweep", self.out)
        return self._start(lambda: self._sweep(spec, self.state.data, out), out)

    def resume(self) -> threading.Thread:
        """Continue the stopped sweep in :attr:`folder` in the background, live as Launch is:
        stopped trials go on from their last checkpoints, trials not yet begun start."""
        if not self.can_resume:
            raise DLToolkitError(
                "Nothing to resume: Resume continues a stopped sweep of this panel; launch a sweep first."
            )
        out, data = self._out, self.state.data
        assert out is not None  # can_resume: a sweep's folder
        return self._start(lambda: self._resume(out, data), out)

    def _sweep(self, spec, data, out: Path):
        from dltoolkit.tune import sweep

        return sweep(spec, address=self.address or None, out=out, data=data, background=True)

    def _resume(self, out: Path, data):
        from dltoolkit.tune import resume

        return resume(out, data=data, address=self.address or None, background=True)

    def _start(self, start: Callable[[], Any], out: Path) -> threading.Thread:
        # Ray Tune repeats a checkpoint-sync warning into the cell's output every few seconds
        os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
        self.sweep, self.status, self.error, self._out = None, "starting", "", out
        self.phase = "checking the spec"
        self._thread = threading.Thread(
            target=self._work, args=(start,), daemon=True, name="dltoolkit-sweep-launch"
        )
        self._thread.start()
        self._changed()
        return self._thread

    def _work(self, start: Callable[[], Any]) -> None:
        from dltoolkit.tune._phase import reporting

        try:
            with reporting(self._phase):
                self.sweep = sweep = start()
            sweep.subscribe(self._row)
            self.status = "running"
            self._changed()
            sweep.wait()
            self.status = "stopped" if sweep.stopped else "done"
        except Exception as e:  # shown in the panel, never raised into the kernel
            self.status, self.error = "failed", explain(e)
        self._changed()

    def _phase(self, text: str) -> None:
        self.phase = text
        self._changed()

    @property
    def rows(self) -> int:
        """The results (trial epochs) the sweep has reported so far, counted from its records: a
        local sweep may report its first epochs before this controller has subscribed."""
        return sum(len(r.rows) for r in self.sweep.records()) if self.sweep is not None else 0

    def _row(self, _row: dict[str, Any]) -> None:
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
        """Stop the sweep as Ctrl-C does: finished trials are kept, running ones can be resumed."""
        if self.sweep is not None and not self.sweep.done:
            self.status = "stopping"
            self._changed()
            threading.Thread(target=self.sweep.stop, daemon=True, name="dltoolkit-sweep-stop").start()

    def view_state(self) -> tuple[str, str]:
        """(state, text) for the status line: the start-up phase, then the sweep's progress."""
        from dltoolkit.widgets.sweep_view import progress_text

        if self.status == "starting":
            return "starting", self.phase + "…"
        if self.status == "failed":
            return "failed", self.error
        if self.status == "stopping":
            return "stopping", "ending the running trials…"
        return self.status, progress_text(self.sweep) if self.sweep is not None else ""

    def trials(self) -> pd.DataFrame:
        return self.sweep.trials() if self.sweep is not None else pd.DataFrame()

    def apply_best(self) -> dict[str, Any]:
        """Make the best trial's configuration the current spec; returns that configuration.

        After a resume, the resumed sweep's results (earlier trials included) decide."""
        best = self.sweep.best if self.sweep is not None else None
        if not best:
            raise DLToolkitError("No trial has reported a result yet: launch a sweep and wait for results.")
        self.state.update(best["config"])
        return best["config"]


class TunePanel(w.VBox):
    """Search space table and editor, sweep settings, Launch / Stop / Resume, and the live sweep view
    (status, folder, trials, curves; best, parallel coordinates and importance at the end)."""

    def __init__(self, controller: TuneController, interval: float = 0.5) -> None:
        super().__init__()
        self.add_class("dlt-tune-panel")
        self.controller = c = controller
        self.interval = interval
        s = c.state.spec.search
        self.message = MessageBox()
        self.space = labelled(w.HTML(), "dlt-space")
        self.path = labelled(
            w.Text(description="Path", placeholder="train.optimizer.lr", continuous_update=False),
            "dlt-space-path",
        )
        self.range = labelled(
            w.Text(description="Range", placeholder="{loguniform: [0.0001, 0.1]}", continuous_update=False),
            "dlt-space-range",
        )
        self.set_button = labelled(w.Button(description="Set"), "dlt-space-set")
        self.remove_button = labelled(w.Button(description="Remove"), "dlt-space-remove")
        self.fields = {
            "search": w.Dropdown(options=SEARCHERS, value=s.search, description="Searcher"),
            "scheduler": w.Dropdown(options=SCHEDULERS, value=s.scheduler, description="Scheduler"),
            "samples": w.IntText(value=s.samples, description="Trials"),
            "max_concurrent": w.IntText(value=s.max_concurrent or 0, description="Concurrent"),
            "max_epochs": w.IntText(value=s.max_epochs or c.state.spec.train.epochs, description="Epochs"),
            # auto: the local engine on this machine unless something needs Ray (see search.engine)
            "engine": w.Dropdown(options=ENGINES, value=s.engine, description="Engine"),
        }
        for name, field in self.fields.items():
            field.add_class(f"dlt-tune-{name.replace('_', '-')}")
            field.observe(lambda ch, n=name: self._set(n, ch["new"]), "value")
        self.address = labelled(
            w.Text(description="Cluster", placeholder="local Ray (or host:port)", continuous_update=False),
            "dlt-tune-address",
        )
        self.address.observe(lambda ch: setattr(c, "address", ch["new"].strip()), "value")
        self.launch_button = labelled(
            w.Button(description="Launch", icon="rocket", button_style="success"), "dlt-launch-button"
        )
        self.stop_button = labelled(
            w.Button(description="Stop", icon="stop", button_style="danger"), "dlt-tune-stop-button"
        )
        self.resume_button = labelled(
            w.Button(description="Resume", icon="play", tooltip="continue the stopped sweep"),
            "dlt-tune-resume-button",
        )
        self.best_button = labelled(w.Button(description="Use best config"), "dlt-use-best")
        self.view = SweepView(interval)
        self.status, self.trials, self.best = self.view.status, self.view.trials, self.view.best
        self.curves, self.parallel, self.importance = (
            self.view.curves,
            self.view.parallel,
            self.view.importance,
        )
        self.set_button.on_click(lambda _: self._try(self._set_space))
        self.remove_button.on_click(lambda _: self._try(c.remove_space, self.path.value.strip()))
        self.launch_button.on_click(lambda _: self._try(self._launch, c.launch))
        self.stop_button.on_click(lambda _: c.stop())
        self.resume_button.on_click(lambda _: self._try(self._launch, c.resume))
        self.best_button.on_click(lambda _: self._try(self._use_best))
        fields = list(self.fields.values())
        self.children = [
            w.HTML("<b>Search space</b>"),
            self.space,
            w.HBox([self.path, self.range, self.set_button, self.remove_button], layout=wrap()),
            w.HBox(
                [w.VBox(fields[:3]), w.VBox([*fields[3:5], self.address]), w.VBox(fields[5:])], layout=wrap()
            ),
            w.HBox([self.launch_button, self.stop_button, self.resume_button, self.best_button]),
            self.message,
            self.view,
        ]
        self._dirty = threading.Event()
        c.on_change.append(self._dirty.set)
        c.state.observe(lambda _spec: self._draw_space())
        self._draw_space()
        self._buttons()

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

    def _launch(self, start: Callable[[], Any]) -> None:
        if self.message.is_error:
            return
        start()
        self.view = self._fresh_view()
        self._buttons()
        threading.Thread(target=self._watch, daemon=True, name="dltoolkit-tune-panel").start()

    def _fresh_view(self) -> SweepView:
        """A new sweep gets a new view (the last one's best and plots do not stay on screen)."""
        view = SweepView(self.interval)
        self.status, self.trials, self.best = view.status, view.trials, view.best
        self.curves, self.parallel, self.importance = view.curves, view.parallel, view.importance
        self.children = [*self.children[:-1], view]
        return view

    def _use_best(self) -> None:
        config = self.controller.apply_best()
        shown = ", ".join(
            f"{k} = {v:.4g}" if isinstance(v, float) else f"{k} = {v}" for k, v in config.items()
        )
        self.message.info(f"The spec now uses the best configuration: {shown}")

    # ------------------------------------------------------------------ drawing
    def _draw_space(self) -> None:
        self.space.value = table_html(self.controller.space(), "dlt-table dlt-space-table")

    def _buttons(self) -> None:
        """Buttons that cannot act now are disabled (Launch while a sweep runs, Stop while idle...)."""
        c = self.controller
        running = c.running
        self.launch_button.disabled = running
        self.stop_button.disabled = not running or c.status == "stopping"
        self.resume_button.disabled = not c.can_resume
        self.best_button.disabled = c.sweep is None or running and not c.rows

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
        self._buttons()  # first: the end-of-sweep plots below take a moment to draw
        self.view.draw(c.sweep, *c.view_state())
