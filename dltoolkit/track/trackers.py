"""What a run and a sweep log, and when (the driver side only: trials need no MLflow access).

A **run** (``dltoolkit.run``): at the start, a run named after its output folder with the spec as
params (dotted paths, as ``--set`` takes them); each epoch, the metrics of ``history.csv`` with the
epoch as step (from the listener ``run`` passes to training); at the end the test metrics
(``test_<name>``, from ``metrics.json``), ``best_epoch``, ``best_score`` and ``seconds``, and the
run folder's files as artifacts: ``spec.yaml``, ``metrics.json``, ``history.csv``, ``report.html``,
``plots/`` and the bundle as ``model/``.

A **sweep**: at the start, a parent run with the swept spec (its ``search`` section included) and
the resolved search settings as params; each trial, at its first reported epoch, a run nested under
it (``mlflow.parentRunId``) with its configuration as params, then its per-epoch metrics from
the sweep's results stream (:meth:`Sweep.subscribe`, fed in the driver by both engines); at the
end each trial's status (FINISHED, FAILED with its error, KILLED when stopped), and on the parent
the best trial's metrics at its best epoch, its test metrics, ``trials.csv``, ``plots/``,
``spec.yaml`` and the best bundle as ``model/``. (Ray's ``MLflowLoggerCallback`` follows the same
order per trial: params at the start, metrics per result, status at the end.)

A resumed sweep (``resume(out)``) is tracked as a new parent run with the trials it runs.

TensorBoard gets the same per-epoch metrics: ``<folder>/<run>`` for a run, ``<folder>/<sweep>/<trial
id>`` for each trial.
"""

from __future__ import annotations

import math
import os
import threading
from pathlib import Path
from typing import Any

from dltoolkit.spec import Spec, TrackSpec, flatten
from dltoolkit.track._sender import Sender, warn
from dltoolkit.track.sinks import BUNDLE_TAG, KIND_TAG, MlflowSink, TensorBoardSink
from dltoolkit.track.target import (
    artifact_root,
    mlflow_uri,
    off_message,
    tensorboard_dir,
    unreachable,
)

RUN_FILES = ("spec.yaml", "metrics.json", "history.csv", "report.html", "plots", "model")
SWEEP_FILES = ("spec.yaml", "trials.csv", "plots")
STATUS = {"TERMINATED": "FINISHED", "ERROR": "FAILED"}  # a sweep's trial status -> MLflow's; else KILLED


def timeout_s() -> float:
    """How long the end of a run waits for tracking to finish sending (``DLTOOLKIT_TRACK_TIMEOUT``)."""
    return float(os.environ.get("DLTOOLKIT_TRACK_TIMEOUT", "120"))


def _numbers(values: dict[str, Any]) -> dict[str, float]:
    return {
        k: float(v)
        for k, v in values.items()
        if isinstance(v, int | float) and not isinstance(v, bool) and k != "epoch"
    }


def spec_params(spec: Spec) -> dict[str, Any]:
    """The spec as params: every dotted path but the ``track`` section's."""
    return {k: v for k, v in flatten(spec.to_dict()).items() if not k.startswith("track.")}


