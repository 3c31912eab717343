"""The rows a trained model predicts on, checked the same way everywhere (``predict`` and ``serve``).

One schema per raw input column, taken from the fitted preprocessing: ``number``, ``category`` or
``text``, whether a missing value is accepted (``nullable``: the column imputes it), and for a
category the categories seen in training. :func:`check_rows` applies these rules:

* a column of the schema that is absent is an error naming it; a column the model does not use is
  ignored, with a warning;
* ``number``: ints, floats, booleans (0 / 1) and numeric strings such as ``"39.1"``; anything else
  (``"abc"``, a list), infinities and, where the column is not imputed, missing values are errors;
* ``category``: strings and numbers (compared by their text, ``1.0`` as ``"1"``); a value not seen
  in training is accepted (it encodes as all zeros) and counted in a warning; missing values are
  imputed;
* ``text``: strings.

Errors are :class:`InputError` (a ``DataError``) with the column and the row position, so the
server can name the field.

Example:
    >>> import pandas as pd
    >>> schema = [Column("a", "number", True), Column("c", "category", True, ("x", "y"))]
    >>> frame, notes = check_rows(pd.DataFrame({"a": ["1.5"], "c": ["z"], "extra": [0]}), schema)
    >>> frame["a"].tolist(), notes[0].startswith("Ignored 1 column")
    ([1.5], True)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from dltoolkit.data._columns import require_columns
from dltoolkit.errors import DataError, message

NULL_RULE = (
    "null or NaN is accepted only in columns whose preprocessing imputes missing values (nullable: true)"
)


class InputError(DataError):
    """A value or column of the rows to predict on is refused; ``column`` and ``row`` name where."""

    def __init__(self, text: str, column: str | None = None, row: int | None = None) -> None:
        super().__init__(text)
        self.column, self.row = column, row


class InputWarning(UserWarning):
    """Rows to predict on were accepted, but with something to know: unseen categories, ignored columns."""


@dataclass(frozen=True)
class Column:
    """One raw input column of a model: its name, kind, whether null is accepted, the known categories."""

    name: str
    type: str  # number | category | text
    nullable: bool
    categories: tuple[str, ...] | None = None

    def public(self) -> dict[str, Any]:
        """The column as the server's ``/metadata`` shows it."""
        return {"name": self.name, "type": self.type, "nullable": self.nullable}


def schema_of(preprocessors: Sequence[Any]) -> list[Column]:
    """The input schema of one fitted Preprocessor, or of several sharing their columns (an ensemble)."""
    plans = [{plan["name"]: plan for plan in p.columns_} for p in preprocessors]
    columns = []
    for name in preprocessors[0].feature_columns_:
        kinds = {p[name]["kind"] if name in p else "text" for p in plans}
        kind = "number" if "numeric" in kinds else "text" if "text" in kinds else "category"
        numeric = [p[name] for p in plans if name in p and p[name]["kind"] == "numeric"]
        nullable = kind == "category" or (kind == "number" and all(p["fill"] is not None for p in numeric))
        known = {
            c for p in plans if name in p and p[name]["kind"] == "categorical" for c in p[name]["categories"]
        }
        columns.append(Column(name, kind, nullable, tuple(sorted(known)) if kind == "category" else None))
    return columns


def check_rows(frame: pd.DataFrame, schema: Sequence[Column]) -> tuple[pd.DataFrame, list[str]]:
    """``frame`` reduced to the schema's columns with every value checked, and the warnings to give.

    Returns:
        The checked frame (numbers as float64, NaN where missing; other columns as objects) and a
        list of warning texts (ignored columns, unseen categories), empty when all is as trained.

    Raises:
        InputError: a missing column, or a value the column cannot take (naming column and row).
    """
    received = [str(c) for c in frame.columns]
    names = [c.name for c in schema]
    try:
        require_columns(received, names)
    except DataError as e:
        missing = next(n for n in names if n not in received)
        raise InputError(str(e), missing) from None
    notes = []
    extra = [c for c in received if c not in set(names)]
    if extra:
        notes.append(f"Ignored {len(extra)} column(s) the model does not use: {extra[:10]}")
    out = {}
    for column in schema:
        values, note = _checked(frame[column.name], column)
        out[column.name] = values
        notes += [note] if note else []
    return pd.DataFrame(out, index=frame.index, columns=names, copy=False), notes


def _checked(series: pd.Series, column: Column) -> tuple[np.ndarray | pd.Series, str | None]:
    if column.type == "number":
        return _numbers(series, column), None
    values = series.to_numpy(dtype=object)
    missing = np.array([_is_missing(v) for v in values], dtype=bool)
    if missing.any() and not column.nullable:
        _refuse_missing(column, int(np.argmax(missing)), values[missing][0])
    wanted = (str,) if column.type == "text" else (str, int, float, bool, np.integer, np.floating, np.bool_)
    for i, value in enumerate(values):
        if not missing[i] and not isinstance(value, wanted):
            _refuse(
                column, i, value, "a string" if column.type == "text" else "a category (a string or a number)"
            )
    if column.type == "text" or not column.categories:
        return series, None
    known = set(column.categories)
    unseen = [v for v, m in zip(values, missing, strict=True) if not m and _label(v) not in known]
    if not unseen:
        return series, None
    shown = sorted({_label(v) for v in unseen})[:3]
    return series, (
        f"Column {column.name!r}: {len(unseen)} of {len(values)} value(s) are categories not seen in "
        f"training (e.g. {shown}); they are encoded as all zeros. Known: {list(column.categories)[:10]}"
    )


def _numbers(series: pd.Series, column: Column) -> np.ndarray:
    if pd.api.types.is_bool_dtype(series) or (
        pd.api.types.is_numeric_dtype(series) and not isinstance(series.dtype, pd.CategoricalDtype)
    ):
        values = series.to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        raw = series.to_numpy(dtype=object)
        values = np.empty(len(raw), dtype=np.float64)
        for i, value in enumerate(raw):
            values[i] = _number(value, column, i)
    missing = np.isnan(values)
    if missing.any() and not column.nullable:
        i = int(np.argmax(missing))
        _refuse_missing(column, i, series.iloc[i])
    infinite = np.isinf(values)
    if infinite.any():
        i = int(np.argmax(infinite))
        raise InputError(
            message(
                f"Non-finite number in column {column.name!r} at row {i}",
                str(series.iloc[i]),
                "a finite number",
            ),
            column.name,
            i,
        )
    return values


def _number(value: Any, column: Column, row: int) -> float:
    if _is_missing(value):
        return math.nan
    if isinstance(value, bool | int | float | np.integer | np.floating | np.bool_):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            pass
    _refuse(column, row, value, "a number (or a string holding one, such as '39.1')")
    raise AssertionError  # unreachable: _refuse raises


def _refuse(column: Column, row: int, value: Any, expected: str) -> None:
    raise InputError(
        message(f"Wrong type in column {column.name!r} at row {row}", value, expected), column.name, row
    )


def _refuse_missing(column: Column, row: int, value: Any) -> None:
    raise InputError(
        message(
            f"Missing value in column {column.name!r} at row {row}",
            None if _is_missing(value) else value,
            "a value: this column is not imputed",
            NULL_RULE + ".",
        ),
        column.name,
        row,
    )


def _is_missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float | np.floating) and math.isnan(value))


def _label(value: Any) -> str:
    """A category value as the preprocessing compares it (1.0 -> "1")."""
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)
