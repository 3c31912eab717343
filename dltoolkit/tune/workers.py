"""Warm trial workers: Ray actors that have imported torch and Lightning once and train trial after trial.

A Tune trial runs in a Ray actor that Tune creates for the sweep and ends with it; a fresh actor
process spends seconds importing torch and Lightning before its first epoch (most of a small
sweep's time). The workers here live as long as the Ray session of this process (a notebook
kernel): every sweep's trial actors hand their training to a free worker on their node and only
relay its epochs to Tune, so only the first sweep in a session waits for the imports.

Workers ask Ray for no CPUs (the trial actor holds the trial's CPUs and the worker does the
computing for it, on the same node) but declare the memory they hold (``WORKER_MEMORY``), so Ray
does not place more of them, or other work, than the node has memory for. They are owned by this
driver: they end with its Ray session, or with :func:`release_workers`. Trials that need a GPU,
and trials on nodes without a free worker, train inside their own trial actor as before.

A trial holds its worker on a lease: when its relay (the trial actor) has not asked for an epoch
for ``LEASE_S`` seconds (``DLTOOLKIT_WORKER_LEASE_S`` in the driver's environment when the
workers start), the worker stops that training and is free for another trial. The trial is then
reported as failed, with a :class:`~dltoolkit.errors.TrainingError` that names the lease and how
to raise it, never as a normal end.

Example:
    >>> workers = warm_workers(2)   # doctest: +SKIP
    >>> release_workers()           # doctest: +SKIP
"""

from __future__ import annotations

import queue
import threading
import time
from typing import Any

import ray

LEASE_S = 120.0  # a claimed worker nobody has asked for an epoch for this long is free again
LEASE_ENV = "DLTOOLKIT_WORKER_LEASE_S"  # seconds: overrides LEASE_S for workers started after it is set
WORKERS_ENV = "DLTOOLKIT_WARM_WORKERS"  # 1 / 0: warm workers on / off, whatever the memory
MIN_MEMORY = 4 * 2**30  # Ray's memory resource below which warm workers are off by default
# Ray's memory resource each worker declares: a worker process with torch, Lightning and dltoolkit
# imported measures about 450 MB resident (RSS, CPU torch 2.x), and a small in-memory sweep's
# data, model and optimizer state add some tens of MB; 640 MiB covers both with room to spare.
# Larger data is read once per worker (a copy of the sweep's prepared tensors): those sweeps
# should run without warm workers on small machines (workers=False).
WORKER_MEMORY = 640 * 2**20
_POOL: list[Any] = []
_POOL_JOB: str | None = None  # the Ray session (node and job of this driver) the pool belongs to
_POOL_LOCK = threading.Lock()


def wanted(memory: float) -> bool:
    """Warm workers by default? Yes where Ray has ``MIN_MEMORY`` for tasks (Ray's ``memory``
    resource, which counts a container's limit): each worker holds torch and Lightning, about
    450 MB, for the rest of the session; a 2 GB Binder pod has no room for that.
    ``DLTOOLKIT_WARM_WORKERS=1`` or ``0`` decides instead."""
    import os

    setting = os.environ.get(WORKERS_ENV, "").strip().lower()
    if setting in ("1", "true", "yes", "on"):
        return True
    if setting in ("0", "false", "no", "off"):
        return False
    return memory >= MIN_MEMORY


def lease_seconds() -> float:
    """The lease of workers started now: ``DLTOOLKIT_WORKER_LEASE_S`` when set, else ``LEASE_S``."""
    import os

    from dltoolkit.errors import SpecError, message

    text = os.environ.get(LEASE_ENV, "").strip()
    if not text:
        return LEASE_S
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise SpecError(
            message(
                f"Invalid {LEASE_ENV}",
                text,
                "a positive number of seconds",
                f"Set {LEASE_ENV}=600 (ten minutes), or unset it for the default {LEASE_S:g} s.",
            )
        )
    return value


