"""Which raw columns are numeric and which categorical, and strict numeric parsing.

A column is categorical when declared so (``data.categorical`` or ``preprocess.columns.<c>.categorical``)
or when its values are not numbers. A text column whose values are at least 90% numbers is taken
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
    """Map each column of ``X`` to ``"numeric"`` or ``"categorical"``; raise on numeric-with-garbage."""
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
    if isinstance(series.dtype, pd.CategoricalDtype):
        return "categorical"
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
    return "categorical"


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
