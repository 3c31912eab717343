"""The Sweep: a hyperparameter search, live in the driver, results as plain data, engine-blind.

``sweep(spec)`` checks everything (the spec, the data, every configuration of the space) before
any trial starts, then runs the trials on one of two engines (``search.engine``): the local
engine (Optuna, trials in threads of this process, :mod:`dltoolkit.tune.local`) or Ray Tune (a
local Ray or the cluster at ``address``, :mod:`dltoolkit.tune.ray_sweep`). Both feed the same
records through the same events, so the trial table, best, top-k, the best bundle, ensembles,
plots, ``subscribe``/``wait``/``stop`` and the panel do not know which engine ran.

Each trial's per-epoch results stream to subscribers as they arrive; with ``background=True``
the sweep runs in a thread so a notebook stays responsive, and ``stop()`` ends it cleanly. When it
ends, ``out`` holds ``spec.yaml`` (with the search space), ``trials.csv``, ``best/`` (a model
bundle ``dltoolkit.bundle.load`` opens) and ``plots/``, plus the engine's own state from which
``resume(out)`` continues: ``study.log`` and ``trials/`` (local), ``tune/`` (Ray).

Example:
    >>> s = sweep("digits-mlp", samples=4, scheduler="asha", out="runs/sweep")  # doctest: +SKIP
    >>> s.best["config"], s.best_bundle                                          # doctest: +SKIP
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from dltoolkit.errors import DLToolkitError, SpecError, message, unknown
from dltoolkit.spec import Spec, metric_mode
from dltoolkit.tune.engines import Plan
from dltoolkit.tune.results import (
    TrialRecord,
    curves_figure,
    importance_figure,
    parallel_figure,
    ranked,
    trial_table,
)
from dltoolkit.tune.space import parse_space

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from dltoolkit.tune.preflight import Preflight

Row = dict[str, Any]
EXPERIMENT = "tune"  # Ray's experiment folder inside ``out``
METRICS = {  # what TaskModule logs (see dltoolkit.train.module)
    True: (
        "val_acc", "val_f1", "val_precision", "val_recall", "val_roc_auc", "val_loss", "train_loss",
        "train_acc",
    ),
    False: ("val_loss", "val_mse", "val_rmse", "val_mae", "val_r2", "train_loss"),
}  # fmt: skip


def plan_for(spec: Spec) -> Plan:
    """The resolved sweep settings of ``spec.search``, checked (names, combinations, metric)."""
    s = spec.search
    space = parse_space(s.space)
    if not space:
        raise SpecError(
            message(
                "The spec has no search space",
                s.space,
                "search.space with at least one path",
                "Add e.g. search.space: {train.optimizer.lr: {loguniform: [0.0001, 0.1]}}.",
            )
        )
    metric = s.metric or spec.task.monitor_metric()[0]
    if metric not in METRICS[spec.task.is_classification]:
        raise unknown("metric", metric, METRICS[spec.task.is_classification])
    mode = s.mode or metric_mode(metric)
    plan = Plan(
        space=space,
        metric=metric,
        mode=mode,
        samples=s.samples,
        search=s.search,
        scheduler=s.scheduler,
        max_epochs=s.max_epochs or spec.train.epochs,
        grace_period=s.grace_period,
        max_concurrent=s.max_concurrent,
        seed=s.seed,
        resources={"cpu": s.cpus_per_trial, "gpu": s.gpus_per_trial},
        retries=s.retries,
        read_with=s.read_with,
    )
    plan.check()
    return plan


class Sweep:
    """A running or finished sweep. Made by :func:`sweep` or :func:`resume`, not directly.

    This base holds what both engines share (the live records, subscribers, results, plots,
    top-k); an engine subclass runs the trials (``_launch``), stops them (``stop``) and reads a
    trial's saved state (``trial_state``).

    Attributes:
        spec: the swept spec (its ``search`` section as run); ``out``: the output folder;
        preflight: the pre-flight report; first_result_s: seconds from launch to the first result;
        engine: ``"local"`` or ``"ray"``; engine_reason: why that engine (one line);
        tracking: where the sweep was tracked (``mlflow_uri``, ``mlflow_run_id``, ``tensorboard``;
        set at its end when ``spec.track`` is on, see :mod:`dltoolkit.track`).
    """

    engine = ""

    def __init__(self, spec: Spec, plan: Plan, data: Any, out: Path, launched: float) -> None:
        self.spec, self.plan, self.data, self.out = spec, plan, data, Path(out)
        self.trial_spec = spec.with_values({"train.epochs": plan.max_epochs, "task.monitor": plan.metric})
        self.preflight: Preflight | None = None
        self.first_result_s: float | None = None
        self.engine_reason = ""
        self.stop_requested = threading.Event()
        self._launched = launched
        self._records: dict[str, TrialRecord] = {}
        self._subscribers: list[Callable[[Row], None]] = []
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self._runner: int | None = None  # ident of the thread running the engine
        self._workers: set[int] = set()  # idents of the engine's other threads (local trials)
        self._error: BaseException | None = None
        self.best_bundle: Path | None = None
        self.tracking: dict[str, Any] = {}  # where the sweep was tracked (mlflow_run_id...), at its end
        self._tracker: Any = None
        self._plots: threading.Thread | None = None  # draws plots/ after the sweep's end
        self._plots_error: BaseException | None = None

    # ------------------------------------------------------------------ live events (from the engine)
    def _on_start(self, trial_id: str, config: dict[str, Any]) -> None:
        with self._lock:
            rec = self._records.setdefault(trial_id, TrialRecord(trial_id, config))
            rec.status = "RUNNING"

    def _on_result(self, trial_id: str, config: dict[str, Any], result: dict[str, Any]) -> None:
        metrics = {k: v for k, v in result.items() if k.startswith(("train_", "val_")) or k == "lr"}
        epoch = int(result.get("epoch", result.get("training_iteration", 0)))
        row = {"trial_id": trial_id, "config": config, "epoch": epoch, "metrics": metrics}
        with self._lock:
            if self.first_result_s is None:
                self.first_result_s = time.perf_counter() - self._launched
            rec = self._records.setdefault(trial_id, TrialRecord(trial_id, config, "RUNNING"))
            rec.rows.append({"epoch": epoch} | metrics)
            rec.seconds = float(result.get("time_total_s", rec.seconds))
            subscribers = list(self._subscribers)
        for callback in subscribers:
            callback(dict(row))

    def _on_end(self, trial_id: str, status: str, error: str | None) -> None:
        with self._lock:
            rec = self._records.setdefault(trial_id, TrialRecord(trial_id, {}))
            rec.status, rec.error = status, error

    # ------------------------------------------------------------------ control
    def subscribe(self, callback: Callable[[Row], None]) -> Callable[[], None]:
        """Call ``callback(row)`` for every epoch a trial reports; returns an unsubscribe function.

        A row is ``{"trial_id", "config", "epoch", "metrics"}``. Callbacks run in the thread that
        ran the epoch (a trial's thread locally, the sweep's thread on Ray): keep them short (a
        notebook panel should only update its model).
        """
        with self._lock:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return unsubscribe

    @property
    def done(self) -> bool:
        return self._done.is_set()

    @property
    def stopped(self) -> bool:
        """Whether the sweep was stopped (``stop()``, or Ctrl-C) before its end."""
        return self.stop_requested.is_set()

    def wait(self, timeout: float | None = None, *, plots: bool = False) -> Sweep:
        """Block until the sweep ends (re-raising its error); Ctrl-C stops it cleanly.

        The sweep ends once its trials are done and ``trials.csv`` and the best bundle are written;
        the three PNGs of ``plots/`` are drawn after that in a background thread (a second or so
        that nothing else waits for; the process does not exit before they are written). With
        ``plots=True`` this also waits for them (and re-raises a failure to draw them).
        """
        started = time.monotonic()
        try:
            if not self._done.wait(timeout):
                return self
        except KeyboardInterrupt:
            self.stop()
            raise
        if self._error is not None:
            raise self._error
        if plots and self._plots is not None:
            left = None if timeout is None else max(0.0, timeout - (time.monotonic() - started))
            self._plots.join(left)
            if self._plots_error is not None:
                raise self._plots_error
        return self

    def stop(self, timeout: float = 120.0) -> Sweep:
        """Stop the sweep: running trials end unfinished (status ``STOPPED``), finished results are
        kept and the outputs are written from what exists; ``resume(out)`` continues later.

        Safe from any thread (a notebook cell, a panel's button, a signal handler's thread, a
        subscriber's callback: from the sweep's own threads it returns without waiting).
        """
        self.stop_requested.set()
        if not self._in_engine():
            self._done.wait(timeout)
        return self

    def _in_engine(self) -> bool:
        """Whether this thread is one of the engine's (waiting there for the end would never end)."""
        me = threading.get_ident()
        return me == self._runner or me in self._workers

    def _launch(self, address: str | None, background: bool, restore: bool) -> Sweep:
        """Start the trials (in a thread with ``background``); the engine's own."""
        raise NotImplementedError

    def _start(self, address: str | None, background: bool, restore: bool) -> Sweep:
        """``_launch``, tracked as ``spec.track`` asks (a parent run now, a nested run per trial
        from the results stream, the outputs at the end: :mod:`dltoolkit.track`)."""
        if self.spec.track.enabled:
            from dltoolkit.track import SweepTracking

            self._tracker = SweepTracking(self)
        try:
            return self._launch(address, background, restore)
        except BaseException:
            if self._tracker is not None and not self.done:  # it never started (e.g. no Ray there)
                self._tracker.abort()
            raise

    def trial_state(self, trial_id: str) -> dict[str, Any] | None:
        """A trial's last saved state (weights, optimizer, ``best``: its best weights), or None."""
        raise NotImplementedError

    def _write_outputs(self) -> None:
        """The best bundle and ``trials.csv`` from the records and the trials' states; then the plots,
        in a background thread (the sweep's result does not wait for matplotlib), unless the sweep
        is tracked (the tracking logs ``plots/``, so they are drawn first)."""
        from dltoolkit.tune.launch import save_best, save_plots, save_table

        self.best_bundle = save_best(self)
        save_table(self)
        if self._tracker is not None:
            save_plots(self)
            self.tracking = self._tracker.finish(self)
            return
        # not a daemon (said explicitly: a thread inherits the daemon flag of the thread that starts
        # it, and this runs in the sweep's daemon thread): the interpreter waits for it at exit, so a
        # script or the CLI never leaves a half-drawn plots/ behind, and never aborts. A daemon
        # thread still inside matplotlib's FreeType code when the interpreter finalizes is ended by
        # pthread_exit, whose unwinding through C++ calls std::terminate ("terminate called without
        # an active exception", SIGABRT, exit code 134 instead of the command's own).
        self._plots = threading.Thread(target=self._draw_plots, name="dltoolkit-sweep-plots", daemon=False)
        self._plots.start()

    def _draw_plots(self) -> None:
        from dltoolkit.tune.launch import save_plots

        try:
            save_plots(self)
        except Exception as e:  # noqa: BLE001 - kept for wait(plots=True)
            self._plots_error = e

    # ------------------------------------------------------------------ results
    def records(self) -> list[TrialRecord]:
        with self._lock:
            return [
                TrialRecord(r.trial_id, dict(r.config), r.status, r.error, list(r.rows), r.seconds)
                for r in self._records.values()
            ]

    def trials(self) -> pd.DataFrame:
        """The trial table: config, best and last metric, best epoch, epochs run, status, time, error."""
        return trial_table(self.records(), self.plan.metric, self.plan.mode)

    @property
    def best(self) -> dict[str, Any] | None:
        """The trial with the best *best-reported* metric: id, config, score, epoch (None: no results)."""
        order = ranked(self.records(), self.plan.metric, self.plan.mode)
        if not order:
            return None
        score, epoch = order[0].best(self.plan.metric, self.plan.mode)
        return {"trial_id": order[0].trial_id, "config": order[0].config, "score": score, "epoch": epoch}

    def top(self, k: int = 5) -> pd.DataFrame:
        """The k best trials' rows of the trial table, best first."""
        table = self.trials()
        ids = [r.trial_id for r in ranked(self.records(), self.plan.metric, self.plan.mode)[:k]]
        return table.set_index("trial_id").loc[ids].reset_index()

    def top_models(self, k: int = 3) -> list[Any]:
        """The k best trials as Predictors (their best weights, test metrics attached), best first."""
        from dltoolkit.tune.launch import top_predictors

        if not self.done:
            raise DLToolkitError("The sweep is still running: wait() for it before taking its top models.")
        return [p for _, _, p in top_predictors(self, k)]

    def ensemble(self, k: int = 3, method: str = "mean") -> Any:
        """An Ensemble of the k best trials (see dltoolkit.deploy.Ensemble), ready to evaluate or save."""
        from dltoolkit.deploy import Ensemble

        return Ensemble(self.top_models(k), method=method)

    def _log_paths(self) -> set[str]:
        return {p for p, d in self.plan.space.items() if d.name.startswith("log")}

    def plot_curves(self) -> Figure:
        """The metric against epochs, one line per trial (a matplotlib Figure)."""
        return curves_figure(self.records(), self.plan.metric)

    def plot_parallel(self) -> Figure:
        """Parallel coordinates of the hyperparameters against the best metric (a Figure)."""
        return parallel_figure(self.trials(), list(self.plan.space), self.plan.metric, self._log_paths())

    def plot_importance(self) -> Figure:
        """Hyperparameter importance for the best metric (a Figure)."""
        return importance_figure(self.trials(), self.plan.space, self.plan.metric, self.plan.mode)

    def _repr_html_(self) -> str:
        from dltoolkit._html import esc, table

        state = "done" if self.done else "running"
        best = self.best
        shown = (
            f"best {self.plan.metric} {best['score']:.4f} ({best['config']})" if best else "no results yet"
        )
        trials = table(self.trials())
        return (
            f"<b>Sweep</b> {esc(repr(self.spec.name))} ({state}, {len(self._records)} trials, "
            f"{esc(self.engine)} engine): {esc(shown)}{trials}"
        )

    def __repr__(self) -> str:
        return f"Sweep({self.spec.name!r}, out={str(self.out)!r}, engine={self.engine!r}, done={self.done})"