def prune_workers(timeout: float = 10.0) -> int:
    """Drop workers that died (memory, a crash) from the pool; returns how many are left."""
    with _POOL_LOCK:
        asked = {worker.where.remote(): worker for worker in _POOL}
        if not asked:
            return 0
        answered, _ = ray.wait(list(asked), num_returns=len(asked), timeout=timeout)
        for ref in answered:  # the others are still starting: kept
            try:
                ray.get(ref)
            except ray.exceptions.RayError:
                _POOL.remove(asked[ref])
        return len(_POOL)


def warm_workers(count: int) -> list[Any]:
    """At least ``count`` workers on this node, started (in the background) if missing; their handles."""
    global _POOL_JOB
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    context = ray.get_runtime_context()
    # job ids restart at 1 in each new Ray, node ids do not
    session = f"{context.get_node_id()}/{context.get_job_id()}"
    with _POOL_LOCK:
        if _POOL_JOB != session:  # a new Ray session: the old workers went with the old one
            _POOL.clear()
            _POOL_JOB = session
        here = NodeAffinitySchedulingStrategy(context.get_node_id(), soft=False)
        # no more than Ray's free memory holds: a worker Ray cannot place would never start
        room = int(_free_memory() // WORKER_MEMORY)
        lease = lease_seconds()
        while len(_POOL) < count and room > 0:
            _POOL.append(
                TrialWorker.options(  # type: ignore[attr-defined]  # ray.remote is typed to return the class
                    num_cpus=0, memory=WORKER_MEMORY, max_concurrency=4, scheduling_strategy=here
                ).remote(lease)
            )
            room -= 1
        return list(_POOL)


def _free_memory() -> float:
    """Ray's unclaimed ``memory`` resource (bytes; over the cluster, so at most what is free on
    this node once other nodes join)."""
    return ray.available_resources().get("memory", 0.0)


def release_workers() -> int:
    """End this session's warm workers (they restart on the next sweep); returns how many ended."""
    global _POOL_JOB
    with _POOL_LOCK:
        ended = len(_POOL)
        if ray.is_initialized():
            for worker in _POOL:
                ray.kill(worker)
        _POOL.clear()
        _POOL_JOB = None
        return ended


class _Aborted(Exception):
    """Raised in a worker's training thread to end a trial nobody follows any more."""


class _Job:
    """One trial in a worker: its training thread and the epochs it has not handed out yet."""

    def __init__(self, key: str, lease: float = LEASE_S) -> None:
        self.key, self.lease = key, lease
        self.epochs: queue.Queue = queue.Queue(maxsize=1)  # one epoch ahead at most
        self.abort = threading.Event()
        self.seen = time.monotonic()  # the last time the trial actor asked for an epoch
        self.thread: threading.Thread | None = None
        self.expired: BaseException | None = None  # set when the lease ran out: the trial's error

    def stale(self) -> bool:
        return time.monotonic() - self.seen > self.lease

    def put(self, item: tuple) -> None:
        while True:
            if self.abort.is_set():
                raise _Aborted
            if self.stale():
                self.expired = lease_error(self.key, self.lease)
                raise _Aborted
            try:
                self.epochs.put(item, timeout=0.2)
                return
            except queue.Full:
                continue


def lease_error(key: str, lease: float) -> BaseException:
    """The error of a trial whose worker stopped its training because the lease ran out."""
    from dltoolkit.errors import TrainingError

    return TrainingError(
        f"Trial {key} was stopped by its warm worker: nobody asked the worker for the trial's next "
        f"epoch for {lease:g} s, the worker's lease ({LEASE_ENV}), so the worker took the trial as "
        f"abandoned. If the trial's actor was only slow (a busy machine, a slow checkpoint), raise "
        f"the lease: set {LEASE_ENV}=600 (seconds) in the environment before the sweep starts its "
        "workers (call dltoolkit.tune.release_workers() first in a running session), or sweep "
        "without warm workers (workers=False)."
    )


@ray.remote
class TrialWorker:
    """A process with torch and Lightning imported that trains one trial at a time for a relay."""

    def __init__(self, lease: float = LEASE_S) -> None:
        import os

        os.environ.setdefault("PL_DISABLE_FORK", "1")  # as Tune sets for its own trial actors
        import dltoolkit.train.fit  # noqa: F401 - the point of this worker: import once
        import dltoolkit.tune.training  # noqa: F401

        self._lease = lease  # seconds a trial keeps this worker without asking for an epoch
        self._lock = threading.Lock()
        self._job: _Job | None = None
        self._lost: dict[str, BaseException] = {}  # trials whose lease ran out -> their error
        self._data: tuple[str, Any] | None = None  # (object id, value): a sweep's data, read once
        self._arrivals: dict[str, int] = {}  # sweep id -> its trial actors that have started
        self._arrivals_lock = threading.Lock()

    def arrive(self, sweep: str) -> int:
        """Count one more started trial actor of ``sweep``; returns how many have (see
        :func:`dltoolkit.tune.trainable._end_wave`)."""
        with self._arrivals_lock:
            self._arrivals[sweep] = self._arrivals.get(sweep, 0) + 1
            return self._arrivals[sweep]

    def arrived(self, sweep: str) -> int:
        with self._arrivals_lock:
            return self._arrivals.get(sweep, 0)

    def start(self, key: str, trial: Any, data: list[Any], state: bytes | None) -> bool:
        """Begin training ``trial`` for the relay ``key`` on ``data`` (``[ObjectRef]`` of the prepared
        data: read from the object store once per sweep, not once per trial); False if another
        trial holds this worker."""
        with self._lock:
            job = self._job
            # a trial holds the worker until its relay releases it (or goes silent), not merely
            # until its training ends: its last epochs, "end" or error may still be unread
            if job is not None:
                if not (job.abort.is_set() or job.stale()):
                    return False
                if not job.abort.is_set():  # taken from a trial whose lease ran out
                    self._lost[job.key] = job.expired or lease_error(job.key, job.lease)
                job.abort.set()
                if job.thread is not None:
                    job.thread.join(timeout=30)
                    if job.thread.is_alive():
                        return False
            ref = data[0]
            if self._data is None or self._data[0] != ref.hex():
                self._data = (ref.hex(), ray.get(ref))
            data = self._data[1]
            job = self._job = _Job(key, self._lease)
            job.thread = threading.Thread(
                target=self._train, args=(job, trial, data, state), name=f"trial-{key}", daemon=True
            )
            job.thread.start()
            return True

    def next(self, key: str) -> tuple:
        """The trial's next epoch ``("epoch", metrics, epoch, state)``, ``("end",)`` or ``("error", exc)``."""
        job = self._job
        if job is None or job.key != key:
            lost = self._lost.pop(key, None)
            return ("error", lost or RuntimeError(f"trial {key} does not hold this worker any more"))
        while True:
            job.seen = time.monotonic()
            try:
                return job.epochs.get(timeout=1.0)
            except queue.Empty:
                if job.thread is None or not job.thread.is_alive():
                    if not job.epochs.empty():
                        return job.epochs.get_nowait()
                    # a training the lease ended is the trial's failure, not its normal end
                    return ("error", job.expired) if job.expired is not None else ("end",)

    def release(self, *keys: str) -> None:
        """The relay is done with its trial (finished or stopped): end its training, free the worker.
        Any of several trials' keys may be given (a stopped sweep frees its trials' workers)."""
        job = self._job
        if job is not None and job.key in keys:
            job.abort.set()

    def where(self) -> tuple[str, int]:
        """(node id, pid) of this worker."""
        import os

        return ray.get_runtime_context().get_node_id(), os.getpid()

    @staticmethod
    def _train(job: _Job, trial: Any, data: Any, state: bytes | None) -> None:
        from dltoolkit.tune.training import train

        def emit(metrics: dict[str, float], epoch: int, blob: bytes) -> None:
            job.put(("epoch", metrics, epoch, blob))

        try:
            train(trial, data, state, emit)
            job.put(("end",))
        except _Aborted:
            pass
        except BaseException as e:  # noqa: BLE001 - handed to the relay, which raises it in Tune
            try:
                job.put(("error", e))
            except _Aborted:
                pass