class Tracker:
    """The sinks of one run or sweep, each behind its own sender thread; inert when tracking is off.

    Made by :meth:`open`, which needs the ``track`` extra only when tracking is on, and turns
    MLflow off with one warning when its store cannot be used.
    """

    def __init__(self, uri: str | None, experiment: str, tensorboard: Path | None) -> None:
        self.uri, self.tensorboard = uri, tensorboard
        self._mlflow: tuple[MlflowSink, Sender] | None = None
        self._board: tuple[TensorBoardSink, Sender] | None = None
        if uri:
            sink = MlflowSink(uri, experiment, artifact_root(uri))
            self._mlflow = sink, Sender("MLflow", lambda e: off_message(uri, f"{type(e).__name__}: {e}"))
            self._mlflow[1].submit(sink.connect)
        if tensorboard:
            self._board = TensorBoardSink(tensorboard), Sender("TensorBoard", _board_message)

    @classmethod
    def open(cls, track: TrackSpec, name: str, out: Path) -> Tracker:
        """The tracker ``track`` asks for, for the run or sweep writing into ``out``."""
        uri = mlflow_uri(track.mlflow, out)
        board = tensorboard_dir(track.tensorboard, out)
        if uri or board:
            from dltoolkit._extras import require

            require("track", "Experiment tracking (the spec's track section, --track)")
        if uri and (why := unreachable(uri)):
            warn(off_message(uri, why))
            uri = None
        return cls(uri, track.experiment or name, board)

    @property
    def active(self) -> bool:
        return self._mlflow is not None or self._board is not None

    @property
    def run_id(self) -> str | None:
        """The MLflow run id of the run or sweep (known once its creation was sent)."""
        return self._mlflow[0].runs.get("") if self._mlflow else None

    def _send(self, method: str, *args: Any) -> None:
        if self._mlflow:
            sink, sender = self._mlflow
            sender.submit(getattr(sink, method), *args)

    def start(
        self, key: str, name: str, params: dict[str, Any], tags: dict[str, str], parent: str | None = None
    ) -> None:
        self._send("start", key, name, params, tags, parent)

    def metrics(
        self, key: str, values: dict[str, float], step: int | None = None, board: bool = True
    ) -> None:
        """Log metric values (at ``step``: an epoch); per-epoch ones to TensorBoard too (``board``)."""
        self._send("metrics", key, values, step)
        if self._board and board and step is not None:
            sink, sender = self._board
            sender.submit(sink.metrics, key, values, step)

    def tags(self, key: str, tags: dict[str, str]) -> None:
        self._send("tags", key, tags)

    def artifacts(self, key: str, paths: dict[str, Path]) -> None:
        self._send("artifacts", key, paths)

    def end(self, key: str, status: str) -> None:
        self._send("end", key, status)

    def close(self) -> dict[str, Any]:
        """Send what is queued (bounded wait); what was tracked, for ``Run.tracking``."""
        info: dict[str, Any] = {}
        if self._board:
            sink, sender = self._board
            sender.submit(sink.close)
            if sender.close(timeout_s()):
                info["tensorboard"] = str(self.tensorboard)
        if self._mlflow:
            mlflow_sink, sender = self._mlflow
            if sender.close(timeout_s()) and "" in mlflow_sink.runs:
                info |= {"mlflow_uri": self.uri, "mlflow_run_id": mlflow_sink.runs[""]}
        return info


def _board_message(e: BaseException) -> str:
    return (
        f"TensorBoard tracking stopped: writing the event files failed ({type(e).__name__}: {e}). "
        "Check that track.tensorboard names a folder that can be written; the run goes on without it."
    )


class RunTracking:
    """The tracking of one ``dltoolkit.run``: see the module's notes."""

    def __init__(self, spec: Spec, out: Path) -> None:
        out = Path(out)
        self.out, self.seen = out, set[int]()
        self.tracker = Tracker.open(spec.track, spec.name, out)
        tags = {KIND_TAG: "run", "dltoolkit.out": str(out.resolve())}
        self.tracker.start("", out.name, spec_params(spec), tags)

    @property
    def listeners(self) -> list[Any]:
        """The per-epoch listener to hand to training (none when tracking is off)."""
        return [self._epoch] if self.tracker.active else []

    def _epoch(self, row: dict[str, Any]) -> None:
        step = int(row.get("epoch", len(self.seen) + 1))
        self.seen.add(step)
        self.tracker.metrics("", _numbers(row), step)

    def finish(self, run: Any) -> dict[str, Any]:
        """Log the end of a finished :class:`~dltoolkit.api.Run`; what was tracked."""
        if not self.tracker.active:
            return {}
        for row in run.history.to_dict("records"):  # epochs no listener saw (Ray Train's run)
            if int(row.get("epoch", 0)) not in self.seen:
                self._epoch(row)
        meta = _read_json(self.out / "model" / "bundle.json")
        summary = {f"test_{k}": v for k, v in _numbers(run.metrics).items()}
        summary |= _numbers({k: meta.get(k) for k in ("best_epoch", "best_score")})
        self.tracker.metrics("", summary | {"seconds": run.seconds})
        self.tracker.artifacts("", {n: self.out / n for n in RUN_FILES if (self.out / n).exists()})
        if (self.out / "model").is_dir():
            self.tracker.tags("", {BUNDLE_TAG: "model"})
        self.tracker.end("", "FINISHED")
        return self.tracker.close()

    def fail(self, error: BaseException) -> None:
        """End the tracked run as FAILED (an error) or KILLED (an interruption)."""
        if self.tracker.active:
            self.tracker.end("", "FAILED" if isinstance(error, Exception) else "KILLED")
            self.tracker.close()


