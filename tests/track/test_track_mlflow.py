"""Experiment tracking against a real MLflow, read back through ``MlflowClient``.

Two stores: a tracking server started here on a free loopback port (SQLite backend store, local
artifact root, ended by PID in a finalizer) and a local SQLite store without a server. On each, a
run (the wine recipe, 2 epochs) and a 2-trial sweep (local engine) must appear with their params,
per-epoch metrics (as many steps as epochs), test metrics and artifacts (the bundle's
``weights.pt`` among them), the sweep's trials nested under its run. The server starts when the
module does and boots while the local store's tests run.
"""

from __future__ import annotations

import filecmp
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest

from dltoolkit.api import run
from dltoolkit.track import TrackingWarning
from dltoolkit.tune import sweep

EPOCHS = 2
SHORT = {"train.epochs": EPOCHS, "train.early_stopping": None, "search.grace_period": 1}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MlflowServer:
    """``mlflow server`` on loopback in its own process group (no job runner: tracking only)."""

    def __init__(self, root: Path) -> None:
        self.root, self.port = root, free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.log = open(root / "server.log", "w")  # noqa: SIM115 - closed in stop()
        command = [
            str(Path(sys.executable).parent / "mlflow"),
            "server",
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--backend-store-uri", f"sqlite:///{root / 'store.db'}",
            "--artifacts-destination", str(root / "artifacts"),
            "--workers", "1",
        ]  # fmt: skip
        env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
        self.process = subprocess.Popen(
            command, stdout=self.log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )

    def wait(self, timeout: float = 240.0) -> str:
        """The URI once the server answers /health (its log in the failure otherwise)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"mlflow server exited: {(self.root / 'server.log').read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{self.uri}/health", timeout=2):
                    return self.uri
            except OSError:
                time.sleep(0.5)
        pytest.fail(f"mlflow server not up in {timeout} s: {(self.root / 'server.log').read_text()[-3000:]}")

    def stop(self) -> None:
        """End the server's process group (uvicorn and its worker) by the PID started here."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        self.log.close()


@pytest.fixture(scope="module")
def server(request, tmp_path_factory) -> MlflowServer:
    srv = MlflowServer(tmp_path_factory.mktemp("mlflow-server"))
    request.addfinalizer(srv.stop)
    return srv


@pytest.fixture(scope="module", params=["local-store", "server"])
def tracked(request, server, tmp_path_factory):
    """A tracked run and a tracked 2-trial sweep on one store, and a client on that store."""
    from mlflow import MlflowClient

    runs = tmp_path_factory.mktemp(request.param) / "runs"
    target = server.wait() if request.param == "server" else True  # true: runs/mlflow.db
    track = {"track.mlflow": target, "track.tensorboard": True}
    result = run("wine", out=runs / "wine", overrides=SHORT | track)
    swept = sweep("wine", samples=2, engine="local", out=runs / "sweep", overrides=SHORT | track)
    uri = result.tracking["mlflow_uri"]
    return {"run": result, "sweep": swept, "client": MlflowClient(uri), "uri": uri, "runs": runs}


def artifacts(client, run_id: str, path: str | None = None) -> set[str]:
    out = set()
    for item in client.list_artifacts(run_id, path):
        out |= artifacts(client, run_id, item.path) if item.is_dir else {item.path}
    return out


def test_a_run_logs_its_spec_epochs_test_metrics_and_bundle(tracked, tmp_path):
    client, result = tracked["client"], tracked["run"]
    if tracked["uri"].startswith("sqlite"):
        assert tracked["uri"] == f"sqlite:///{(tracked['runs'] / 'mlflow.db').resolve()}"
    logged = client.get_run(result.tracking["mlflow_run_id"])
    assert logged.info.status == "FINISHED" and logged.info.run_name == "wine"
    params = logged.data.params
    assert params["train.epochs"] == str(EPOCHS) and params["task.kind"] == "multiclass"
    assert params["graph.nodes.hidden.units"] == str(result.spec.get_value("graph.nodes.hidden.units"))
    assert not any(k.startswith("track.") for k in params)  # where it is tracked is no parameter
    history = pd.read_csv(result.out / "history.csv")
    assert len(history) == EPOCHS
    for name in history.columns.drop("epoch"):
        steps = client.get_metric_history(logged.info.run_id, name)
        assert [m.step for m in steps] == history["epoch"].tolist(), name
        assert [m.value for m in steps] == pytest.approx(history[name].tolist(), rel=1e-6), name
    test = json.loads((result.out / "metrics.json").read_text())
    for name in ("accuracy", "f1", "roc_auc"):
        assert logged.data.metrics[f"test_{name}"] == pytest.approx(test[name], rel=1e-6)
    files = artifacts(client, logged.info.run_id)
    assert {"spec.yaml", "metrics.json", "history.csv", "report.html", "plots/learning_curves.png"} <= files
    assert {"model/weights.pt", "model/spec.yaml", "model/bundle.json"} <= files
    weights = client.download_artifacts(logged.info.run_id, "model/weights.pt", str(tmp_path))
    assert filecmp.cmp(weights, result.out / "model" / "weights.pt", shallow=False)


