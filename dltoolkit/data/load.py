"""Load the raw data an experiment names: a bundled dataset, a CSV file, a frame or arrays.

Example:
    >>> from dltoolkit.spec import Spec
    >>> spec = Spec.from_dict({"task": {"kind": "regression"}, "data": {"source": "seed_linear"},
    ...                        "graph": {"nodes": []}})
    >>> X, y = load_raw(spec)
    >>> X.shape, y.name
    ((4, 1), 'target')
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dltoolkit.data.datasets import DATASETS
from dltoolkit.errors import DataError, closest, message
from dltoolkit.spec import Spec


def load_raw(spec: Spec, data: Any = None) -> tuple[pd.DataFrame, pd.Series]:
    """Load the features (original columns) and the target column named by the spec.

    Args:
        spec: The experiment spec; ``data.source``, ``data.options``, ``data.features``,
            ``data.exclude`` and ``task.target`` are read.
        data: ``None`` to read ``spec.data.source`` (a bundled dataset name or a CSV path: one
            ending in ``.csv`` or naming an existing file); a DataFrame holding the target column
            (the source may then be ``"frame"``); or a tuple ``(X, y)`` of arrays, whose features
            are named ``x0..x{n-1}`` and whose target is named ``spec.task.target``.

    Returns:
        ``(X, y)``: X with the feature columns only, y the target as a Series.

    Raises:
        DataError: a missing file, no rows (a header only), a missing target or feature column, or a
            column in ``data.exclude`` that is not in the data (the message lists the columns that are).
        UnknownNameError: an unknown bundled dataset name (with the closest match).
    """
    frame = _frame(spec, data)
    if len(frame) == 0:
        raise DataError(
            message(
                "The data has no rows",
                f"0 rows (columns {[str(c) for c in frame.columns]})",
                "a header row and data rows",
                "Check the file or frame: only the header came through.",
            )
        )
    features = feature_names(list(frame.columns), spec)
    target = spec.task.target
    return frame[list(features)].copy(), frame[target].copy()


def feature_names(columns: list, spec: Spec) -> list:
    """The feature columns the spec chooses among ``columns`` (``data.features``, ``data.exclude``).

    Raises:
        DataError: a missing target or feature column, the target among the features, a column
            in ``data.exclude`` that is not in the data, or no feature left.
    """
    target = spec.task.target
    _require_columns(columns, [target], "Target column")
    features = spec.data.features
    if features is None:
        features = [c for c in columns if c != target]
    else:
        _require_columns(columns, features, "Feature column")
        if target in features:
            raise DataError(
                message(
                    "The target is listed among the features",
                    target,
                    "features without the target column",
                    "Remove it from data.features.",
                )
            )
    if spec.data.exclude:
        _require_columns(columns, spec.data.exclude, "Column in data.exclude")
        features = [c for c in features if c not in spec.data.exclude]
    if not features:
        raise DataError(
            message(
                "No feature columns",
                list(columns),
                f"columns besides {target!r} and data.exclude",
                "Check data.features and data.exclude.",
            )
        )
    return list(features)


def _frame(spec: Spec, data: Any) -> pd.DataFrame:
    if data is None:
        return _read_source(spec.data.source, spec.data.options)
    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, tuple) and len(data) == 2:
        return _from_arrays(data[0], data[1], spec.task.target)
    raise DataError(
        message(
            "Unsupported data", type(data).__name__, "None, a pandas DataFrame or a tuple (X, y) of arrays"
        )
    )


def _read_source(source: str, options: dict[str, Any]) -> pd.DataFrame:
    path = Path(source).expanduser()
    if source in DATASETS:
        return DATASETS.get(source)(dict(options))
    if source == "frame":
        raise DataError(
            message(
                "No data passed for source 'frame'",
                None,
                "a DataFrame or (X, y) arrays",
                "Pass the data to the call, or set data.source to a dataset or CSV path.",
            )
        )
    if source.lower().endswith(".csv") or path.is_file():
        if not path.is_file():
            raise DataError(
                message(
                    "CSV file not found",
                    str(path),
                    "an existing file",
                    f"Check the path (working directory: {Path.cwd()}).",
                )
            )
        return _read_csv(path, options)
    return DATASETS.get(source)({})  # raises UnknownNameError naming the closest dataset


def _read_csv(path: Path, options: dict[str, Any]) -> pd.DataFrame:
    try:
        return pd.read_csv(path, **options)
    except (ValueError, TypeError, OSError) as e:
        raise DataError(
            message("Could not read the CSV file", str(path), "a readable CSV file", str(e))
        ) from e


def _from_arrays(X: Any, y: Any, target: str) -> pd.DataFrame:
    X, y = np.asarray(X), np.asarray(y)
    if X.ndim == 1:
        X = X[:, None]
    if X.ndim != 2 or y.ndim != 1 or len(X) != len(y):
        raise DataError(
            message(
                "Arrays of mismatched shapes",
                (X.shape, y.shape),
                "X of shape (n, features) and y of shape (n,)",
            )
        )
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])])
    frame[target] = y
    return frame


def _require_columns(found: list, columns: list[str], what: str) -> None:
    present = [str(c) for c in found]
    for column in columns:
        if column not in found:
            hint = closest(str(column), present)
            fix = f"Did you mean {hint!r}?" if hint else "Check the spelling in the spec."
            raise DataError(message(f"{what} not in the data", column, f"one of {present}", fix))
