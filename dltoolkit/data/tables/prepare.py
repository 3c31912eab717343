"""Table files prepared for training: in memory when they fit ``data.in_memory_mb``, else streamed.

* **in memory**: when the table's uncompressed size (Parquet metadata; CSV: bytes on disk) is at
  most ``data.in_memory_mb``, the files are read into one frame and prepared as any table;
* **streamed**: otherwise only the target column is read at once (the split needs it: the same
  rows as in memory, drawn by row position); the preprocessing is fitted on the training rows in
  a streaming pass (:mod:`~dltoolkit.data.tables.fit`), and ``X_train``, ``X_val`` and ``X_test``
  are :class:`~dltoolkit.data.tables.stream.TableRows` read in DataLoader worker processes.

Example:
    >>> data = prepare_table_files(spec)   # doctest: +SKIP
    >>> type(data.X_train).__name__        # doctest: +SKIP
    'TableRows'
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from dltoolkit.data.load import feature_names
from dltoolkit.data.tables.fit import fit_streaming
from dltoolkit.data.tables.source import TableFiles
from dltoolkit.data.tables.stream import TableRows
from dltoolkit.data.target import TargetEncoder, check_target
from dltoolkit.spec import Spec

EXAMPLE_TEST_ROWS = 1000  # raw test rows a streamed table keeps (bundle examples, evaluation panel)


def open_table(spec: Spec) -> tuple[TableFiles, list[str]]:
    """The checked files of the spec's source and the feature columns the spec chooses."""
    files = TableFiles.open(spec.data.source)
    files.require([spec.task.target], "Target column")
    return files, feature_names(files.columns, spec)


def fits_in_memory(spec: Spec, files: TableFiles) -> bool:
    return files.nbytes <= spec.data.in_memory_mb * 2**20


def prepare_table_files(spec: Spec):
    """The :class:`~dltoolkit.data.prepare.Prepared` data of table files (see the module's doc)."""
    from dltoolkit.data.prepare import prepare_frame

    files, features = open_table(spec)
    if fits_in_memory(spec, files):
        return prepare_frame(spec, files.read([*features, spec.task.target]))
    from dltoolkit.data.prepare import Prepared, check_class_names, split_positions

    y = check_target(files.read([spec.task.target])[spec.task.target], spec.task)
    train, val, test = split_positions(spec, y)
    target = TargetEncoder(spec.task.kind, spec.preprocess.target_scale).fit(y.iloc[train])
    check_class_names(spec, target)
    pre = fit_streaming(spec, files, features, train)
    encoded = {role: torch.from_numpy(target.transform(y.iloc[rows])) for role, rows in
               (("train", train), ("val", val), ("test", test))}  # fmt: skip
    splits = {
        role: TableRows(files, pre.feature_columns_, rows, encoded[role], pre)
        for role, rows in (("train", train), ("val", val), ("test", test))
    }
    raw_test = _raw_rows(files, pre.feature_columns_, test[:EXAMPLE_TEST_ROWS])
    return Prepared.of(spec, splits, encoded, raw_test, y.iloc[test].to_numpy(), pre, target)


def preview(spec: Spec, rows: int = 10_000) -> pd.DataFrame:
    """The features and target of a table source: all of it when it fits in memory, else its first rows."""
    files, features = open_table(spec)
    columns = [*features, spec.task.target]
    if fits_in_memory(spec, files):
        return files.read(columns)
    frames, held = [], 0
    for _, frame in files.batches(columns):
        frames.append(frame)
        held += len(frame)
        if held >= rows:
            break
    return pd.concat(frames, ignore_index=True).head(rows)


def _raw_rows(files: TableFiles, columns: list[str], rows: np.ndarray) -> pd.DataFrame:
    from dltoolkit.data.tables.fit import train_frames

    frames = list(train_frames(files, columns, np.sort(rows)))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)
