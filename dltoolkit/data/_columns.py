"""Which raw columns are numeric, categorical or dates; strict numeric parsing; column warnings.

A column is categorical when declared so (``data.categorical`` or ``preprocess.columns.<c>.categorical``)
or when its values are not numbers and not dates (see :mod:`dltoolkit.data._dates`). A text column whose values are at least 90% numbers is taken
for a numeric column with a few bad values, and the first bad value is reported rather than the
column silently becoming a thousand one-hot categories.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from dltoolkit.errors import DataError, closest, message
from dltoolkit.spec import PreprocessSpec

NUMERIC_SHARE = 0.9  # an object column with at least this share of numbers is numeric-with-garbage


def check_names(columns: list[str], names: list[str], where: str) -> None:
    """Raise DataError when a name configured under ``where`` is not one of ``columns``."""
    for name in names:
        if name not in columns:
            hint = closest(name, columns)
            fix = f"Did you mean {hint!r}?" if hint else f"Remove it from {where}."
            raise DataError(message(f"Unknown column in {where}", name, f"one of {columns}", fix))


def require_columns(received: list[str], expected: list[str], where: str = "the data") -> None:
    """Raise DataError naming every column of ``expected`` missing from ``received`` (extras are fine)."""
    missing = [c for c in expected if c not in received]
    if not missing:
        return
    hints = {m: closest(m, received) for m in missing[:3]}
    similar = ", ".join(f"{h!r} for {m!r}" for m, h in hints.items() if h)
    shown = received if len(received) <= 12 else [*received[:12], f"... ({len(received)} columns)"]
    raise DataError(
        message(
            f"{len(missing)} input column(s) missing from {where}: {_listed(missing)}",
            shown,
            f"the model's input columns {_listed(expected)}",
            (f"Did you mean {similar}? " if similar else "")
            + "Rename or add the columns (model.input_columns lists them, in order), or pass a "
            "2-d array whose columns are in that order.",
        )
    )


def _listed(names: list[str], most: int = 12) -> str:
    return repr(names) if len(names) <= most else f"{names[:most]!r} ... ({len(names)} in all)"


def column_kinds(X: pd.DataFrame, config: PreprocessSpec, categorical: list[str] | None) -> dict[str, str]:
    """Map each column of ``X`` to ``"numeric"``, ``"categorical"`` or ``"date"``; raise on numeric-with-garbage."""
    columns = [str(c) for c in X.columns]
    check_names(columns, list(config.columns), "preprocess.columns")
    check_names(columns, list(categorical or []), "data.categorical")
    return {c: _kind(X[c], c, config, categorical or []) for c in columns}


def _kind(series: pd.Series, name: str, config: PreprocessSpec, categorical: list[str]) -> str:
    override = config.columns.get(name)
    if override is not None and override.categorical is not None:
        declared = "categorical" if override.categorical else "numeric"
    elif name in categorical:
        declared = "categorical"
    elif override is not None and override.scale is not None:
        declared = "numeric"
    else:
        declared = None
    if declared == "numeric":
        to_numeric(series, name)  # raises on the first bad value
    if declared is not None:
        return declared
    return _inferred(series, name)


def _inferred(series: pd.Series, name: str) -> str:
    from dltoolkit.data._dates import date_format

    if isinstance(series.dtype, pd.CategoricalDtype):
        return "categorical"
    if pd.api.types.is_datetime64_any_dtype(series):
        return "date"
    if pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
        return "numeric"
    present = series.dropna()
    if len(present) == 0:
        return "numeric"
    share = float(pd.to_numeric(present, errors="coerce").notna().mean())
    if share == 1.0:
        return "numeric"
    if share >= NUMERIC_SHARE:
        to_numeric(series, name)  # raises naming the first bad value
    return "date" if date_format(series) is not None else "categorical"


MIN_ROWS = 20  # fewer training rows than this: no warnings about distinct values
MANY_CATEGORIES = 50  # a categorical column with more categories than this is warned about


def column_warnings(X: pd.DataFrame, kinds: dict[str, str]) -> list[str]:
    """Warnings about columns a model can hardly learn from: ID-like and high-cardinality ones.

    An ID-like column has a different value in every (training) row: text, or whole numbers
    forming one run (1, 2, 3...). A high-cardinality categorical column has more than
    ``MANY_CATEGORIES`` categories, or more categories than half the rows.
    """
    out = []
    n = len(X)
    for name, kind in kinds.items():
        present = X[name].dropna()
        k = int(present.nunique())
        if n < MIN_ROWS or kind == "date":
            continue
        fix = f"Leave it out with data.exclude: [{name}]"
        if k == n and _id_like(present, kind):
            out.append(
                f"Column {name!r} has a different value in each of the {n} training rows: it looks "
                f"like an ID, which a model can only memorise. {fix}."
            )
        elif kind == "categorical" and (k > MANY_CATEGORIES or (k > n / 2 and k > 10)):
            out.append(
                f"Categorical column {name!r} has {k} categories in {n} training rows (one input "
                f"each): most are too rare to learn from. {fix}, or group its rare values."
            )
    return out


def _id_like(values: pd.Series, kind: str) -> bool:
    if kind != "numeric":
        return True
    numbers = to_numeric(values, str(values.name))
    whole = bool(np.all(numbers == np.round(numbers)))
    return whole and numbers.max() - numbers.min() + 1 == len(numbers)


def plain(value: object) -> object:
    """A numpy scalar as the matching Python value (JSON-friendly, readable in messages)."""
    return value.item() if isinstance(value, np.generic) else value


def row_label(index: pd.Index, mask: np.ndarray) -> object:
    """The label of the first row where ``mask`` is true, as a plain Python value."""
    return plain(index[np.asarray(mask, dtype=bool)][0])


def to_numeric(series: pd.Series, name: str) -> np.ndarray:
    """The column as float64 (NaN where missing); a value that is not a number raises DataError."""
    if pd.api.types.is_bool_dtype(series) or pd.api.types.is_numeric_dtype(series):
        return series.to_numpy(dtype=np.float64, na_value=np.nan)
    parsed = pd.to_numeric(series, errors="coerce")
    bad = parsed.isna() & series.notna()
    if bad.any():
        row = row_label(bad.index, bad.to_numpy())
        raise DataError(
            message(
                f"Non-numeric value in numeric column {name!r} at row {row!r}",
                series.loc[row],
                "a number",
                "Fix or remove the value, or declare the column categorical "
                "(data.categorical or preprocess.columns.<name>.categorical: true).",
            )
        )
    return parsed.to_numpy(dtype=np.float64, na_value=np.nan)
