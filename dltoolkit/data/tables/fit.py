"""The preprocessing of a table fitted on its training rows in a streaming pass, unit by unit.

:func:`fit_streaming` gives the :class:`~dltoolkit.data.preprocess.Preprocessor` that
``Preprocessor.fit`` gives on the same training rows loaded at once (the same plans, floats equal
to rounding), holding one read unit at a time:

* numeric columns: count, mean and sum of squared deviations merged per unit (Chan et al.), minimum
  and maximum; the imputed values join the moments afterwards as ``n_missing`` copies of the fill;
* medians (``impute: median``) are exact: a radix selection on the bits of the values, 16 bits a
  pass, until the candidates fit in memory (usually one extra pass over the training rows);
* most frequent values and categorical columns: value counts merged per unit (memory grows with
  the number of distinct values, not with the rows).

The column kinds are read from the first unit (Parquet and CSV columns have one type in every
shard; a column without a value there is judged on the first unit that has one). Date columns are
streamed too (:class:`_Date`), and a text column's vocabulary or BPE tokenizer is trained on the texts
as they stream.

Example:
    >>> pre = fit_streaming(spec, files, features, train_positions)   # doctest: +SKIP
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd

from dltoolkit.data._columns import MANY_CATEGORIES, MIN_ROWS, check_names, column_kinds, to_numeric
from dltoolkit.data.preprocess import Column, Preprocessor, _as_strings, _output_names
from dltoolkit.data.tables.source import TableFiles
from dltoolkit.errors import DataError, DataWarning, message
from dltoolkit.spec import ColumnSpec, Spec

CANDIDATES = 1 << 20  # a median's candidates are collected once at most this many remain
BITS = 16  # bits of the sortable key resolved per radix pass


def train_frames(files: TableFiles, columns: list[str], rows: np.ndarray) -> Iterator[pd.DataFrame]:
    """The rows at sorted positions ``rows`` (of the whole table), one unit at a time."""
    for unit in range(len(files.units)):
        lo, hi = files.offsets[unit], files.offsets[unit + 1]
        a, b = np.searchsorted(rows, [lo, hi])
        if b > a:
            yield files.read_unit(unit, columns).iloc[rows[a:b] - lo]


def fit_streaming(spec: Spec, files: TableFiles, features: list[str], train: np.ndarray) -> Preprocessor:
    """A fitted Preprocessor equal to ``Preprocessor.from_spec(spec).fit(table.iloc[train])``.

    Raises:
        DataError: a column without values in the
            training rows, or a non-numeric value in a numeric column.
    """
    pre = Preprocessor.from_spec(spec)
    text = spec.preprocess.text
    if text is not None:  # the vocabulary's counts or the BPE trainer's, over the texts as they stream
        check_names(features, [text.column], "preprocess.text.column")
        texts = (t for frame in train_frames(files, [text.column], train) for t in frame[text.column])
        pre.fit_texts(texts)._check_shape()
        return pre
    kinds = _kinds(files, features, pre)
    stats: dict[str, _Numeric | _Categorical | _Date] = {}
    for name, kind in kinds.items():
        if kind == "numeric":
            stats[name] = _Numeric(pre._column(name))
        elif kind == "date":
            stats[name] = _Date(pre._column(name), _date_format(files, name))
        else:
            stats[name] = _Categorical()
    for frame in train_frames(files, features, train):
        for name, stat in stats.items():
            stat.add(frame[name], name)
    medians = {
        c: s for c, s in stats.items() if isinstance(s, _Selecting) and s.select is not None
    }  # the columns whose fill is an order statistic: more passes until each is found
    for stat in medians.values():
        stat.next_pass()
    while any(not stat.done for stat in medians.values()):
        for frame in train_frames(files, list(medians), train):
            for name, stat in medians.items():
                stat.select_add(frame[name], name)
        for stat in medians.values():
            stat.next_pass()
    plans = [stats[c].plan(c, pre) for c in kinds]
    state = {
        "version": 1,
        "config": pre.config.model_dump(mode="json"),
        "categorical": pre.categorical,
        "feature_columns": list(kinds),
        "columns": plans,
        "vocab": None,
        "output_names": [],
    }
    fitted = Preprocessor.from_state(state)
    fitted.config = pre.config
    fitted.output_names_ = [name for plan in plans for name in _output_names(plan)]
    fitted.warnings_ = [w for c in kinds if (w := stats[c].warning(c, len(train)))]
    for warning in fitted.warnings_:
        warnings.warn(warning, DataWarning, stacklevel=3)
    fitted._check_shape()
    return fitted


def _kinds(files: TableFiles, features: list[str], pre: Preprocessor) -> dict[str, str]:
    """The column kinds read from the first unit; a column empty there is judged on its first values."""
    from dltoolkit.data._columns import _kind

    sample = files.read_unit(0, features)
    kinds = column_kinds(sample, pre.config, pre.categorical)
    empty = [c for c in features if sample[c].isna().all()]
    for unit in range(1, len(files.units)):
        if not empty:
            break
        frame = files.read_unit(unit, empty)
        for name in [c for c in empty if frame[c].notna().any()]:
            kinds[name] = _kind(frame[name], name, pre.config, pre.categorical or [])
            empty.remove(name)
    return kinds


def _no_values(name: str, what: str) -> DataError:
    return DataError(
        message(
            f"Column {name!r} has no values in the training rows",
            "all missing",
            f"at least one {what}",
            "Drop the column from data.features.",
        )
    )


class _Selecting:
    """A column statistic whose fill is an order statistic (``select``, None when it is not): the
    passes after the first feed ``select_add`` until the selection is ``done``."""

    select: _Median | None

    @property
    def done(self) -> bool:
        return self.select is None or self.select.done

    def next_pass(self) -> None:
        if self.select is not None:
            self.select.next_pass()

    def select_add(self, series: pd.Series, name: str) -> None:
        """A later pass of the selection over the column's training values."""
        raise NotImplementedError


