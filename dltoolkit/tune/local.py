"""The local engine of a sweep: Optuna's samplers and pruners, trials in threads of this process.

Small sweeps on one machine are overhead-bound: a trial of a small MLP trains in a fraction of a
second, so starting Ray (seconds, about 1 GB of processes) costs more than the sweep. Here an
Optuna study asks for each trial's configuration (random, grid or TPE, seeded by ``search.seed``)
and its pruner (successive halving for ``asha``, Hyperband, median, none for ``fifo``) stops
trials early; each trial trains with the very function a Ray trial runs
(:func:`dltoolkit.tune.training.train`, the same Lightning training and per-epoch state), so both
engines report the same metrics for the same configuration.

Design, and the guarantees it gives:

- **Threads, not a process pool.** ``concurrency`` daemon threads (``max_concurrent``, else the
  cores this process may use) take trials one after another; the prepared data are shared, not
  copied, and nothing is imported or started per trial. Torch runs one intra-op thread (the
  spec's ``train.threads``), so the trials do not fight over the cores. A trial that *raises*
  (bad configuration, no GPU, a NaN or infinite loss or metric) is recorded as ``ERROR`` with its
  message and the sweep goes on. A trial that *crashes the process* (a segfault, the kernel's
  memory exhausted) takes the process with it: isolation is what the Ray engine is for
  (``search.engine: ray``). The kernel stays responsive while a sweep runs: trials hold the GIL
  only between torch calls.
- **Storage.** The study lives in ``out/study.log`` (Optuna's ``JournalStorage`` over a file).
  A SQLite ``RDBStorage`` was measured first: 0.5-1.0 s to create and about 1 s of writes for
  an 8-trial, 10-epoch sweep, against 0.01 s and 0.06 s for the journal file; both resume the same.
  Every epoch's metrics are kept in the trial's user attributes, so the records (and the trial
  table, plots and best) are rebuilt from the storage alone. Each write goes to the file at once
  (a killed driver loses nothing), but the file is flushed to the disk (``fsync``) once, when the
  sweep ends, not after every write (Optuna's default: a hundred or more per sweep, each waiting
  for the disk).
- **Checkpoints.** A trial's state (weights, optimizer, schedule, epoch, and its best weights so
  far) is copied in memory after every epoch and written atomically to
  ``out/trials/<trial id>/state.pt`` when the trial ends (finished, pruned, stopped or failed),
  and at most every ``SAVE_EVERY_S`` seconds while it trains (what a driver killed mid-trial
  resumes from): the best bundle, ``top_models`` and ``ensemble`` read the best weights from
  there, as on Ray. Trials train without Lightning's own checkpoint.
- **Stop and resume.** ``stop()`` (any thread) ends each running trial after its current epoch;
  it stays unfinished in the study (``STOPPED`` in the table) and no new trial starts.
  ``resume(out)`` continues each unfinished trial *from its last saved epoch* (same trial id,
  same configuration, the optimizer and schedule restored), then runs the trials not yet begun.
  A driver killed mid-sweep resumes the same way.
- ``retries`` restarts a failed trial from its last saved epoch, like Ray's ``max_failures``.
- **Reproducibility.** Trials one at a time (``max_concurrent: 1``) give exactly the numbers a Ray
  trial gives for the same configuration (a test checks it). Trials side by side share torch's
  process-wide random generator (weight initialisation, dropout), so their numbers vary slightly
  from run to run; the configurations drawn do not (one seeded sampler, asked in order).

Example:
    >>> s = sweep("digits-mlp", samples=8, engine="local")  # doctest: +SKIP
    >>> s.engine, s.trials().shape                          # doctest: +SKIP
    ('local', (8, 11))
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import os
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Literal

from dltoolkit._files import atomic_write_bytes
from dltoolkit.tune.engines import PRUNERS, SAMPLERS, local_concurrency
from dltoolkit.tune.results import TrialRecord
from dltoolkit.tune.sweep import Sweep
from dltoolkit.tune.trainable import STATE_FILE

STUDY_FILE = "study.log"  # the Optuna study (journal storage) inside ``out``
TRIALS_DIR = "trials"  # per-trial states inside ``out``
STUDY = "dltoolkit"
_EPOCH = "epoch_"  # user attribute prefix of an epoch's metrics
SAVE_EVERY_S = 10.0  # a training trial's state is written at least this often (and when it ends)


class _Stopped(Exception):
    """Raised inside a trial's epoch callback once the sweep is asked to stop."""


