"""Streamed splits as Ray Data datasets: the same rows, inputs and targets as the single-machine
streamed path reads, for a Parquet table and an image folder; the shard digests; bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _streamed import image_spec, parquet_spec, write_parquet_table

from dltoolkit.api import check
from dltoolkit.data.images.samples import write_image_folder
from dltoolkit.errors import DataError
from dltoolkit.tune.ray_data import add_digests, index_digest, split_dataset


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