class _Numeric(_Selecting):
    """Moments, range, counts and (for a median fill) the radix selection of one numeric column."""

    def __init__(self, column) -> None:
        self.column = column
        self.n = self.missing = 0
        self.mean = self.m2 = 0.0
        self.low, self.high = np.inf, -np.inf
        self.counts: Counter = Counter()
        self.whole = True
        self.select = _Median() if column.impute == "median" else None

    def add(self, series: pd.Series, name: str) -> None:
        values = to_numeric(series, name)
        present = values[~np.isnan(values)]
        self.missing += len(values) - len(present)
        if len(present) == 0:
            return
        n, mean = len(present), float(present.mean())
        m2 = float(((present - mean) ** 2).sum())
        total = self.n + n
        delta = mean - self.mean
        self.mean += delta * n / total
        self.m2 += m2 + delta * delta * self.n * n / total
        self.n = total
        self.low, self.high = min(self.low, float(present.min())), max(self.high, float(present.max()))
        self.whole = self.whole and bool(np.all(present == np.round(present)))
        if self.column.impute == "most_frequent":
            self.counts.update(pd.Series(present).value_counts().to_dict())
        if self.select is not None:
            self.select.add(present)

    def select_add(self, series: pd.Series, name: str) -> None:
        if self.select is not None:
            self.select.add(to_numeric(series, name))

    def plan(self, name: str, pre: Preprocessor) -> dict[str, Any]:
        if self.n == 0:
            raise _no_values(name, "number")
        impute = self.column.impute
        if impute == "none":
            fill = None
        elif impute == "mean":
            fill = float(self.mean)
        elif impute == "median":
            assert self.select is not None, "a median-imputed column has its selection from __init__"
            fill = float(self.select.median())
        else:
            top = max(self.counts.values())
            fill = float(min(v for v, c in self.counts.items() if c == top))
        n, mean, m2, low, high = self.n, self.mean, self.m2, self.low, self.high
        if fill is not None and self.missing:  # the imputed values join the moments and the range
            total = n + self.missing
            delta = fill - mean
            mean, m2 = mean + delta * self.missing / total, m2 + delta * delta * n * self.missing / total
            n, low, high = total, min(low, fill), max(high, fill)
        scale, offset = _scaling(self.column.scale, mean, float(np.sqrt(m2 / n)), low, high)
        return {"name": name, "kind": "numeric", "fill": fill, "scale": scale, "offset": offset}

    def warning(self, name: str, rows: int) -> str | None:
        """The in-memory ID warning for a column of whole numbers forming one run with no gap."""
        if rows < MIN_ROWS or self.n != rows or not self.whole or self.high - self.low + 1 != rows:
            return None
        return (
            f"Column {name!r} has a different value in each of the {rows} training rows: it looks "
            f"like an ID, which a model can only memorise. Leave it out with data.exclude: [{name}]."
        )