class SweepTracking:
    """The tracking of one sweep, from its results stream: see the module's notes."""

    def __init__(self, sweep: Any) -> None:
        self.sweep, self.done = sweep, False
        self.tracker = Tracker.open(sweep.spec.track, sweep.spec.name, sweep.out)
        self._started: set[str] = set()
        self._lock = threading.Lock()
        if not self.tracker.active:
            return
        plan = sweep.plan
        params = spec_params(sweep.spec) | {
            "sweep.engine": sweep.engine,
            "sweep.metric": plan.metric,
            "sweep.mode": plan.mode,
            "sweep.max_epochs": plan.max_epochs,
        }
        tags = {KIND_TAG: "sweep", "dltoolkit.out": str(Path(sweep.out).resolve())}
        self.tracker.start("", Path(sweep.out).name, params, tags)
        sweep.subscribe(self._row)
        threading.Thread(target=self._watch, name="dltoolkit-track-watch", daemon=True).start()

    def _trial(self, trial_id: str, config: dict[str, Any]) -> None:
        with self._lock:
            if trial_id in self._started:
                return
            self._started.add(trial_id)
        tags = {KIND_TAG: "trial", "dltoolkit.trial_id": trial_id}
        self.tracker.start(trial_id, trial_id, dict(config), tags, parent="")

    def _row(self, row: dict[str, Any]) -> None:
        self._trial(row["trial_id"], row["config"])
        self.tracker.metrics(row["trial_id"], _numbers(row["metrics"]), int(row["epoch"]))

    def finish(self, sweep: Any) -> dict[str, Any]:
        """The sweep's outputs are written: end the trials and the parent run with their results;
        what was tracked."""
        with self._lock:
            if self.done or not self.tracker.active:
                return {}
            self.done = True
        for rec in sweep.records():
            self._trial(rec.trial_id, rec.config)  # errored before its first epoch: a run all the same
            if rec.error:
                self.tracker.tags(rec.trial_id, {"dltoolkit.error": rec.error})
            self.tracker.end(rec.trial_id, STATUS.get(rec.status, "KILLED"))
        self._best(sweep)
        out = Path(sweep.out)
        files = {n: out / n for n in SWEEP_FILES if (out / n).exists()}
        if sweep.best_bundle is not None:
            files["model"] = Path(sweep.best_bundle)
            self.tracker.tags("", {BUNDLE_TAG: "model"})
        self.tracker.artifacts("", files)
        self.tracker.end("", "KILLED" if sweep.stopped else "FINISHED")
        return self.tracker.close()

    def _best(self, sweep: Any) -> None:
        best = sweep.best
        if best is None:
            return
        rec = next(r for r in sweep.records() if r.trial_id == best["trial_id"])
        row: dict[str, Any] = next((r for r in rec.rows if r.get("epoch") == best["epoch"]), {})
        self.tracker.tags("", {"dltoolkit.best_trial": best["trial_id"]})
        values = _numbers(row) | {"best_score": best["score"], "best_epoch": best["epoch"]}
        if sweep.best_bundle is not None:
            metrics = _read_json(Path(sweep.best_bundle) / "metrics.json")
            values |= {f"test_{k}": v for k, v in _numbers(metrics).items()}
        finite = {k: v for k, v in values.items() if math.isfinite(v)}
        self.tracker.metrics("", finite, int(best["epoch"]), board=False)

    def _watch(self) -> None:
        """A sweep that ended on an error never wrote its outputs: end its runs as FAILED."""
        try:
            self.sweep.wait()
        except BaseException:  # noqa: BLE001 - any end but a clean one
            self.abort()

    def abort(self) -> None:
        """End the sweep's run as FAILED and its trials' as KILLED (once; no outputs to log)."""
        with self._lock:
            if self.done or not self.tracker.active:
                return
            self.done = True
            started = sorted(self._started)
        for trial_id in started:
            self.tracker.end(trial_id, "KILLED")
        self.tracker.end("", "FAILED")
        self.tracker.close()


def _read_json(path: Path) -> dict[str, Any]:
    import json

    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
