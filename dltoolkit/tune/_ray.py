"""The driver side of Ray: starting/connecting Ray, and the Tune hooks that feed a live Sweep.

Tune pickles its run configuration (callbacks and stopper included) into the experiment folder
for ``Tuner.restore``, so the hooks hold only a key; they find the live sink in ``LIVE`` at run
time, which also lets a restored experiment stream into a fresh Sweep.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

from ray import tune

LIVE: dict[str, Sink] = {}  # experiment folder -> the Sweep receiving its events
FITTING: dict[int, Sink] = {}  # thread ident -> the Sweep whose Tuner.fit runs in that thread


class Sink(Protocol):
    stop_requested: threading.Event
    interrupt: threading.Event | None

    def _on_start(self, trial_id: str, config: dict[str, Any]) -> None: ...
    def _on_result(self, trial_id: str, config: dict[str, Any], result: dict[str, Any]) -> None: ...
    def _on_end(self, trial_id: str, status: str, error: str | None) -> None: ...


def start_ray(address: str | None) -> bool:
    """Connect to ``address`` or start a local Ray (no dashboard); True if we did either.

    A local Ray sizes itself: Ray counts the CPUs this process may use, container (cgroup) limits
    included, where ``os.cpu_count()`` would report the whole host (e.g. on Binder).

    Ray's own processes (``gcs_server``, ``raylet``) are started with a parent-death signal, and on
    Linux that signal follows the *thread* that spawned them: started from a short-lived thread (a
    notebook panel's launch thread), they die with it and the kernel later exits with "Failed to
    connect to GCS". So Ray is started either in the main thread or in :func:`owner_thread`, a
    thread that lives as long as the process.
    """
    import ray

    if ray.is_initialized():
        return False
    if threading.current_thread() is threading.main_thread():
        _init(address)
    else:
        owner_thread().submit(_init, address).result()
    return True


def _init(address: str | None) -> None:
    import logging

    import ray

    if ray.is_initialized():  # another thread got here first
        return
    quiet: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.WARNING}
    # Ray's start-up notices (token authentication is on; no SIGTERM handler outside the main
    # thread) are not the user's business in a notebook cell or a CLI run
    noisy = [
        logging.getLogger(n)
        for n in ("ray._private.authentication.authentication_token_setup", "ray._private.worker")
    ]
    levels = [log.level for log in noisy]
    for log in noisy:
        log.setLevel(logging.ERROR)
    try:
        if address:
            ray.init(address=address, **quiet)
        else:
            try:
                ray.init(include_dashboard=False, **quiet)
            except Exception as e:  # noqa: BLE001 - Ray raises a bare Exception for this one
                if "timed out during startup" not in str(e):
                    raise
                # Ray gives its raylet a fixed 30 s to register; on a busy machine that is not
                # always enough. A second start usually is (the first warmed the file cache).
                ray.shutdown()
                ray.init(include_dashboard=False, **quiet)
    finally:
        for log, level in zip(noisy, levels, strict=True):
            log.setLevel(level)


_OWNER: ThreadPoolExecutor | None = None
_OWNER_LOCK = threading.Lock()


def owner_thread() -> ThreadPoolExecutor:
    """One thread for the whole process that starts the long-lived processes (Ray) dltoolkit needs.

    An idle worker of a ThreadPoolExecutor waits for work until the executor is shut down; this
    one is kept in a module global, so it lives until the interpreter exits.
    """
    global _OWNER
    with _OWNER_LOCK:
        if _OWNER is None:
            _OWNER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dltoolkit-ray-owner")
        return _OWNER


def catch_interrupts() -> None:
    """Give each sweep the event with which Tune ends its run as on Ctrl-C (once per process).

    Tune stops a run two ways. A stopper's ``stop_all`` ends every trial as finished, so a resumed
    sweep would continue nothing. Ctrl-C (SIGINT) sets an event instead: Tune leaves its loop,
    saves the experiment with the running trials unfinished, and ``Tuner.restore`` continues them
    from their checkpoints. That event is made inside ``tune.run`` (``_setup_signal_catching``),
    which installs the signal handler only in the main thread; this wraps the maker so that
    :meth:`Sweep.stop` can set the event of its own run from any thread. Where a Ray version lacks
    the maker, ``stop()`` falls back to ``stop_all``.
    """
    import ray.tune.tune as run_module

    make = getattr(run_module, "_setup_signal_catching", None)
    if make is None:
        _warn_no_signal_hook()
        return
    if getattr(make, "dltoolkit", False):
        return

    def setup_signal_catching() -> threading.Event:
        event = make()
        sink = FITTING.get(threading.get_ident())
        if sink is not None:
            sink.interrupt = event
            if sink.stop_requested.is_set():  # stopped before Tune got here
                event.set()
        return event

    setup_signal_catching.dltoolkit = True  # type: ignore[attr-defined]
    run_module._setup_signal_catching = setup_signal_catching


PREVIOUS = ".prev"  # suffix of the experiment state saved before the one being written


def keep_previous_state() -> None:
    """Keep the last complete experiment state while Tune writes the next (once per process).

    Tune writes ``experiment_state-*.json`` in place (``TuneController.save_to_dir``: ``open(..., "w")``
    then ``json.dump``), so a driver killed during the write (SIGKILL, a crash, the machine) leaves
    it cut short and ``Tuner.restore`` cannot read it. This wraps the writer so that the file
    written before is moved aside (``<name>.prev``, an atomic rename) first; :func:`repair_state`
    puts it back on resume when the newest one is unreadable. Where a Ray version lacks the writer,
    nothing is kept (a warning, once).
    """
    from ray.tune.execution.tune_controller import TuneController

    save = getattr(TuneController, "save_to_dir", None)
    if save is None or not isinstance(getattr(TuneController, "experiment_state_file_name", None), property):
        _warn_once(
            "state",
            "TuneController.save_to_dir / experiment_state_file_name",
            "a resume after a driver killed while saving the sweep's state may find that state cut short",
        )
        return
    if getattr(save, "dltoolkit", False):
        return

    def save_to_dir(self: Any) -> None:
        staging = getattr(getattr(self, "_storage", None), "experiment_driver_staging_path", None)
        if staging is not None:
            path = Path(staging, self.experiment_state_file_name)
            if path.is_file() and path.stat().st_size > 0:
                path.replace(path.with_name(path.name + PREVIOUS))
        save(self)

    save_to_dir.dltoolkit = True  # type: ignore[attr-defined]
    TuneController.save_to_dir = save_to_dir  # type: ignore[method-assign]


def repair_state(experiment: Path) -> list[str]:
    """Before a resume: put back the state saved before each experiment state that is cut short.

    Returns the names of the states put back.

    Raises:
        DLToolkitError: a state is unreadable and no earlier one was kept.
    """
    import json

    from dltoolkit.errors import DLToolkitError, message

    repaired = []
    for path in sorted(experiment.glob("experiment_state-*.json")):
        try:
            json.loads(path.read_text())
            continue
        except (ValueError, UnicodeDecodeError):
            pass
        previous = path.with_name(path.name + PREVIOUS)
        try:
            json.loads(previous.read_text())
        except (OSError, ValueError, UnicodeDecodeError):
            raise DLToolkitError(
                message(
                    "The sweep's saved state is cut short and no earlier one was kept",
                    str(path),
                    "a complete experiment state (the driver was stopped while writing it)",
                    "Start the sweep again into a new folder; its finished trials' results stay in this one.",
                )
            ) from None
        previous.replace(path)
        repaired.append(path.name)
    return repaired


_WARNED: set[str] = set()


def _warn_once(key: str, hook: str, consequence: str) -> None:
    """Once per process: the Ray installed lacks ``hook`` (see tests/core/test_canaries.py)."""
    if key in _WARNED:
        return
    _WARNED.add(key)
    import logging

    import ray

    logging.getLogger("dltoolkit.hooks").warning(
        "The installed Ray (%s) lacks %s, which dltoolkit uses; %s. Install a Ray in the range "
        "pyproject.toml declares, or report this.",
        ray.__version__,
        hook,
        consequence,
    )


def _warn_no_signal_hook() -> None:
    """Once per process: the Ray installed lacks the hook that stop-as-Ctrl-C needs (see the
    canary test in tests/core/test_canaries.py)."""
    if "signal" in _WARNED:
        return
    _WARNED.add("signal")
    import logging

    import ray

    logging.getLogger("dltoolkit.hooks").warning(
        "The installed Ray (%s) lacks ray.tune.tune._setup_signal_catching, which dltoolkit uses; "
        "Sweep.stop() falls back to ending every trial as finished (stop_all), so resume() will not "
        "continue the stopped trials. Install a Ray in the range pyproject.toml declares "
        "(ray[tune]>=2.41,<2.61), or report this.",
        ray.__version__,
    )


def error_text(path: str | None) -> str | None:
    """The last line of a trial's error file: the exception type and message."""
    if not path or not Path(path).is_file():
        return None
    lines = [ln.strip() for ln in Path(path).read_text(errors="replace").splitlines() if ln.strip()]
    return lines[-1] if lines else None


def user_config(config: dict[str, Any], space: list[str]) -> dict[str, Any]:
    return {p: config[p] for p in space if p in config}


class Stream(tune.Callback):
    """Runs in the driver: forwards trial starts, each reported epoch and trial ends to the sink."""

    def __init__(self, key: str, paths: list[str]) -> None:
        self.key, self.paths = key, list(paths)

    def _sink(self) -> Sink | None:
        return LIVE.get(self.key)

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        if sink := self._sink():
            sink._on_start(trial.trial_id, user_config(trial.config, self.paths))

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        if sink := self._sink():
            sink._on_result(trial.trial_id, user_config(trial.config, self.paths), result)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        if sink := self._sink():
            sink._on_end(trial.trial_id, "TERMINATED", None)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        if sink := self._sink():
            sink._on_end(trial.trial_id, "ERROR", error_text(trial.error_file))


class StopFlag(tune.Stopper):
    """Stops the whole experiment once the live sweep asks to (checked on every Tune step)."""

    def __init__(self, key: str) -> None:
        self.key = key

    def __call__(self, trial_id: str, result: dict) -> bool:
        return False

    def stop_all(self) -> bool:
        sink = LIVE.get(self.key)  # only where Tune's interrupt event could not be reached
        return bool(sink and sink.stop_requested.is_set() and sink.interrupt is None)
