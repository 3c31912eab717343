"""What Tune runs for one trial: :func:`train_trial`, light enough to start in a fresh actor fast.

The trial's training (:mod:`dltoolkit.tune.training`, torch and Lightning) runs in a warm trial
worker on the same node when the sweep has one free (:mod:`dltoolkit.tune.workers`); this actor
then relays each epoch to Tune as a report with a checkpoint. Without a free worker (a GPU trial,
a node the sweep has no worker on) the actor imports the training itself and runs it in place.
Either way a trial is a pure function of (config, spec, prepared data, checkpoint).

The prepared data reach the workers through Ray's object store once per sweep, by reference: this
module never unpickles them unless it trains in place (they hold torch tensors).

Setting the environment variable ``DLTOOLKIT_TUNE_TRACE`` to a directory makes every trained
epoch append ``<trial id> <epoch>`` to ``trace.txt`` there (used by the resume test).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dltoolkit.spec import Spec

STATE_FILE = "state.pt"
TRACE_ENV = "DLTOOLKIT_TUNE_TRACE"
WAVE_S = 20.0  # the longest a trial of a sweep's first wave waits for the others' actors to start
_WAVES_DONE: set[str] = set()  # sweeps (launches) whose first wave has started, in this process


@dataclass
class TrialInputs:
    """What every trial of a sweep shares: the prepared data (an object-store reference) and workers."""

    data: Any  # ray.ObjectRef of the Prepared data
    workers: list[Any] = field(default_factory=list)  # TrialWorker handles (on the driver's node)
    sweep: str = ""  # this run of the sweep (a fresh id per launch, resume included)
    together: int = 0  # trials in the first wave: Tune's first trial actors (see _end_wave)
    ray_data: bool = False  # trials read their streamed training rows with Ray Data (no workers then)


def train_trial(config: dict[str, Any], *, spec: Spec, inputs: TrialInputs) -> None:
    """Train one trial of ``spec`` with ``config`` (dotted path -> value), reporting each epoch."""
    from ray import tune

    trial = spec.with_values(config)
    state = _checkpoint_bytes(tune.get_checkpoint())
    if inputs.workers and _relay(trial, inputs, state):
        return
    import ray

    from dltoolkit.tune.training import train

    train(trial, ray.get(inputs.data), state, _report, ray_data=inputs.ray_data)


def _relay(trial: Spec, inputs: TrialInputs, state: bytes | None) -> bool:
    """Train on a free warm worker of this node, reporting its epochs; False if none was free."""
    import ray
    from ray import tune

    key = tune.get_context().get_trial_id()
    node = ray.get_runtime_context().get_node_id()
    _arrive(inputs)
    for worker in inputs.workers:
        try:
            where, pid = ray.get(worker.where.remote())
            if where != node or not ray.get(worker.start.remote(key, trial, [inputs.data], state)):
                continue
        except ray.exceptions.RayActorError:
            continue  # a worker that died (memory, a crash): the next one, or train in place
        try:
            while (item := ray.get(worker.next.remote(key)))[0] != "end":
                if item[0] == "error":
                    raise item[1]
                _, metrics, epoch, blob = item
                _report(metrics, epoch, blob, trained_by=pid)
        finally:
            try:
                ray.get(worker.release.remote(key), timeout=30)
            except (ray.exceptions.RayError, TimeoutError):
                pass
        _end_wave(inputs)
        return True
    return False


def _arrive(inputs: TrialInputs) -> None:
    """Count this trial actor as started, for the first wave of its sweep (see :func:`_end_wave`)."""
    import ray

    if inputs.together > 1 and inputs.sweep not in _WAVES_DONE:
        try:
            ray.get(inputs.workers[0].arrive.remote(inputs.sweep))  # any worker keeps the count
        except ray.exceptions.RayActorError:
            _WAVES_DONE.add(inputs.sweep)  # the counting worker died: nobody waits


def _end_wave(inputs: TrialInputs) -> None:
    """Before a trial of the first wave ends: wait (at most ``WAVE_S``) until every trial actor of
    that wave has started.

    Why: Tune (``reuse_actors``) gives a trial whose actor is still starting to an actor whose
    trial has just ended, and ends the starting actor. A warm worker trains a short trial in a
    fraction of a second, a trial actor takes seconds to start; without this wait the first actor
    to start took every trial in turn, one at a time, while Tune started and ended actors for the
    others (sweeps twice as long, trained by one worker). Trials longer than an actor's start
    never wait.
    """
    import time

    import ray

    if inputs.together < 2 or inputs.sweep in _WAVES_DONE:
        return
    deadline = time.monotonic() + WAVE_S
    try:
        while ray.get(inputs.workers[0].arrived.remote(inputs.sweep)) < inputs.together:
            if time.monotonic() > deadline:
                break
            time.sleep(0.02)
    except ray.exceptions.RayActorError:
        pass
    _WAVES_DONE.add(inputs.sweep)


def _report(metrics: dict[str, float], epoch: int, blob: bytes, trained_by: int | None = None) -> None:
    """One epoch to Tune: its metrics, the pid of the process that trained it, and a checkpoint
    holding the trial's state."""
    from ray import tune

    extra = {"epoch": epoch, "trained_by": trained_by or os.getpid()}
    with tempfile.TemporaryDirectory(prefix="dltoolkit-ckpt-") as folder:
        (Path(folder) / STATE_FILE).write_bytes(blob)
        tune.report(metrics | extra, checkpoint=tune.Checkpoint.from_directory(folder))
    _trace(epoch)


def _checkpoint_bytes(checkpoint: Any) -> bytes | None:
    """The state file inside a trial checkpoint as bytes (None: no checkpoint, or one no longer on disk)."""
    if checkpoint is None:
        return None
    with checkpoint.as_directory() as folder:
        path = Path(folder) / STATE_FILE
        return path.read_bytes() if path.is_file() else None


def read_state(checkpoint: Any) -> dict[str, Any] | None:
    """The state dict inside a trial checkpoint (None for no checkpoint, or one no longer on disk)."""
    from dltoolkit.tune.training import load_state

    return load_state(_checkpoint_bytes(checkpoint))


def _trace(epoch: int) -> None:
    folder = os.environ.get(TRACE_ENV)
    if folder:
        from ray import tune

        with open(Path(folder) / "trace.txt", "a") as f:
            f.write(f"{tune.get_context().get_trial_id()} {epoch}\n")
