"""The driver side of Ray: starting/connecting Ray, and the Tune hooks that feed a live Sweep.

Tune pickles its run configuration (callbacks and stopper included) into the experiment folder
for ``Tuner.restore``, so the hooks hold only a key; they find the live sink in ``LIVE`` at run
time, which also lets a restored experiment stream into a fresh Sweep.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Protocol

from ray import tune

LIVE: dict[str, Sink] = {}  # experiment folder -> the Sweep receiving its events


class Sink(Protocol):
    stop_requested: threading.Event

    def _on_start(self, trial_id: str, config: dict[str, Any]) -> None: ...
    def _on_result(self, trial_id: str, config: dict[str, Any], result: dict[str, Any]) -> None: ...
    def _on_end(self, trial_id: str, status: str, error: str | None) -> None: ...


def start_ray(address: str | None) -> bool:
    """Connect to ``address`` or start a local Ray (no dashboard); True if we did either.

    A local Ray sizes itself: Ray counts the CPUs this process may use, container (cgroup) limits
    included, where ``os.cpu_count()`` would report the whole host (e.g. on Binder).
    """
    import ray

    if ray.is_initialized():
        return False
    if address:
        ray.init(address=address, log_to_driver=False)
    else:
        ray.init(include_dashboard=False, log_to_driver=False)
    return True


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
        sink = LIVE.get(self.key)
        return bool(sink and sink.stop_requested.is_set())
