"""The two sinks: MLflow runs (through ``MlflowClient``) and TensorBoard event files.

Both are used from their :class:`~dltoolkit.track._sender.Sender`'s thread only, so they keep
plain dicts without locks. A run is named by a *key*: ``""`` for the run (or the sweep), a trial id
for a sweep's trial.

MLflow is driven through ``MlflowClient`` with explicit run ids rather than the fluent
``mlflow.start_run`` (whose active run is global state: trials of the local engine finish in
several threads, and a notebook may have its own active run). A trial is nested under its sweep
the way ``mlflow.start_run(nested=True)`` does it: the ``mlflow.parentRunId`` tag.
"""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path
from typing import Any

PARENT_TAG = "mlflow.parentRunId"  # what mlflow.start_run(nested=True) sets: the UI nests by it
KIND_TAG = "dltoolkit.kind"  # run, sweep or trial
BUNDLE_TAG = "dltoolkit.bundle"  # the artifact folder holding the model bundle
_KEY = re.compile(r"[^/\w.\- :]")  # what MLflow accepts in param and metric names
_MAX_VALUE = 6000  # MLflow's longest param value
QUIET_LOGGERS = ("mlflow.store", "alembic")
_PARAMS_PER_BATCH, _METRICS_PER_BATCH = 100, 1000  # MLflow's log_batch limits


def clean_key(key: str) -> str:
    """A param or metric name MLflow accepts (other characters become ``_``)."""
    return _KEY.sub("_", key)[:250]


class MlflowSink:
    """Runs in one MLflow experiment; connects (imports mlflow, opens the store) on first use."""

    def __init__(self, uri: str, experiment: str, artifact_location: str | None) -> None:
        self.uri, self.experiment, self.artifact_location = uri, experiment, artifact_location
        self.client: Any = None
        self.experiment_id = ""
        self.runs: dict[str, str] = {}  # key -> MLflow run id

    def connect(self) -> None:
        from mlflow import MlflowClient
        from mlflow.exceptions import MlflowException

        from dltoolkit._quiet import verbose

        if not verbose():  # "Creating initial MLflow database tables...", alembic's migration lines
            for name in QUIET_LOGGERS:
                logging.getLogger(name).setLevel(logging.WARNING)
        from dltoolkit.track.target import local_store

        if (db := local_store(self.uri)) is not None:
            db.parent.mkdir(parents=True, exist_ok=True)
        client = MlflowClient(tracking_uri=self.uri)
        found = client.get_experiment_by_name(self.experiment)
        if found is None:
            try:
                self.experiment_id = client.create_experiment(
                    self.experiment, artifact_location=self.artifact_location
                )
            except MlflowException:  # created meanwhile by another process
                found = client.get_experiment_by_name(self.experiment)
                if found is None:
                    raise
        if found is not None:
            if found.lifecycle_stage != "active":
                raise RuntimeError(
                    f"the experiment {self.experiment!r} was deleted in MLflow; restore it "
                    "(mlflow experiments restore) or set track.experiment to another name"
                )
            self.experiment_id = found.experiment_id
        self.client = client

    def start(
        self, key: str, name: str, params: dict[str, Any], tags: dict[str, str], parent: str | None = None
    ) -> None:
        """Create the run ``key`` (nested under the run of key ``parent`` when given) with its params."""
        from mlflow.entities import Param

        if self.client is None:
            self.connect()
        if parent is not None:
            tags = tags | {PARENT_TAG: self.runs[parent]}
        run = self.client.create_run(self.experiment_id, tags=tags, run_name=name)
        self.runs[key] = run.info.run_id
        items = [Param(clean_key(k), str(v)[:_MAX_VALUE]) for k, v in params.items()]
        for i in range(0, len(items), _PARAMS_PER_BATCH):
            self.client.log_batch(run.info.run_id, params=items[i : i + _PARAMS_PER_BATCH])

    def metrics(self, key: str, values: dict[str, float], step: int | None = None) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(clean_key(k), float(v), now, step or 0) for k, v in values.items()]
        for i in range(0, len(items), _METRICS_PER_BATCH):
            self.client.log_batch(self.runs[key], metrics=items[i : i + _METRICS_PER_BATCH])

    def tags(self, key: str, tags: dict[str, str]) -> None:
        for name, value in tags.items():
            self.client.set_tag(self.runs[key], name, str(value)[:_MAX_VALUE])

    def artifacts(self, key: str, paths: dict[str, Path]) -> None:
        """Upload files and folders: ``{artifact name: local path}`` (a folder's files under its name)."""
        run_id = self.runs[key]
        for name, path in paths.items():
            if path.is_dir():
                self.client.log_artifacts(run_id, str(path), artifact_path=name)
            elif path.is_file():
                parent = str(Path(name).parent)
                self.client.log_artifact(run_id, str(path), artifact_path=None if parent == "." else parent)

    def end(self, key: str, status: str) -> None:
        """End the run: FINISHED, FAILED or KILLED."""
        if key in self.runs:
            self.client.set_terminated(self.runs[key], status=status)


class TensorBoardSink:
    """Event files in ``root`` (the run's) or ``root/<key>`` (a trial's), one writer each."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.writers: dict[str, Any] = {}

    def metrics(self, key: str, values: dict[str, float], step: int | None = None) -> None:
        writer = self.writers.get(key)
        if writer is None:
            from torch.utils.tensorboard import SummaryWriter

            writer = self.writers[key] = SummaryWriter(str(self.root / key if key else self.root))
        for name, value in values.items():
            writer.add_scalar(name, value, step)

    def close(self) -> None:
        for writer in self.writers.values():
            writer.close()
        self.writers.clear()
