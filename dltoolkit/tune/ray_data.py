"""Streamed splits read with Ray Data on a cluster and sharded to the workers of a data-parallel run.

A streamed split (a :class:`~dltoolkit.data.tables.stream.TableRows` of a Parquet/CSV table, or
the :class:`~dltoolkit.data.images.stream.ImageFiles` of an image source) becomes a Ray Data
dataset by :func:`split_dataset`: its blocks are *read units* (one Parquet row group or CSV file
holding rows of the split; a run of :data:`IMAGES_PER_UNIT` image files), and a ``map_batches``
step reads and transforms each unit in a Ray task on a node of the cluster, with the
preprocessing fitted on the driver's streaming pass (and a training split's per-image
augmentation). The dataset's rows are exactly the split's rows: columns ``x`` (the model input),
``y`` (the encoded target) and ``index`` (the row's position in the split). The driver builds the
list of units only; it never reads the split.

Ray Train splits the training dataset into one equal shard per worker (``streaming_split(...,
equal=True)``: when the rows do not divide by the workers, the last few are left out, as the
in-memory path leaves them out). On a worker, :class:`ShardBatches` iterates its shard as
``(x, y)`` torch batches, the iterable Lightning gets as its DataLoader, and counts the rows of
its first pass and their :func:`index_digest`. Every worker validates on the whole validation split,
read from its files in the worker's own process (:func:`in_process_batches`), as one machine reads it.

Every node reads the files at the paths the driver found them at: the files must be on storage
that each node mounts at the same path (a shared or network file system), as for any Ray Data
read of local paths.

Example:
    >>> ds = split_dataset(prepared.X_train, seed=0)                       # doctest: +SKIP
    >>> ds.count() == len(prepared.X_train)                                # doctest: +SKIP
    True
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from dltoolkit.errors import DataError, message

IMAGES_PER_UNIT = 64  # image files one Ray Data task decodes


def supported(split: Any) -> bool:
    """True for a split :func:`split_dataset` turns into a Ray Data dataset."""
    from dltoolkit.data.images.stream import ImageFiles
    from dltoolkit.data.tables.stream import TableRows

    return isinstance(split, TableRows) or (
        isinstance(split, ImageFiles) and split.stage == "model" and split.targets is not None
    )


def read_units(split: Any) -> list[dict[str, int]]:
    """The split's read units, in the split's order: ``unit`` (table files: the file unit, -1 for
    images) and the positions ``[a, b)`` of its rows in the split."""
    from dltoolkit.data.tables.stream import TableRows

    if isinstance(split, TableRows):
        return [{"unit": u, "a": a, "b": b} for u, a, b in split.plan]
    n = len(split)
    return [{"unit": -1, "a": a, "b": min(a + IMAGES_PER_UNIT, n)} for a in range(0, n, IMAGES_PER_UNIT)]


def split_dataset(split: Any, *, seed: int | None = None, concurrency: int = 2):
    """A Ray Data dataset of the rows of ``split`` (columns ``x``, ``y``, ``index``), read lazily.

    Args:
        split: a streamed split (see :func:`supported`).
        seed: shuffle the order of the read units once with this seed (training); None keeps the
            split's order.
        concurrency: the most read tasks at once.

    The read tasks ask for no CPU: Ray Train's workers may hold every CPU of a small cluster, and a
    task asking for one would then wait forever; ``concurrency`` bounds them instead.

    Raises:
        DataError: ``split`` is not a streamed table or image split.
    """
    import ray.data

    if not supported(split):
        raise DataError(
            message(
                "This split cannot be read with Ray Data",
                type(split).__name__,
                "a streamed table (TableRows) or streamed image files with targets (ImageFiles)",
                "Prepare the data with dltoolkit.api.check(spec) and pass its X_train or X_val.",
            )
        )
    units = read_units(split)
    if seed is not None:
        order = np.random.default_rng(seed).permutation(len(units))
        units = [units[i] for i in order]
    items = ray.data.from_items(units, override_num_blocks=max(1, len(units)))
    return items.map_batches(
        functools.partial(_read, split),
        batch_size=1,
        batch_format="numpy",
        num_cpus=0,
        compute=ray.data.TaskPoolStrategy(size=max(1, min(concurrency, len(units)))),
    )


def _read(split: Any, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The transformed rows of the units of ``batch`` (runs in a Ray Data task)."""
    from dltoolkit.data.tables.stream import TableRows

    xs, ys, ids = [], [], []
    for unit, a, b in zip(batch["unit"].tolist(), batch["a"].tolist(), batch["b"].tolist(), strict=True):
        if isinstance(split, TableRows):
            x, y, index = split.read(unit, a, b)
        else:
            pairs = [split[i] for i in range(a, b)]
            x = torch.stack([p[0] for p in pairs])
            y = split.targets[a:b]
            index = np.arange(a, b)
        xs.append(x.numpy())
        ys.append(y.numpy())
        ids.append(index)
    return {"x": np.concatenate(xs), "y": np.concatenate(ys), "index": np.concatenate(ids).astype(np.int64)}


def in_process_batches(split: Any, batch_size: int) -> Any:
    """The ``(x, y)`` batches of a whole streamed split read in this process (a worker's validation)."""
    from dltoolkit.data.images.stream import loader
    from dltoolkit.data.tables.stream import TableRows

    if isinstance(split, TableRows):
        return split.loader(batch_size, workers=0)
    return loader(split, batch_size, workers=0)


