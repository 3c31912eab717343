"""Experiment tracking: runs and sweeps also logged to MLflow and TensorBoard (the ``track`` extra).

Turned on by the spec's ``track`` section (``track: {mlflow: true}``) or ``--track URI`` on
``dltoolkit run`` and ``dltoolkit tune``; off by default. Everything is logged from the driver
(the process that called ``run`` or ``sweep``): sweep trials, on either engine, need no MLflow
access, so a Ray cluster's workers need neither the package nor the network path to the server.
The calls to MLflow and TensorBoard run on their own background threads, so training never waits
on a server; a store that cannot be used gives one :class:`TrackingWarning` and the run goes on.
``mlflow`` is imported only when tracking is on.

What is logged, and when: :mod:`dltoolkit.track.trackers`. Where: :mod:`dltoolkit.track.target`.
Reading runs back: :func:`mlflow_runs`, :func:`fetch_run` (and the Evaluation panel).

Example:
    >>> r = dltoolkit.run("wine", overrides={"track.mlflow": True})   # doctest: +SKIP
    >>> r.tracking["mlflow_run_id"]                                  # doctest: +SKIP
"""

from dltoolkit.track._sender import TrackingWarning
from dltoolkit.track.store import FetchedRun, fetch_run, mlflow_runs
from dltoolkit.track.trackers import RunTracking, SweepTracking, Tracker

__all__ = [
    "FetchedRun",
    "RunTracking",
    "SweepTracking",
    "Tracker",
    "TrackingWarning",
    "fetch_run",
    "mlflow_runs",
]