def _scaling(scale: str, mean: float, std: float, low: float, high: float) -> tuple[float, float]:
    """:func:`dltoolkit.data.preprocess._scaling` from the moments and the range."""
    if scale == "standard":
        center, spread = mean, std
    elif scale == "minmax":
        center, spread = low, high - low
    else:
        return 1.0, 0.0
    if not spread > 1e-12 * max(1.0, abs(center)):
        spread = 1.0
    return float(1.0 / spread), float(-center / spread)


class _Categorical:
    """Value counts of one categorical column (its values as text, as the in-memory fit reads them)."""

    def __init__(self) -> None:
        self.counts: Counter = Counter()

    def add(self, series: pd.Series, name: str) -> None:
        self.counts.update(_as_strings(series).dropna().value_counts().to_dict())

    def plan(self, name: str, pre: Preprocessor) -> dict[str, Any]:
        if not self.counts:
            raise _no_values(name, "category")
        top = max(self.counts.values())
        fill = sorted(c for c, n in self.counts.items() if n == top)[0]
        if (pre.config.columns.get(name) or ColumnSpec()).impute == "none":
            fill = None
        return {"name": name, "kind": "categorical", "fill": fill, "categories": sorted(self.counts),
                "onehot": pre.config.onehot}  # fmt: skip

    def warning(self, name: str, rows: int) -> str | None:
        k, n = len(self.counts), sum(self.counts.values())
        fix = f"Leave it out with data.exclude: [{name}]"
        if rows < MIN_ROWS:
            return None
        if k == rows and n == rows:
            return (
                f"Column {name!r} has a different value in each of the {rows} training rows: it looks "
                f"like an ID, which a model can only memorise. {fix}."
            )
        if k > MANY_CATEGORIES or (k > rows / 2 and k > 10):
            return (
                f"Categorical column {name!r} has {k} categories in {rows} training rows (one input "
                f"each): most are too rare to learn from. {fix}, or group its rare values."
            )
        return None


class _Date(_Selecting):
    """What the in-memory fit of a date column needs (:func:`dltoolkit.data._dates.fit_date`): the
    years' moments and range (their scaling), whether any has a time of day, and the lower median
    date (the fill), selected exactly over the passes as a numeric median is (as float64 nanoseconds
    since 1970: exact for whole-second timestamps until the year 2116, within 128 ns otherwise)."""

    def __init__(self, column: Column, fmt: str) -> None:
        self.column, self.format = column, fmt
        self.years = _Numeric(Column(scale=column.scale, impute="none"))  # moments and range only
        self.time = False
        self.select = None if column.impute == "none" else _Median()

    def _present(self, series: pd.Series, name: str) -> pd.Series:
        from dltoolkit.data._dates import parse

        return parse(series, name, self.format).dropna()

    @staticmethod
    def _nanoseconds(present: pd.Series) -> np.ndarray:
        return present.to_numpy(dtype="datetime64[ns]").astype(np.int64).astype(np.float64)

    def add(self, series: pd.Series, name: str) -> None:
        present = self._present(series, name)
        if len(present) == 0:
            return
        self.time = self.time or bool(((present - present.dt.normalize()).dt.total_seconds() > 0).any())
        self.years.add(pd.Series(present.dt.year.to_numpy(dtype=np.float64)), name)
        if self.select is not None:
            self.select.add(self._nanoseconds(present))

    def select_add(self, series: pd.Series, name: str) -> None:
        if self.select is not None:
            self.select.add(self._nanoseconds(self._present(series, name)))

    def plan(self, name: str, pre: Preprocessor) -> dict[str, Any]:
        from dltoolkit.data._dates import no_dates

        years = self.years
        if years.n == 0:
            raise no_dates(name)
        fill = None
        if self.select is not None:
            lower = targets_of(self.select.targets)[0].value  # the lower median, as the in-memory fit takes
            assert lower is not None, "the passes ran until the selection was done"
            fill = pd.Timestamp(int(lower)).isoformat()
        std = float(np.sqrt(years.m2 / years.n))
        scale, offset = _scaling(self.column.scale, years.mean, std, years.low, years.high)
        return {"name": name, "kind": "date", "format": self.format or None, "fill": fill,
                "time": self.time, "scale": scale, "offset": offset}  # fmt: skip

    def warning(self, name: str, rows: int) -> str | None:
        return None


