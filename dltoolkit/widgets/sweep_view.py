"""The live view of one sweep: what it is doing, its folder, the trial table and the curves; the best
configuration, parallel coordinates and importance once it has ended.

The Tuning panel shows one under its controls; ``%dlt_tune`` (and any Sweep displayed in a kernel
where ``%load_ext dltoolkit`` ran) shows one in the cell's own output. The view redraws from its
own thread at most every ``interval`` seconds while the sweep runs, and once more at the end.

Example:
    >>> from dltoolkit.tune import sweep          # doctest: +SKIP
    >>> SweepView().watch(sweep("wine", background=True))  # doctest: +SKIP
"""

from __future__ import annotations

import html
import threading
from collections.abc import Callable
from typing import Any

import ipywidgets as w

from dltoolkit.errors import DLToolkitError
from dltoolkit.widgets._common import MessageBox, explain, image, labelled, table_html, wrap

# what a state looks like in the status line (the text after it says more)
STATES = ("idle", "starting", "running", "stopping", "stopped", "done", "failed")


def sweep_state(sweep: Any) -> tuple[str, str]:
    """(state, text) of a Sweep: running / stopped / done / failed, and what it is doing now."""
    if sweep.done:
        error = getattr(sweep, "_error", None)
        if error is not None:
            return "failed", explain(error)
        return ("stopped" if sweep.stopped else "done"), progress_text(sweep)
    return "running", progress_text(sweep)


def progress_text(sweep: Any) -> str:
    """Where a sweep stands: waiting for its first trial, the first trial running, or counts."""
    table = sweep.trials()
    results = sum(len(r.rows) for r in sweep.records())
    if not len(table):
        return "waiting for the first trial to start" if not sweep.done else "no trial ran"
    if not results:
        return "first trial running" if not sweep.done else f"{len(table)} trial(s), no result"
    return f"{len(table)} trial(s), {results} result(s)"


class SweepView(w.VBox):
    """Status line, folder, trial table, curves; best, parallel coordinates and importance at the end."""

    def __init__(self, interval: float = 0.5) -> None:
        super().__init__()
        self.add_class("dlt-sweep-view")
        self.interval = interval
        self.message = MessageBox("dlt-sweep-message")
        self.status = labelled(w.HTML(), "dlt-tune-status")
        self.folder = labelled(w.HTML(), "dlt-sweep-folder")
        self.trials = labelled(w.HTML(layout=w.Layout(max_width="100%", overflow="auto")), "dlt-trials")
        self.sort = labelled(
            w.Dropdown(options=["best first"], value="best first", description="Sort by"), "dlt-trials-sort"
        )
        self.sort.observe(lambda _c: self._draw_table(), "value")
        self._sweep: Any = None
        self.best = labelled(w.HTML(), "dlt-best")
        self.curves, self.parallel, self.importance = (
            image(f"dlt-tune-{k}") for k in ("curves", "parallel", "importance")
        )
        self.children = [
            self.status,
            self.folder,
            self.sort,
            self.message,
            self.trials,
            self.best,
            w.HBox([self.curves, w.VBox([self.parallel, self.importance])], layout=wrap()),
        ]
        self._final_for: Any = None
        self._dirty = threading.Event()

    # ------------------------------------------------------------------ following a sweep
    def watch(
        self,
        sweep: Any,
        state: Callable[[], tuple[str, str]] | None = None,
        done: Callable[[], bool] | None = None,
    ) -> SweepView:
        """Redraw from a thread of its own while ``sweep`` runs (``state``: the status to show,
        default :func:`sweep_state`; ``done``: when to stop following, default the sweep's end)."""
        state = state or (lambda: sweep_state(sweep))
        done = done or (lambda: sweep.done)
        unsubscribe = sweep.subscribe(lambda _row: self._dirty.set())

        def follow() -> None:
            try:
                while not done():
                    self._dirty.wait(self.interval)
                    self._dirty.clear()
                    self.draw(sweep, *state())
                self.draw(sweep, *state())
            finally:
                unsubscribe()

        threading.Thread(target=follow, daemon=True, name="dltoolkit-sweep-view").start()
        return self

    # ------------------------------------------------------------------ drawing
    def draw(self, sweep: Any, state: str, text: str) -> None:
        """Show ``state`` and ``text``; with a sweep, its folder, table and curves (and, once it has
        ended, the best configuration and the end-of-sweep plots, drawn once)."""
        if state == "failed":  # the reason goes in the message box, once
            self.message.error(text)
            text = ""
        elif self.message.is_error:  # an error of an earlier state no longer holds
            self.message.clear()
        shown = html.escape(text if state == "starting" else f"{state} · {text}" if text else state)
        self.status.value = f'<span class="dlt-tune-status-{state}">{shown}</span>'
        if sweep is None:
            return
        engine = getattr(sweep, "engine", "")
        why = getattr(sweep, "engine_reason", "") or ""
        self.folder.value = (
            f'<span class="dlt-sweep-folder-path" style="color:#444">folder: <code>'
            f"{html.escape(str(sweep.out))}</code></span>"
            + (
                f' <span class="dlt-sweep-engine" style="color:#444">· {html.escape(engine)} engine'
                f"{html.escape(f' ({why})' if why else '')}</span>"
                if engine
                else ""
            )
        )
        self._sweep = sweep
        table = self._draw_table()
        if len(table):
            self.curves.show(sweep.plot_curves())
        if state in ("done", "stopped") and self._final_for is not sweep and len(table):
            self._final_for = sweep
            self._final(sweep)

    def _draw_table(self) -> Any:
        """The trial table, sorted as the Sort by menu says (best first by default), without columns
        that hold nothing; returns the unsorted table."""
        if self._sweep is None:
            return None
        table = self._sweep.trials()
        if not len(table):
            return table
        shown = table.drop(columns=_empty(table))
        options = ["best first", *shown.columns]
        if list(self.sort.options) != options:
            self.sort.options = options  # keeps the value when it is still a column
        key = self.sort.value or "best first"
        best = f"best_{self._sweep.plan.metric}"
        if key == "best first" and best in shown:
            shown = shown.sort_values(best, ascending=self._sweep.plan.mode == "min", na_position="last")
        elif key in shown:
            shown = shown.sort_values(key, ascending=True, na_position="last", kind="stable")
        self.trials.value = table_html(shown, "dlt-table dlt-trials-table")
        return table

    def _final(self, sweep: Any) -> None:
        best = sweep.best
        if best:
            config = ", ".join(f"{k} = {_short(v)}" for k, v in best["config"].items())
            self.best.value = (
                f'<div class="dlt-best-config"><b>Best</b> {html.escape(sweep.plan.metric)} = '
                f"{best['score']:.4g} (epoch {best['epoch']}): <code>{html.escape(config)}</code></div>"
            )
        for picture, draw in ((self.parallel, sweep.plot_parallel), (self.importance, sweep.plot_importance)):
            try:
                picture.show(draw())
            except (DLToolkitError, ValueError) as e:  # e.g. too few trials for importance
                self.message.info(f"No {picture._dom_classes[0][10:]} plot: {explain(e)}")


def _empty(table: Any) -> list[str]:
    """Columns with nothing in them (e.g. ``error`` when no trial failed): not worth a column."""
    return [c for c in table.columns if table[c].isna().all()]


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
