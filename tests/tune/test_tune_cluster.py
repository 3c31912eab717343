"""A real two-node Ray cluster on loopback (``ray start --head`` + ``ray start --address``, token
auth): a sweep by address runs trials on both nodes (from in-memory tensors, and from a Parquet
table and an image folder whose training rows each trial reads with Ray Data), data-parallel
training uses both nodes (from in-memory tensors, and from a Parquet table and an image folder read
with Ray Data), and stopping the cluster by PID leaves none of its processes.

The two nodes are this machine twice, told apart by node id and by their custom resources
(``head_node`` / ``worker_node``); each has one CPU, so two concurrent one-CPU trials or two
one-CPU Ray Train workers can only fit by using both.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _cluster import LoopbackCluster, start_cluster, wait_for
from _streamed import image_spec, parquet_spec, write_parquet_table

import dltoolkit.bundle
from dltoolkit.api import check, resolve_spec
from dltoolkit.data.images.samples import write_image_folder
from dltoolkit.spec import Spec
from dltoolkit.tune import sweep
from dltoolkit.tune.distributed import run_distributed
from dltoolkit.tune.ray_data import add_digests, index_digest


def _reset_auth() -> None:
    # The token loader caches the mode and token per process; a driver that already ran a local
    # Ray (or imported Ray before the variables were set) must reload them.
    from ray._private.authentication_test_utils import reset_auth_token_state

    reset_auth_token_state()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """The cluster, its two node ids, and this driver set up for token auth (restored after)."""
    import ray

    ray.shutdown()  # the driver must not hold a local Ray (e.g. another test's session Ray)
    started = start_cluster(tmp_path_factory.mktemp("cluster"))
    saved = {k: os.environ.get(k) for k in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_ADDRESS")}
    try:
        os.environ.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=started.env["RAY_AUTH_TOKEN"])
        os.environ.pop("RAY_ADDRESS", None)
        _reset_auth()
        started.node_ids = _two_node_ids(started)
        yield started
    finally:
        ray.shutdown()
        started.stop()
        for key, value in saved.items():
            os.environ.pop(key, None) if value is None else os.environ.__setitem__(key, value)
        _reset_auth()


def _two_node_ids(cluster: LoopbackCluster) -> dict[str, str]:
    """Wait (bounded) until both nodes are alive; their ids by custom resource."""
    import ray

    ray.init(address=cluster.address, log_to_driver=False)
    try:
        alive = lambda: [n for n in ray.nodes() if n["Alive"]]  # noqa: E731

        def joined() -> bool:
            cluster.restart_failed()  # a node that timed out while starting (a busy machine)
            return len(alive()) == 2

        wait_for(joined, 240, "both nodes to join", interval=1.0)
        ids = {}
        for node in alive():
            role = "head_node" if "head_node" in node["Resources"] else "worker_node"
            ids[role] = node["NodeID"]
        return ids
    finally:
        ray.shutdown()


def _trial_pids(folder: Path) -> dict[str, int]:
    """trial id -> the pid of the process that ran it, from Tune's result.json files."""
    pids = {}
    for path in folder.rglob("result.json"):
        for line in path.read_text().splitlines():
            if line.strip():
                row = json.loads(line)
                pids[row["trial_id"]] = row["pid"]
    return pids


def _actor_nodes() -> dict[int, str]:
    """pid -> node id of every actor the cluster has run (dead ones too), from the GCS."""
    import ray

    table = ray._private.state.state.actor_table(None)
    return {a["Pid"]: a["Address"]["NodeID"] for a in table.values() if a.get("Pid")}


def test_a_sweep_by_address_runs_trials_on_both_nodes(cluster, make_spec, tmp_path):
    import ray

    assert not ray.is_initialized()
    # Tune reuses a finished trial's actor for a pending trial and drops an actor that came up
    # too late, so the trials must outlast the few seconds by which one node's actor can start
    # after the other's: 2 trials of 80 epochs of 1-row batches, about 15 s each here.
    spec = make_spec(train={"epochs": 80, "batch_size": 1})
    # and with actor reuse off, each trial has its own worker: one per node (1 CPU each)
    result = sweep(
        spec,
        samples=2,
        max_concurrent=2,
        address=cluster.address,
        out=tmp_path,
        overrides={"search.reuse_actors": False},
    )
    table = result.trials()
    assert len(table) == 2 and set(table["status"]) == {"TERMINATED"}
    assert dltoolkit.bundle.load(result.best_bundle).predict([[5.1, 3.5, 1.4, 0.2]]).shape == (1,)
    pids = _trial_pids(tmp_path)
    assert sorted(pids) == sorted(table["trial_id"])
    if not ray.is_initialized():  # the sweep may have let go of its connection
        ray.init(address=cluster.address, log_to_driver=False)
    try:
        assert ray.get_runtime_context().gcs_address.endswith(f":{cluster.port}")
        nodes = _actor_nodes()
    finally:
        ray.shutdown()
    assert {nodes[pid] for pid in pids.values()} == set(cluster.node_ids.values()), (pids, nodes)


