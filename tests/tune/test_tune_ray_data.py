"""Streamed splits as Ray Data datasets: the same rows, inputs and targets as the single-machine
streamed path reads, for a Parquet table and an image folder; the shard digests; a sweep's trials
reading their training rows with Ray Data (``search.read_with``) and when they do; bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from _streamed import image_spec, parquet_spec, write_parquet_table

from dltoolkit.api import check, resolve_spec
from dltoolkit.data.images.samples import write_image_folder
from dltoolkit.errors import DataError, SpecError
from dltoolkit.spec import Spec
from dltoolkit.tune import sweep
from dltoolkit.tune.engines import choose_engine
from dltoolkit.tune.launch import reads_with_ray_data
from dltoolkit.tune.ray_data import SplitBatches, add_digests, index_digest, split_dataset
from dltoolkit.tune.sweep import plan_for


def _read_all(ds) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """x, y, index of every row of ``ds``, sorted by index."""
    parts = list(ds.iter_batches(batch_size=None, batch_format="numpy"))
    x = np.concatenate([p["x"] for p in parts])
    y = np.concatenate([p["y"] for p in parts])
    index = np.concatenate([p["index"] for p in parts])
    order = np.argsort(index, kind="stable")
    return x[order], y[order], index[order]


def test_a_streamed_tables_training_rows_read_with_ray_data_are_the_ones_read_locally(ray_session, tmp_path):
    checked = check(parquet_spec(write_parquet_table(tmp_path / "table")))
    split = checked.data.X_train
    assert type(split).__name__ == "TableRows" and len(split.plan) > 2  # streamed, several row groups
    x, y, index = _read_all(split_dataset(split, seed=3))
    pairs = list(split)  # the single-machine streamed path's rows, in the split's order
    local_x = torch.stack([p[0] for p in pairs]).numpy()
    local_y = torch.stack([p[1] for p in pairs]).numpy()
    assert np.array_equal(index, np.arange(len(split)))  # every training row once
    assert x.shape == local_x.shape and np.array_equal(x, local_x)
    assert np.array_equal(y, local_y) and np.array_equal(y, checked.data.y_train.numpy())
    assert x[:, 0].sum() == pytest.approx(local_x[:, 0].sum())


def test_a_streamed_image_split_read_with_ray_data_gives_the_single_machine_inputs(ray_session, tmp_path):
    folder = write_image_folder(tmp_path / "shapes", "shapes", size=16, per_class=6)
    checked = check(image_spec(folder))
    split = checked.data.X_val  # no augmentation: the inputs are deterministic
    assert type(split).__name__ == "ImageFiles" and len(split) > 0
    x, y, index = _read_all(split_dataset(split))
    assert np.array_equal(index, np.arange(len(split)))
    assert np.array_equal(x, torch.stack([split[i][0] for i in range(len(split))]).numpy())
    assert np.array_equal(y, checked.data.y_val.numpy())


def test_shard_digests_add_up_to_the_splits_digest_only_for_disjoint_covering_shards():
    rows = np.arange(1001)
    whole = index_digest(rows)
    assert add_digests(index_digest(rows[::2]), index_digest(rows[1::2])) == whole
    assert index_digest(rows[::-1]) == whole  # the order does not matter
    assert add_digests(index_digest(rows[:600]), index_digest(rows[500:])) != whole  # overlap
    assert add_digests(index_digest(rows[:500]), index_digest(rows[501:])) != whole  # a row missing


def test_an_in_memory_split_is_not_a_ray_data_source():
    with pytest.raises(
        DataError, match=r"cannot be read with Ray Data.*Tensor.*streamed table \(TableRows\)"
    ):
        split_dataset(torch.zeros(4, 2))


def test_a_whole_split_read_with_ray_data_gives_every_row_once_per_pass_in_a_new_order(ray_session, tmp_path):
    data = check(parquet_spec(write_parquet_table(tmp_path / "table"))).data
    split = data.X_train
    batches = SplitBatches(split, batch_size=100, seed=0)
    assert len(batches) == -(-len(split) // 100)
    first, second = (torch.cat([y for _, y in batches]) for _ in range(2))
    assert batches.rows_seen == len(split) and batches.digest == index_digest(np.arange(len(split)))
    targets = sorted(data.y_train.tolist())
    assert sorted(first.tolist()) == targets == sorted(second.tolist())  # every row once per pass
    assert not torch.equal(first, second)  # each pass its own order (units and rows shuffled)


def _sweep_spec(spec: Spec, **search) -> Spec:
    space = {"train.optimizer.lr": {"loguniform": [1e-3, 1e-1]}}
    fields = {"search.space": space, "search.samples": 1, "search.grace_period": 1, "search.engine": "ray"}
    return spec.with_values(fields | search)


def test_a_ray_sweep_asked_to_read_with_ray_data_trains_each_trial_on_every_training_row(
    ray_session, tmp_path
):
    spec = _sweep_spec(
        parquet_spec(write_parquet_table(tmp_path / "table")), **{"search.read_with": "ray_data"}
    )
    rows = len(check(spec).data.X_train)
    result = sweep(spec, out=tmp_path / "out", overrides={"train.epochs": 2})
    assert list(result.trials()["status"]) == ["TERMINATED"]
    reports = [
        json.loads(line)
        for p in (tmp_path / "out").rglob("result.json")
        for line in p.read_text().splitlines()
    ]
    assert [r["epoch"] for r in reports] == [1, 2]
    first = reports[0]
    assert (first["read_with"], first["read_rows"]) == ("ray_data", rows)
    assert first["read_digest"] == index_digest(np.arange(rows))  # the whole training split, each row once


def test_trials_read_with_ray_data_on_a_cluster_and_from_files_on_a_local_ray(tmp_path):
    streamed = check(parquet_spec(write_parquet_table(tmp_path / "table"))).data
    in_memory = check(resolve_spec("wine")).data
    plan = plan_for(_sweep_spec(parquet_spec(tmp_path / "table")))
    assert reads_with_ray_data(plan, streamed, "127.0.0.1:6379")  # auto, a cluster, a streamed source
    assert not reads_with_ray_data(plan, streamed, None)  # auto, a local Ray: the trials read the files
    assert not reads_with_ray_data(plan, in_memory, "127.0.0.1:6379")  # tensors go by the object store
    plan.read_with = "files"
    assert not reads_with_ray_data(plan, streamed, "127.0.0.1:6379")
    plan.read_with = "ray_data"
    assert reads_with_ray_data(plan, streamed, None)


def test_reading_with_ray_data_needs_ray_and_a_streamed_source(tmp_path):
    plan = plan_for(_sweep_spec(parquet_spec(tmp_path / "t"), **{"search.read_with": "ray_data"}))
    assert choose_engine(plan, "auto").name == "ray"
    with pytest.raises(SpecError, match="local engine cannot run search.read_with"):
        choose_engine(plan, "local")
    wine = resolve_spec("wine")
    with pytest.raises(DataError, match=r"read_with: ray_data needs a streamed source.*Tensor"):
        sweep(_sweep_spec(wine, **{"search.read_with": "ray_data"}), out=tmp_path / "out")
    assert not (tmp_path / "out").exists()  # refused before anything was written
