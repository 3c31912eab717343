"""The rows of a split read and transformed in ``DataLoader`` worker processes, one unit at a time.

A :class:`TableRows` is one split of a streamed table: the table's files, the split's row
positions (sorted) and their encoded targets, and the fitted preprocessing. Its
:meth:`~TableRows.loader` shards the read units (Parquet row groups, CSV files) over the worker
processes: each worker reads its units, keeps the split's rows, transforms them and yields
batches, so memory holds about one unit per worker and the batches in flight, whatever the
table's size. Training shuffles the order of the units and the rows within each unit, seeded by
``train.seed`` and the epoch (a shuffle local to the units, as streaming loaders do).

Example:
    >>> rows = TableRows(files, features, test_positions, y_test, preprocessor)   # doctest: +SKIP
    >>> x, y = next(iter(rows.loader(256, workers=2)))                           # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from dltoolkit.data.preprocess import Preprocessor
from dltoolkit.data.tables.source import TableFiles


class TableRows(IterableDataset):
    """One split of a streamed table: ``len()`` rows, iterated as ``(x, y)`` pairs or in batches.

    Args:
        files: The table's files.
        columns: The raw feature columns the preprocessor reads.
        rows: Sorted positions of the split's rows in the whole table.
        targets: The encoded target of each row of ``rows`` (same order).
        preprocessor: Fitted on the training rows.
    """

    def __init__(
        self,
        files: TableFiles,
        columns: list[str],
        rows: np.ndarray,
        targets: torch.Tensor,
        preprocessor: Preprocessor,
    ) -> None:
        self.files, self.columns, self.preprocessor = files, list(columns), preprocessor
        self.rows, self.targets = np.asarray(rows, dtype=np.int64), targets
        bounds = np.searchsorted(self.rows, files.offsets)
        # (unit, first and end index into rows) for every unit holding rows of this split
        self.plan = [(u, int(bounds[u]), int(bounds[u + 1])) for u in range(len(files.units))
                     if bounds[u + 1] > bounds[u]]  # fmt: skip

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for x, y, _ in _Batches(self, 1024).chunks(self.plan):
            yield from zip(x, y, strict=True)

    def read(self, unit: int, a: int, b: int) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
        """The transformed rows ``rows[a:b]`` (all in ``unit``), their targets and their indices."""
        lo = self.files.offsets[unit]
        frame = self.files.read_unit(unit, self.columns).iloc[self.rows[a:b] - lo]
        x = torch.from_numpy(self.preprocessor.transform(frame))
        return x, self.targets[a:b], np.arange(a, b)

    def loader(
        self,
        batch_size: int,
        *,
        workers: int | None = None,
        shuffle: bool = False,
        seed: int = 0,
        persistent: bool = False,
        indices: bool = False,
    ) -> DataLoader:
        """A DataLoader of ``(x, y)`` batches (``(x, index)`` with ``indices``) read in worker processes.

        ``workers`` as ``data.workers`` (default: :func:`~dltoolkit.data.images.stream.worker_count`);
        never more than the units to share. Without ``shuffle`` the rows come in the split's order
        within each worker's units; ``indices`` gives each row's index in the split to put them back.
        """
        from dltoolkit.data.images.stream import worker_count

        n = min(worker_count(workers), len(self.plan))
        batches = _Batches(self, batch_size, shuffle, seed, max(1, n), indices)
        return DataLoader(batches, batch_size=None, num_workers=n, persistent_workers=persistent and n > 0)


class _Batches(IterableDataset):
    """The batches of a :class:`TableRows`; each worker reads every ``workers``-th unit of the plan."""

    def __init__(self, rows: TableRows, size: int, shuffle: bool = False, seed: int = 0, workers: int = 1,
                 indices: bool = False) -> None:  # fmt: skip
        self.rows, self.size, self.shuffle, self.seed = rows, size, shuffle, seed
        self.workers, self.indices, self.epoch = workers, indices, 0

    def _share(self, worker: int) -> list[tuple[int, int, int]]:
        return self.rows.plan[worker :: self.workers]

    def __len__(self) -> int:
        """The exact number of batches an epoch yields over all workers."""
        return sum(
            math.ceil(sum(b - a for _, a, b in self._share(w)) / self.size) for w in range(self.workers)
        )

    def __iter__(self) -> Iterator[tuple[torch.Tensor, Any]]:
        info = get_worker_info()
        worker = info.id if info is not None else 0
        share = self._share(worker)
        rng = None
        if self.shuffle:
            rng = np.random.default_rng([self.seed, self.epoch, worker])
            share = [share[i] for i in rng.permutation(len(share))]
        self.epoch += 1  # each worker keeps its own copy: persistent workers count their epochs
        for x, y, index in self.chunks(share, rng):
            yield x, (torch.from_numpy(index) if self.indices else y)

    def chunks(self, share: list, rng: np.random.Generator | None = None) -> Iterator[tuple]:
        """Batches of ``size`` rows over the units of ``share``, carrying the rest to the next unit."""
        held: list[tuple[torch.Tensor, torch.Tensor, np.ndarray]] = []
        count = 0
        for unit, a, b in share:
            x, y, index = self.rows.read(unit, a, b)
            if rng is not None:
                order = torch.from_numpy(rng.permutation(len(x)))
                x, y, index = x[order], y[order], index[order.numpy()]
            held.append((x, y, index))
            count += len(x)
            while count >= self.size:
                x, y, index = _join(held)
                yield x[: self.size], y[: self.size], index[: self.size]
                held = [(x[self.size :], y[self.size :], index[self.size :])]
                count -= self.size
        if count:
            yield _join(held)


def _join(held: list) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    if len(held) == 1:
        return held[0]
    xs, ys, ids = zip(*held, strict=True)
    return torch.cat(xs), torch.cat(ys), np.concatenate(ids)


def outputs(
    model: Callable[[torch.Tensor], torch.Tensor], rows: TableRows, batch_size: int, workers: int | None
) -> torch.Tensor:
    """``model`` over every row of ``rows``, in the split's order (read in worker processes)."""
    out: torch.Tensor | None = None
    with torch.inference_mode():
        for x, index in rows.loader(batch_size, workers=workers, indices=True):
            y = model(x)
            if out is None:
                out = torch.empty((len(rows), *y.shape[1:]), dtype=y.dtype)
            out[index] = y
    return out if out is not None else torch.zeros(0)