def test_a_sweep_is_a_parent_run_with_its_trials_nested(tracked):
    client, swept = tracked["client"], tracked["sweep"]
    parent = client.get_run(swept.tracking["mlflow_run_id"])
    assert parent.info.status == "FINISHED" and parent.data.tags["dltoolkit.kind"] == "sweep"
    assert parent.data.params["search.samples"] == "2" and parent.data.params["sweep.engine"] == "local"
    children = client.search_runs(
        [parent.info.experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'"
    )
    table = swept.trials()
    assert sorted(c.info.run_name for c in children) == sorted(table["trial_id"])
    for child in children:
        record = next(r for r in swept.records() if r.trial_id == child.info.run_name)
        assert child.info.status == "FINISHED"
        assert child.data.params == {k: str(v) for k, v in record.config.items()}
        for name in ("val_loss", "val_acc", "train_loss"):
            steps = client.get_metric_history(child.info.run_id, name)
            assert [m.step for m in steps] == list(range(1, EPOCHS + 1))
            assert [m.value for m in steps] == pytest.approx([r[name] for r in record.rows], rel=1e-6)
    best = swept.best
    assert parent.data.tags["dltoolkit.best_trial"] == best["trial_id"]
    assert parent.data.metrics["best_score"] == pytest.approx(best["score"], rel=1e-6)
    assert parent.data.metrics["test_accuracy"] > 0
    files = artifacts(client, parent.info.run_id)
    assert {"trials.csv", "spec.yaml", "plots/curves.png", "model/weights.pt"} <= files


def test_tensorboard_gets_the_same_epochs(tracked):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    board = tracked["runs"] / "tensorboard"
    events = EventAccumulator(str(board / "wine"))
    events.Reload()
    history = pd.read_csv(tracked["run"].out / "history.csv")
    assert [e.step for e in events.Scalars("val_loss")] == history["epoch"].tolist()
    assert [e.value for e in events.Scalars("val_acc")] == pytest.approx(history["val_acc"].tolist())
    trials = sorted(p.name for p in (board / "sweep").iterdir())
    assert trials == sorted(tracked["sweep"].trials()["trial_id"])


def test_the_evaluation_panel_lists_and_adds_tracked_runs(tracked):
    from dltoolkit.widgets.evaluation import EvalController, EvalPanel

    result, swept = tracked["run"], tracked["sweep"]
    controller = EvalController()
    listed = dict((run_id, label) for label, run_id in controller.mlflow_runs(tracked["uri"]))
    assert result.tracking["mlflow_run_id"] in listed and swept.tracking["mlflow_run_id"] in listed
    assert not set(listed) & {r for r in swept.trials()["trial_id"]}  # trials have no bundle
    added = controller.add_mlflow(result.tracking["mlflow_run_id"], tracked["uri"])
    assert added.name == "wine" and len(added.history) == EPOCHS
    assert added.metrics["accuracy"] == pytest.approx(result.metrics["accuracy"])
    best = controller.add_mlflow(swept.tracking["mlflow_run_id"], tracked["uri"])
    assert best.history["epoch"].tolist() == list(range(1, EPOCHS + 1))  # the best trial's curves
    assert controller.metrics_table().shape[1] == 2
    panel = EvalPanel()
    panel.mlflow.uri.value = tracked["uri"]
    panel.mlflow.list_runs()
    panel.mlflow.runs.value = result.tracking["mlflow_run_id"]
    panel.mlflow.add()
    assert panel.controller.names() == ["wine"] and "dlt-metrics-table" in panel.metrics.value


def test_an_unreachable_server_warns_once_and_the_run_finishes(tmp_path):
    uri = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with pytest.warns(TrackingWarning, match=rf"{uri}.*cannot be used.*Connection.*mlflow server") as caught:
        result = run("wine", out=tmp_path / "wine", overrides={"train.epochs": 1, "track.mlflow": uri})
    assert len([w for w in caught if issubclass(w.category, TrackingWarning)]) == 1
    assert result.tracking == {} and (result.out / "model" / "weights.pt").is_file()
    assert len(result.history) == 1
