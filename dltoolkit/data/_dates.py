"""Date and time columns: detected, then expanded into calendar features instead of one-hot codes.

A column is a date column when its dtype is a datetime, or when its values are text that parses
with one date format carrying a year (``2021-03-04``, ``04/03/2021 13:45``, ``Mar 4 2021``) for at
least ``DATE_SHARE`` of a sample of its rows. pandas guesses the format from the values; the
format is part of the fitted state, so new rows are parsed exactly as the training rows were.

Each date column becomes the features ``<col>.year`` (scaled as a numeric column is),
``<col>.month_sin/_cos``, ``<col>.weekday_sin/_cos`` and ``<col>.yearday_sin/_cos`` (cyclic: December
is next to January), plus ``<col>.time_sin/_cos`` (the time of day) when the training values carry
a time. A missing date is imputed with the training rows' median date.

Example:
    >>> import pandas as pd
    >>> date_format(pd.Series(["2021-03-04", "2021-03-05", None]))
    '%Y-%m-%d'
    >>> date_format(pd.Series(["red", "blue"])) is None
    True
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

from dltoolkit.errors import DataError, message

DATE_SHARE = 0.9  # share of sampled values that must parse for a text column to be a date column
SAMPLE = 200  # values looked at to detect a date column
CYCLES = {"month": 12.0, "weekday": 7.0, "yearday": 365.25, "time": 86400.0}


def date_format(series: pd.Series) -> str | None:
    """The date format of a date column ('' for a datetime dtype), or None if it is not one."""
    if pd.api.types.is_datetime64_any_dtype(series):
        return ""
    if pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
        return None
    present = series.dropna()
    values = present.iloc[:SAMPLE].astype(str)
    if len(values) == 0:
        return None
    fmt = _guess(values)
    if fmt is None:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parsed = pd.to_datetime(values, format=fmt, errors="coerce")
    return fmt if float(parsed.notna().mean()) >= DATE_SHARE else None


def _guess(values: pd.Series) -> str | None:
    """A format with a year that pandas guesses from one of the first distinct values."""
    from pandas.tseries.api import guess_datetime_format

    for value in values.drop_duplicates().iloc[:5]:
        fmt = guess_datetime_format(value)
        if fmt is not None and ("%Y" in fmt or "%y" in fmt):
            return fmt
    return None


def parse(series: pd.Series, name: str, fmt: str | None) -> pd.Series:
    """The column as naive datetimes (UTC for zoned ones), NaT where missing; bad values raise."""
    if pd.api.types.is_datetime64_any_dtype(series):
        parsed = series
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            parsed = pd.to_datetime(series, format=fmt or "ISO8601", errors="coerce", utc=_zoned(fmt))
        bad = parsed.isna() & series.notna()
        if bad.any():
            row = series.index[bad.to_numpy()][0]
            raise DataError(
                message(
                    f"Unreadable date in date column {name!r} at row {row!r}",
                    series.loc[row],
                    f"a date like the training rows' (format {fmt or 'ISO 8601'})",
                    "Fix or remove the value, or leave the column out with data.exclude.",
                )
            )
    parsed = pd.Series(parsed, index=series.index)
    if getattr(parsed.dt, "tz", None) is not None:
        parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
    return parsed


def _zoned(fmt: str | None) -> bool:
    return fmt is not None and ("%z" in fmt or "%Z" in fmt)


def fit_date(series: pd.Series, name: str, fmt: str, scale: str, impute: str) -> dict[str, Any]:
    """The plan of one date column fitted on the training rows (plain JSON data)."""
    from dltoolkit.data.preprocess import _scaling

    when = parse(series, name, fmt)
    present = when.dropna()
    if len(present) == 0:
        raise no_dates(name)
    fill = None if impute == "none" else present.sort_values().iloc[(len(present) - 1) // 2].isoformat()
    seconds = (present - present.dt.normalize()).dt.total_seconds()
    years = present.dt.year.to_numpy(dtype=np.float64)
    factor, offset = _scaling(years, scale)
    return {"name": name, "kind": "date", "format": fmt or None, "fill": fill,
            "time": bool((seconds > 0).any()), "scale": factor, "offset": offset}  # fmt: skip


def no_dates(name: str) -> DataError:
    """The error for a date column without a date in the training rows."""
    return DataError(
        message(
            f"Column {name!r} has no dates in the training rows",
            "all missing",
            "at least one date",
            "Leave the column out with data.exclude.",
        )
    )


def date_names(plan: dict[str, Any]) -> list[str]:
    """The output feature names of one date column."""
    cycles = [c for c in CYCLES if c != "time" or plan["time"]]
    return [f"{plan['name']}.year"] + [f"{plan['name']}.{c}_{f}" for c in cycles for f in ("sin", "cos")]


def transform_date(series: pd.Series, plan: dict[str, Any]) -> np.ndarray:
    """One raw date column -> an (n, k) float64 block of calendar features."""
    when = parse(series, plan["name"], plan["format"])
    if when.isna().any():
        if plan["fill"] is None:
            row = series.index[when.isna().to_numpy()][0]
            raise DataError(
                message(
                    f"Missing date in column {plan['name']!r} at row {row!r}",
                    None,
                    "a date (impute is 'none')",
                    "Set preprocess.impute or fill the data.",
                )
            )
        when = when.fillna(pd.Timestamp(plan["fill"]))
    parts = {
        "month": when.dt.month - 1,
        "weekday": when.dt.day_of_week,
        "yearday": when.dt.day_of_year - 1,
        "time": (when - when.dt.normalize()).dt.total_seconds(),
    }
    year = when.dt.year.to_numpy(dtype=np.float64) * plan["scale"] + plan["offset"]
    columns = [year]
    for cycle, period in CYCLES.items():
        if cycle == "time" and not plan["time"]:
            continue
        angle = 2 * np.pi * parts[cycle].to_numpy(dtype=np.float64) / period
        columns += [np.sin(angle), np.cos(angle)]
    return np.stack(columns, axis=1)