def shard_rows(rows: int, world: int) -> int:
    """Rows per worker of an equal split of ``rows`` over ``world`` workers."""
    return rows // world


def index_digest(index: np.ndarray) -> str:
    """An order-free digest of a set of row positions: the sum (mod 2**64) of a 64-bit mix of each.

    The digests of disjoint sets add up (mod 2**64, :func:`add_digests`) to the digest of their union,
    so the shards of a split can be checked against the split without listing their rows.
    """
    z = np.asarray(index, dtype=np.uint64) + np.uint64(0x9E3779B97F4A7C15)  # splitmix64's finaliser
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    return f"{int(z.sum(dtype=np.uint64)):016x}"


def add_digests(*digests: str) -> str:
    """The :func:`index_digest` of the union of disjoint sets, from theirs."""
    return f"{sum(int(d, 16) for d in digests) % 2**64:016x}"


class ShardBatches:
    """A Ray Train worker's shard of a split as ``(x, y)`` torch batches, once per pass.

    Args:
        shard: the worker's ``ray.train.get_dataset_shard(name)``.
        batch_size: rows per batch (the last one may be smaller).
        rows: the rows of the shard (for ``len()``: Lightning's batches per epoch).
        shuffle_seed: shuffle within a buffer of rows, seeded by this and the pass; None keeps the order.

    ``rows_seen`` and ``digest`` describe the first pass: its row count and the
    :func:`index_digest` of its rows' positions in the split.
    """

    def __init__(self, shard: Any, batch_size: int, rows: int, shuffle_seed: int | None = None) -> None:
        self.shard, self.batch_size, self.rows, self.shuffle_seed = shard, batch_size, rows, shuffle_seed
        self.passes = 0
        self.rows_seen = 0
        self.digest = index_digest(np.zeros(0, dtype=np.int64))

    def __len__(self) -> int:
        return math.ceil(self.rows / self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        shuffle: dict[str, int] = {}
        if self.shuffle_seed is not None:
            shuffle = {
                "local_shuffle_buffer_size": max(4 * self.batch_size, 1024),
                "local_shuffle_seed": self.shuffle_seed * 100_003 + self.passes,
            }
        first, self.passes = self.passes == 0, self.passes + 1
        for batch in self._dataset().iter_torch_batches(batch_size=self.batch_size, device="cpu", **shuffle):
            if first:  # counted as it goes: a consumer may stop at len() batches without exhausting this
                index = batch["index"].numpy()
                self.rows_seen += len(index)
                self.digest = add_digests(self.digest, index_digest(index))
            yield batch["x"], batch["y"]

    def _dataset(self) -> Any:
        """What this pass iterates (``passes`` already counts it)."""
        return self.shard


class SplitBatches(ShardBatches):
    """A whole streamed split read with Ray Data, as ``(x, y)`` torch batches: a sweep trial's
    training rows.

    Each pass reads a fresh :func:`split_dataset` whose read units are shuffled with ``seed`` and the
    pass (every epoch its own unit order), and shuffles rows within a buffer as :class:`ShardBatches`
    does. The reading and transforming run in Ray Data tasks wherever the cluster has room, the
    trial's process only trains; ``rows_seen`` and ``digest`` describe the first pass.
    """

    def __init__(self, split: Any, batch_size: int, seed: int, concurrency: int = 2) -> None:
        super().__init__(None, batch_size, len(split), shuffle_seed=seed)
        self.split, self.seed, self.concurrency = split, seed, concurrency
        _quiet_data()

    def _dataset(self) -> Any:
        return split_dataset(self.split, seed=self.seed * 1_000 + self.passes, concurrency=self.concurrency)


def trial_batches(spec: Any, data: Any) -> tuple[SplitBatches, Any]:
    """A sweep trial's training batches read with Ray Data and its validation batches, read from the
    files in the trial's own process (a Ray Data execution per epoch costs more than reading them).

    Raises:
        DataError: the training split is not a streamed table or streamed image files.
    """
    check_trial_data(data)
    size = spec.train.batch_size
    return SplitBatches(data.X_train, size, seed=spec.train.seed), in_process_batches(data.X_val, size)


def check_trial_data(data: Any) -> None:
    """A clear :class:`DataError` unless sweep trials can read ``data``'s training split with Ray Data."""
    if not supported(data.X_train):
        raise DataError(
            message(
                "search.read_with: ray_data needs a streamed source",
                type(data.X_train).__name__,
                "table files or image files larger than data.in_memory_mb (or in_memory_mb: 0)",
                "Set search.read_with: auto (in-memory data reach every trial through the object store).",
            )
        )


def read_facts(batches: ShardBatches) -> dict[str, Any]:
    """What a trial reports of its first pass over Ray Data: rows and their :func:`index_digest`."""
    return {"read_with": "ray_data", "read_rows": batches.rows_seen, "read_digest": batches.digest}


def _quiet_data() -> None:
    """No Ray Data progress bars or execution plans in this process's output (a trial's lines reach
    the driver's console and a notebook cell), unless dltoolkit is verbose."""
    import logging

    import ray.data

    from dltoolkit._quiet import verbose

    if verbose():
        return
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)