class _QuietTrials(logging.Filter):
    """Drops Lightning's info lines ("GPU available", "`Trainer.fit` stopped") from trial threads:
    on Ray they stay in the workers' logs; here they would land in whichever cell runs."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno > logging.INFO or not (record.threadName or "").startswith(_THREAD)


_THREAD = "dltoolkit-trial"
_QUIET = _QuietTrials()


class LocalSweep(Sweep):
    """A sweep whose trials run in threads of this process; see the module's notes and :class:`Sweep`."""

    engine = "local"

    def __init__(self, spec: Any, plan: Any, data: Any, out: Path, launched: float) -> None:
        super().__init__(spec, plan, data, out, launched)
        PRUNERS.get(plan.scheduler)(plan)  # PBT: a clear error now, before any trial
        if plan.search == "grid":
            plan.grid()  # continuous domains: a clear error now
        self.concurrency = local_concurrency(plan)
        self._study: Any = None
        self._journal: Any = None
        self._tag = ""
        self._pending: list[Any] = []  # unfinished trials (FrozenTrial) to continue on resume
        self._asked = 0  # trials in the study, begun or finished

    # ------------------------------------------------------------------ running
    def _launch(self, address: str | None, background: bool, restore: bool) -> Sweep:
        self._open(restore)
        self._thread = threading.Thread(target=self._run, name="dltoolkit-sweep", daemon=True)
        self._thread.start()
        return self if background else self.wait()

    def _open(self, restore: bool) -> None:
        """Create the study (or load it to resume) in ``out/study.log``."""
        import optuna
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend, JournalFileSymlinkLock

        logging.getLogger("pytorch_lightning.utilities.rank_zero").addFilter(_QUIET)  # once: a set
        path = str(self.out / STUDY_FILE)
        # a lock left by a killed driver is taken over after 5 s (a write holds it for microseconds)
        self._journal = _journal(JournalFileBackend, path, JournalFileSymlinkLock(path, grace_period=5))
        storage = JournalStorage(self._journal)
        plan = self.plan
        sampler_plan = plan
        if restore:
            trials = optuna.load_study(study_name=STUDY, storage=storage).get_trials(deepcopy=False)
            if plan.seed is not None:  # a resumed random sampler must not replay the first draws
                from dataclasses import replace

                sampler_plan = replace(plan, seed=plan.seed + len(trials))
        kwargs = {
            "sampler": SAMPLERS.get(plan.search)(sampler_plan),
            "pruner": PRUNERS.get(plan.scheduler)(plan),
        }
        if restore:
            self._study = optuna.load_study(study_name=STUDY, storage=storage, **kwargs)
        else:
            direction: Literal["maximize", "minimize"] = "maximize" if plan.mode == "max" else "minimize"
            verbosity = optuna.logging.get_verbosity()
            optuna.logging.set_verbosity(logging.WARNING)  # no "A new study created" line
            try:
                self._study = optuna.create_study(
                    study_name=STUDY, storage=storage, direction=direction, **kwargs
                )
            finally:
                optuna.logging.set_verbosity(verbosity)
            self._study.set_user_attr("tag", uuid.uuid4().hex[:5])
        self._tag = self._study.user_attrs["tag"]
        trials = self._study.get_trials(deepcopy=False)
        self._asked = len(trials)
        self._pending = [t for t in trials if t.state == optuna.trial.TrialState.RUNNING]
        with self._lock:
            self._records = {rec.trial_id: rec for rec in map(self._record, trials)}

    def _run(self) -> None:
        self._runner = threading.get_ident()
        try:
            threads = [
                threading.Thread(target=self._work, name=f"{_THREAD}-{i}", daemon=True)
                for i in range(self.concurrency)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            self._finish()
        except BaseException as e:  # noqa: BLE001 - handed to wait()
            self._error = e
        finally:
            self._done.set()

    def _work(self) -> None:
        """One trial thread: take the next trial until none is left or the sweep stops."""
        self._workers.add(threading.get_ident())
        while (job := self._next()) is not None:
            try:
                self._trial(*job)
            except Exception as e:  # noqa: BLE001 - a failure outside training (the storage): recorded
                self._on_end(self._trial_id(job[0].number), "ERROR", f"{type(e).__name__}: {e}")

    def _next(self) -> tuple[Any, dict[str, Any], bytes | None] | None:
        """(Optuna trial, config, state to continue from) of the next trial; None when done."""
        import optuna

        with self._lock:
            if self.stop_requested.is_set():
                return None
            if self._pending:
                frozen = self._pending.pop(0)
                trial = optuna.trial.Trial(self._study, frozen._trial_id)
                return trial, dict(frozen.params), self._saved(self._trial_id(frozen.number))
            if self._asked >= self.plan.trials():
                return None
            if self.plan.search == "grid" and self._asked >= len(grid := self._grid_points()):
                self._study.enqueue_trial(grid[self._asked % len(grid)])  # the grid again, in order
            self._asked += 1
            trial = self._study.ask()
            config = {path: domain.suggest(trial, path) for path, domain in self.plan.space.items()}
        return trial, config, None

    def _grid_points(self) -> list[dict[str, Any]]:
        grid = self.plan.grid()
        return [dict(zip(grid, values, strict=True)) for values in itertools.product(*grid.values())]

    def _trial(self, trial: Any, config: dict[str, Any], state: bytes | None) -> None:
        """Train one trial, reporting every epoch; record how it ended (never raises)."""
        import optuna

        from dltoolkit.tune.training import train

        trial_id = self._trial_id(trial.number)
        self._on_start(trial_id, config)
        spec = self.trial_spec.with_values(config)
        emit = _Epochs(self, trial, trial_id, config)
        try:
            for attempt in range(self.plan.retries + 1):
                try:
                    train(spec, self.data, state, emit, lazy=True)
                    break
                except (_Stopped, optuna.TrialPruned):
                    raise
                except Exception:
                    if attempt == self.plan.retries:
                        raise
                    emit.save()
                    state = self._saved(trial_id)  # Ray's max_failures: again from the last epoch
                finally:
                    emit.save()  # however it ended: its last epoch's state (the best weights too)
        except _Stopped:
            self._on_end(trial_id, "STOPPED", None)  # left unfinished in the study: resume continues it
            return
        except optuna.TrialPruned:
            self._tell(trial, trial_id, "TERMINATED", state=optuna.trial.TrialState.PRUNED)  # as on Ray
            return
        except Exception as e:  # noqa: BLE001 - a failed trial is recorded; the sweep goes on
            error = f"{type(e).__name__}: {e}"
            trial.set_user_attr("error", error)
            self._tell(trial, trial_id, "ERROR", error, state=optuna.trial.TrialState.FAIL)
            return
        self._tell(trial, trial_id, "TERMINATED", values=emit.best if emit.best is not None else math.nan)

    def _tell(self, trial: Any, trial_id: str, status: str, error: str | None = None, **told: Any) -> None:
        """Finish the trial in the study and in the records; a failing ``tell`` is kept as its error."""
        try:
            self._study.tell(trial, **told)
        except Exception as e:  # noqa: BLE001 - the trial thread must go on to the next trial
            status, error = "ERROR", error or f"{type(e).__name__}: {e}"
        self._on_end(trial_id, status, error)

    def _finish(self) -> None:
        """Rebuild the records from the study (resumed trials whole), then write the outputs."""
        self._journal.sync()
        trials = self._study.get_trials(deepcopy=False)
        with self._lock:
            self._records = {rec.trial_id: rec for rec in map(self._record, trials)}
        self._write_outputs()

    # ------------------------------------------------------------------ the study <-> records
    def _trial_id(self, number: int) -> str:
        return f"{self._tag}_{number:05d}"

    def _state_path(self, trial_id: str) -> Path:
        return self.out / TRIALS_DIR / trial_id / STATE_FILE

    def _saved(self, trial_id: str) -> bytes | None:
        path = self._state_path(trial_id)
        return path.read_bytes() if path.is_file() else None

    def trial_state(self, trial_id: str) -> dict[str, Any] | None:
        from dltoolkit.tune.training import load_state

        return load_state(self._saved(trial_id))

    def _record(self, frozen: Any) -> TrialRecord:
        """A study trial as a TrialRecord (the same shape Ray's experiment folder gives)."""
        from optuna.trial import TrialState

        attrs = frozen.user_attrs
        epochs = sorted(int(k[len(_EPOCH) :]) for k in attrs if k.startswith(_EPOCH))
        rows = [{"epoch": e} | attrs[f"{_EPOCH}{e}"] for e in epochs]
        status = {
            TrialState.COMPLETE: "TERMINATED",
            TrialState.PRUNED: "TERMINATED",
            TrialState.FAIL: "ERROR",
            TrialState.WAITING: "PENDING",
        }.get(frozen.state, "STOPPED")  # RUNNING in the study: unfinished, resume continues it
        config = {p: frozen.params[p] for p in self.plan.space if p in frozen.params}
        trial_id = self._trial_id(frozen.number)
        return TrialRecord(trial_id, config, status, attrs.get("error"), rows, attrs.get("seconds", 0.0))


def _journal(base: type, path: str, lock: Any) -> Any:
    """Optuna's ``JournalFileBackend`` (``base``, imported by the caller) whose writes are not
    flushed to the disk one by one; ``sync()`` flushes them all.

    A write still reaches the file (the operating system's cache) before it returns, so a driver
    that is killed loses nothing; only a machine that loses power could lose the writes since the
    last ``sync()``.
    """

    class Journal(base):
        def append_logs(self, logs: list[dict[str, Any]]) -> None:
            text = "".join(json.dumps(log, separators=(",", ":")) + "\n" for log in logs)
            lock.acquire()
            try:
                with open(path, "ab") as f:
                    f.write(text.encode("utf-8"))
            finally:
                lock.release()

        def sync(self) -> None:
            with open(path, "ab") as f:
                os.fsync(f.fileno())

    return Journal(path, lock_obj=lock)


class _Epochs:
    """A trial's ``emit``: saves each epoch (metrics in the study; the state in memory, on disk when
    the trial ends or ``SAVE_EVERY_S`` after the last write), streams it to the sweep, reports it to
    the pruner; stops the trial when the sweep stops or the pruner says so."""

    def __init__(self, sweep: LocalSweep, trial: Any, trial_id: str, config: dict[str, Any]) -> None:
        self.sweep, self.trial, self.trial_id, self.config = sweep, trial, trial_id, config
        attrs = sweep._study._storage.get_trial(trial._trial_id).user_attrs  # a continued trial's past
        self.seconds0, self.started = float(attrs.get("seconds", 0.0)), time.perf_counter()
        self.state: Any = None  # the last epoch's LazyState, until it is written
        self.saved = self.started
        plan = sweep.plan
        seen = [v[plan.metric] for k, v in attrs.items() if k.startswith(_EPOCH) and plan.metric in v]
        self.best: float | None = None
        for value in seen:
            self._keep(value)

    def _keep(self, value: float | None) -> None:
        if value is None or not math.isfinite(value):
            return
        better = self.best is None or (
            value > self.best if self.sweep.plan.mode == "max" else value < self.best
        )
        self.best = value if better else self.best

    def save(self) -> None:
        """Write the last epoch's state (if not written yet) to ``trials/<id>/state.pt``."""
        if self.state is not None:
            atomic_write_bytes(self.sweep._state_path(self.trial_id), self.state())
            self.state, self.saved = None, time.perf_counter()

    def __call__(self, metrics: dict[str, float], epoch: int, state: Any) -> None:
        sweep, trial = self.sweep, self.trial
        now = time.perf_counter()
        seconds = self.seconds0 + now - self.started
        trial.set_user_attr(f"{_EPOCH}{epoch}", metrics)
        trial.set_user_attr("seconds", seconds)
        self.state = state
        if now - self.saved >= SAVE_EVERY_S:
            self.save()
        value = metrics.get(sweep.plan.metric)
        self._keep(value)
        sweep._on_result(self.trial_id, self.config, metrics | {"epoch": epoch, "time_total_s": seconds})
        if sweep.stop_requested.is_set():
            raise _Stopped  # the trial's state is written as it ends (LocalSweep._trial)
        if value is not None:
            trial.report(value, epoch)
            if trial.should_prune():
                import optuna

                raise optuna.TrialPruned(f"pruned at epoch {epoch}")