def _date_format(files: TableFiles, name: str) -> str:
    """The column's date format, guessed as the in-memory fit guesses it (from its first values,
    here those of the first unit that has any)."""
    from dltoolkit.data._dates import date_format

    for unit in range(len(files.units)):
        values = files.read_unit(unit, [name])[name]
        if values.notna().any():
            return date_format(values) or ""
    return ""


# ---------------------------------------------------------------------- exact streaming median
def _keys(values: np.ndarray) -> np.ndarray:
    """float64 -> uint64 keys in the same order (negative values: all bits flipped)."""
    bits = np.ascontiguousarray(values, dtype=np.float64).view(np.uint64)
    negative = (bits >> np.uint64(63)).astype(bool)
    return np.where(negative, ~bits, bits | np.uint64(1 << 63))


class _Target:
    """The k-th smallest value (0-based): a key prefix narrowed 16 bits a pass, then collected."""

    def __init__(self, k: int) -> None:
        self.k, self.prefix, self.known = k, 0, 0  # ``known`` leading bits of the key are fixed
        self.count: int | None = None  # values with that prefix (None: not counted yet)
        self.histogram = np.zeros(1 << BITS, dtype=np.int64)
        self.collected: list[np.ndarray] = []
        self.value: float | None = None

    @property
    def collecting(self) -> bool:
        return self.count is not None and self.count <= CANDIDATES

    def add(self, keys: np.ndarray, values: np.ndarray) -> None:
        if self.value is not None:
            return
        mine = keys >> np.uint64(64 - self.known) == self.prefix if self.known else np.ones(len(keys), bool)
        if self.collecting:
            self.collected.append(values[mine])
            return
        shift = np.uint64(64 - self.known - BITS)
        digits = ((keys[mine] >> shift) & np.uint64((1 << BITS) - 1)).astype(np.int64)
        self.histogram += np.bincount(digits, minlength=1 << BITS)

    def next_pass(self) -> None:
        if self.value is not None:
            return
        if self.collecting:
            self.value = float(np.partition(np.concatenate(self.collected), self.k)[self.k])
            return
        below = np.cumsum(self.histogram)
        digit = int(np.searchsorted(below, self.k, side="right"))
        self.k -= int(below[digit - 1]) if digit else 0
        self.count = int(self.histogram[digit])
        self.prefix, self.known = (self.prefix << BITS) | digit, self.known + BITS
        self.histogram[:] = 0
        if self.known == 64:  # every bit fixed: the value is the key itself
            key = np.array([self.prefix], dtype=np.uint64)
            bits = np.where(key >> np.uint64(63) == 1, key & ~np.uint64(1 << 63), ~key)
            self.value = float(bits.view(np.float64)[0])


def targets_of(targets: list[_Target] | None) -> list[_Target]:
    """The order statistics a median selection looks for (made by its first pass)."""
    assert targets is not None, "a median selection's first pass makes its targets"
    return targets


class _Median:
    """``np.median`` of every value added, exactly: one or two order statistics by radix selection."""

    def __init__(self) -> None:
        self.n = 0
        self.targets: list[_Target] | None = None  # made once the first pass has counted the values
        self.first: list[np.ndarray] = []  # the first pass's histogram, before n is known
        self.histogram = np.zeros(1 << BITS, dtype=np.int64)

    @property
    def done(self) -> bool:
        return self.targets is not None and all(t.value is not None for t in self.targets)

    def add(self, values: np.ndarray) -> None:
        keys = _keys(values)
        if self.targets is None:  # first pass: the top 16 bits of every key
            self.n += len(values)
            self.histogram += np.bincount(
                (keys >> np.uint64(64 - BITS)).astype(np.int64), minlength=1 << BITS
            )
            return
        for target in self.targets:
            target.add(keys, values)

    def next_pass(self) -> None:
        if self.targets is None:
            if self.n == 0:  # no value: the column's plan raises
                self.targets = []
                return
            ks = sorted({(self.n - 1) // 2, self.n // 2})
            targets = self.targets = [_Target(k) for k in ks]
            for target in targets:
                target.histogram = self.histogram.copy()
                target.next_pass()
            return
        for target in targets_of(self.targets):
            target.next_pass()

    def median(self) -> float:
        values = [t.value for t in targets_of(self.targets)]
        return float(np.mean([values[0], values[-1]]))
