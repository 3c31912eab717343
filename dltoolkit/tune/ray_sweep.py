"""The Ray engine of a sweep: trials on Ray Tune (a local Ray or a cluster), events fed to the Sweep.

Tune's callbacks (:mod:`dltoolkit.tune._ray`) forward each trial's start, epochs and end to the
live :class:`RaySweep`; when Tune ends, the records and checkpoints are read back from Ray's
experiment folder ``out/tune``, from which ``resume(out)`` continues (``Tuner.restore``).

Example:
    >>> s = sweep("digits-mlp", overrides={"search.engine": "ray"})  # doctest: +SKIP
    >>> s.engine, s.engine_reason                                    # doctest: +SKIP
    ('ray', 'search.engine: ray')
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from dltoolkit.spec import Spec
from dltoolkit.tune.engines import Plan
from dltoolkit.tune.sweep import EXPERIMENT, Sweep


class RaySweep(Sweep):
    """A sweep whose trials run on Ray Tune; see :class:`dltoolkit.tune.sweep.Sweep`."""

    engine = "ray"

    def __init__(self, spec: Spec, plan: Plan, data: Any, out: Path, launched: float) -> None:
        super().__init__(spec, plan, data, out, launched)
        self.interrupt: threading.Event | None = None  # Tune's own stop event of this run (see _ray)
        self._owns_ray = False
        self._checkpoints: dict[str, Any] = {}  # trial id -> its last checkpoint, once finished
        self.use_workers: bool | None = False  # warm trial workers (None: if there is the memory)
        self._inputs: Any = None
        self.address: str | None = None  # the cluster's, when the sweep runs on one by address

    @property
    def experiment(self) -> Path:
        return (self.out / EXPERIMENT).resolve()

    @property
    def stopped(self) -> bool:
        """Whether the sweep was stopped (``stop()``, or Ctrl-C where Tune caught it) before its end."""
        return self.stop_requested.is_set() or (self.interrupt is not None and self.interrupt.is_set())

    def stop(self, timeout: float = 120.0) -> Sweep:
        """Stop the sweep as Ctrl-C stops Tune: running trials end and stay unfinished (status
        ``STOPPED``), finished results are kept, the outputs are written from what exists, and the
        Ray this sweep started shuts down. ``resume(out)`` later continues the stopped trials from
        their last checkpoints and runs the trials not yet begun.

        Safe from any thread (a notebook cell, a panel's button, a signal handler's thread).
        """
        self.stop_requested.set()
        if self.interrupt is not None:
            self.interrupt.set()
        if not self._in_engine():
            self._done.wait(timeout)
        self._shutdown_ray()
        return self

    def _shutdown_ray(self) -> None:
        if self._owns_ray:
            import ray

            ray.shutdown()
            self._owns_ray = False

    def trial_state(self, trial_id: str) -> dict[str, Any] | None:
        from dltoolkit.tune.trainable import read_state

        return read_state(self._checkpoints.get(trial_id))

    # ------------------------------------------------------------------ running
    def _launch(self, address: str | None, background: bool, restore: bool) -> Sweep:
        import ray

        from dltoolkit._quiet import quiet_ray
        from dltoolkit.tune import _ray
        from dltoolkit.tune._phase import phase
        from dltoolkit.tune.launch import build_tuner

        if not ray.is_initialized():
            phase(f"connecting to Ray at {address}" if address else "starting Ray")
        quiet_ray()
        self._owns_ray = _ray.start_ray(address)
        self.address = address
        _ray.LIVE[str(self.experiment)] = self
        tuner = build_tuner(self, restore)
        if background:
            self._thread = threading.Thread(
                target=self._run, args=(tuner,), name="dltoolkit-sweep", daemon=True
            )
            self._thread.start()
            return self
        try:
            self._run(tuner)
        except KeyboardInterrupt:
            self.stop()
            raise
        return self.wait()

    def _run(self, tuner: Any) -> None:
        from dltoolkit.tune import _ray

        self._runner = threading.get_ident()
        _ray.catch_interrupts()
        _ray.keep_previous_state()
        _ray.FITTING[self._runner] = self
        try:
            tuner.fit()
            self._finish()
        except BaseException as e:  # noqa: BLE001 - handed to wait()
            self._error = e
        finally:
            _ray.FITTING.pop(self._runner, None)
            _ray.LIVE.pop(str(self.experiment), None)
            self._free_workers()
            if self.stop_requested.is_set():
                self._shutdown_ray()
            self._done.set()

    def _free_workers(self) -> None:
        """Free the warm workers still training a trial of this sweep (a stopped sweep's trial
        actors end without telling them), so that the next sweep finds them free."""
        workers = getattr(self._inputs, "workers", None)
        if not workers:
            return
        import ray

        with self._lock:
            trials = list(self._records)
        if ray.is_initialized() and trials:
            for worker in workers:
                worker.release.remote(*trials)

    def _finish(self) -> None:
        from dltoolkit.tune.launch import load_records

        if self.use_workers is not False:
            from dltoolkit.tune.workers import prune_workers

            prune_workers()
        records, checkpoints = load_records(self)
        if records:
            with self._lock:
                self._records = records
        self._checkpoints = checkpoints
        self._write_outputs()
