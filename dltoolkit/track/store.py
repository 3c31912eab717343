"""Reading tracked runs back from an MLflow store, through ``MlflowClient``: the run list and one
run's bundle and per-epoch history (for the Evaluation panel, or a notebook).

Example:
    >>> table = mlflow_runs("sqlite:///runs/mlflow.db")          # doctest: +SKIP
    >>> fetched = fetch_run("sqlite:///runs/mlflow.db", table.run_id[0], "tmp/r")  # doctest: +SKIP
    >>> fetched.bundle, fetched.history.columns                  # doctest: +SKIP
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from dltoolkit._extras import require
from dltoolkit.errors import DLToolkitError, message
from dltoolkit.track.sinks import BUNDLE_TAG, KIND_TAG, PARENT_TAG
from dltoolkit.track.target import mlflow_uri

MAX_RUNS = 1000


def _client(uri: str) -> Any:
    require("track", "Reading runs from MLflow")
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=mlflow_uri(uri, Path("runs/x")) or uri)


def _per_epoch(name: str) -> bool:
    return name.startswith(("train_", "val_")) or name == "lr"  # as in history.csv


def mlflow_runs(uri: str, experiment: str | None = None) -> pd.DataFrame:
    """The runs of one experiment (default: every experiment) of the store at ``uri``, newest first.

    Columns: ``run_id``, ``name``, ``experiment``, ``kind`` (run, sweep or trial), ``parent`` (a
    trial's sweep run id), ``status``, ``bundle`` (the artifact folder of its model bundle, empty
    when it has none) and the run's latest metric values.

    Raises:
        DLToolkitError: no experiment of that name.
    """
    client = _client(uri)
    if experiment is not None:
        found = client.get_experiment_by_name(experiment)
        if found is None:
            names = [e.name for e in client.search_experiments()]
            raise DLToolkitError(message("No such MLflow experiment", experiment, f"one of {names}"))
        experiments = {found.experiment_id: found.name}
    else:
        experiments = {e.experiment_id: e.name for e in client.search_experiments()}
    runs = client.search_runs(list(experiments), max_results=MAX_RUNS) if experiments else []
    rows = []
    for run in runs:
        tags = run.data.tags
        rows.append(
            {
                "run_id": run.info.run_id,
                "name": run.info.run_name,
                "experiment": experiments.get(run.info.experiment_id, ""),
                "kind": tags.get(KIND_TAG, ""),
                "parent": tags.get(PARENT_TAG, ""),
                "status": run.info.status,
                "bundle": tags.get(BUNDLE_TAG, ""),
            }
            | dict(sorted(run.data.metrics.items()))
        )
    columns = ["run_id", "name", "experiment", "kind", "parent", "status", "bundle"]
    return pd.DataFrame(rows, columns=list(dict.fromkeys(columns + [k for r in rows for k in r])))


def _best_trial(client: Any, run: Any) -> Any:
    """The nested run of a sweep's best trial (None for a run, or a sweep that recorded none)."""
    best = run.data.tags.get("dltoolkit.best_trial")
    if run.data.tags.get(KIND_TAG) != "sweep" or not best:
        return None
    found = client.search_runs(
        [run.info.experiment_id],
        filter_string=f"tags.`{PARENT_TAG}` = '{run.info.run_id}' and tags.`dltoolkit.trial_id` = '{best}'",
        max_results=1,
    )
    return found[0] if found else None


@dataclass
class FetchedRun:
    """One tracked run read back: its name, params, metrics, per-epoch history and bundle folder."""

    run_id: str
    name: str
    params: dict[str, str]
    metrics: dict[str, float]
    history: pd.DataFrame
    bundle: Path | None


def fetch_run(uri: str, run_id: str, dst: str | os.PathLike) -> FetchedRun:
    """Read run ``run_id``: params, metrics, the history (one row per epoch, from each per-epoch
    metric's history) and its model bundle downloaded into ``dst`` (None when it logged none)."""
    client = _client(uri)
    run = client.get_run(run_id)
    epochs = _best_trial(client, run) or run  # a sweep's curves: its best trial's
    columns: dict[str, dict[int, float]] = {}
    for key in epochs.data.metrics:
        if _per_epoch(key):
            history = client.get_metric_history(epochs.info.run_id, key)
            columns[key] = {m.step: m.value for m in history}
    history = pd.DataFrame(columns).sort_index().rename_axis("epoch").reset_index()
    folder = run.data.tags.get(BUNDLE_TAG)
    bundle = None
    if folder:
        Path(dst).mkdir(parents=True, exist_ok=True)
        bundle = Path(client.download_artifacts(run_id, folder, str(dst)))
    return FetchedRun(
        run_id, run.info.run_name, dict(run.data.params), dict(run.data.metrics), history, bundle
    )