@pytest.mark.parametrize("source", ["parquet", "image_folder"])
def test_a_sweep_by_address_reads_a_streamed_source_with_ray_data_in_trials_on_both_nodes(
    cluster, tmp_path, source
):
    import ray

    spec, _ = _streamed_source(tmp_path, source)
    spec = spec.with_values(
        {"search.space": {"train.optimizer.lr": {"loguniform": [1e-3, 1e-1]}}, "search.grace_period": 1}
    )
    rows = len(check(spec).data.X_train)
    # search.read_with auto: on a cluster by address, trials read streamed sources with Ray Data
    result = sweep(
        spec,
        samples=2,
        max_concurrent=2,
        address=cluster.address,
        out=tmp_path / "out",
        overrides={"search.reuse_actors": False, "train.epochs": 2},
    )
    table = result.trials()
    assert len(table) == 2 and set(table["status"]) == {"TERMINATED"}
    firsts = {}
    for path in (tmp_path / "out").rglob("result.json"):
        reports = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        assert [r["epoch"] for r in reports] == [1, 2]
        firsts[reports[0]["trial_id"]] = reports[0]
    assert sorted(firsts) == sorted(table["trial_id"])
    whole = index_digest(np.arange(rows))
    for first in firsts.values():  # each trial trained on every training row once, read by Ray Data
        assert (first["read_with"], first["read_rows"], first["read_digest"]) == ("ray_data", rows, whole)
    assert dltoolkit.bundle.load(result.best_bundle) is not None
    if not ray.is_initialized():
        ray.init(address=cluster.address, log_to_driver=False)
    try:
        nodes = _actor_nodes()
    finally:
        ray.shutdown()
    assert {nodes[r["pid"]] for r in firsts.values()} == set(cluster.node_ids.values())


def test_data_parallel_training_uses_both_nodes(cluster, tmp_path):
    spec = resolve_spec("wine", {"train.epochs": 2})
    result = run_distributed(spec, out=tmp_path, address=cluster.address, workers=2, plots=False)
    assert {w["node_id"] for w in result.workers} == set(cluster.node_ids.values())
    assert len({w["shard"] for w in result.workers}) == 2  # each rank its own rows
    assert len({w["params"] for w in result.workers}) == 1  # gradients averaged: same weights
    model = dltoolkit.bundle.load(tmp_path / "model")
    assert model.predict(model.example_input(2)).shape == (2,)
    assert json.loads((tmp_path / "model" / "bundle.json").read_text())["workers"] == 2


def _check_streamed_shards(result, cluster: LoopbackCluster, train_rows: int) -> None:
    """Two workers, one per node, each trained on half the training rows read with Ray Data: the
    shards are disjoint and cover the split (their digests add up to the split's)."""
    assert train_rows % 2 == 0, "the test data should give an even training split (no row left out)"
    workers = result.workers
    assert {w["node_id"] for w in workers} == set(cluster.node_ids.values())
    assert all(w["streamed"] for w in workers)
    assert [w["rows"] for w in workers] == [train_rows // 2, train_rows // 2]
    assert add_digests(*(w["shard"] for w in workers)) == index_digest(np.arange(train_rows))
    assert len({w["params"] for w in workers}) == 1  # gradients averaged: same weights


@pytest.mark.parametrize("source", ["parquet", "image_folder"])
def test_data_parallel_training_reads_a_streamed_source_with_ray_data(cluster, tmp_path, source):
    spec, inputs = _streamed_source(tmp_path, source)
    train_rows = len(check(spec).data.X_train)
    result = run_distributed(spec, out=tmp_path / "out", address=cluster.address, workers=2, plots=False)
    _check_streamed_shards(result, cluster, train_rows)
    assert 0.0 <= result.metrics["accuracy"] <= 1.0
    assert "accuracy" in json.loads((tmp_path / "out" / "metrics.json").read_text())
    model = dltoolkit.bundle.load(tmp_path / "out" / "model")
    assert {str(v) for v in model.predict(inputs).tolist()} <= {str(c) for c in check(spec).data.classes}


def _streamed_source(tmp_path: Path, source: str) -> tuple[Spec, object]:
    """A streamed Parquet table or image folder, its spec and a few inputs to predict."""
    if source == "parquet":
        folder = write_parquet_table(tmp_path / "table")
        frame = pd.read_parquet(folder / "part-0.parquet").head(5)
        return parquet_spec(folder), frame.drop(columns="target")
    folder = write_image_folder(tmp_path / "shapes", "shapes", size=16, per_class=20)
    files = sorted(str(f) for f in folder.rglob("*.png"))[:3]
    return image_spec(
        folder, augment={"rotation": 10}
    ), files  # a per-image augmentation, in Ray Data's tasks


def test_stopping_the_cluster_by_pid_leaves_no_process(cluster):
    assert cluster.pids(), "the cluster should be running before it is stopped"
    assert cluster.stop() == set()
