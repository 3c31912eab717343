"""The fitted preprocessing that turns raw feature columns into model inputs, and back into state.

Numeric columns are imputed then scaled (standard / minmax / none), categorical columns are
imputed with their most frequent value then one-hot encoded (an unknown category gives all
zeros), date columns become calendar features (:mod:`dltoolkit.data._dates`), and a text column
is tokenised into ids. The output of one sample is reshaped to
``preprocess.shape`` when set. The fitted state is plain JSON, so a model bundle carries it.

Example:
    >>> import pandas as pd
    >>> from dltoolkit.spec import PreprocessSpec
    >>> pre = Preprocessor(PreprocessSpec(scale="minmax")).fit(pd.DataFrame({"x": [0.0, 2.0, 4.0]}))
    >>> pre.transform(pd.DataFrame({"x": [1.0]})).tolist()
    [[0.25]]
    >>> Preprocessor.from_state(pre.to_state()).input_shape
    (1,)
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Self

import numpy as np
import pandas as pd
import torch

from dltoolkit.data import text as _text
from dltoolkit.data._columns import (
    check_names,
    column_kinds,
    column_warnings,
    require_columns,
    row_label,
    to_numeric,
)
from dltoolkit.data._dates import date_format, date_names, fit_date, transform_date
from dltoolkit.errors import DataError, DataWarning, message
from dltoolkit.spec import ColumnSpec, Impute, PreprocessSpec, Scale, Spec, TextSpec

STATE_VERSION = 1  # the state written when every column is numeric, categorical or text
DATE_STATE_VERSION = 2  # the state written with date columns (older dltoolkit cannot read them)
SUBWORD_STATE_VERSION = 3  # the state written with a trained subword tokenizer
READABLE_STATES = (STATE_VERSION, DATE_STATE_VERSION, SUBWORD_STATE_VERSION)


@dataclass(frozen=True)
class Column:
    """One column's settings: its ``preprocess.columns`` entry with the section's defaults filled in."""

    scale: Scale
    impute: Impute
    categorical: bool | None = None


class Preprocessor:
    """Fit on the training features, transform any split or new rows the same way.

    Args:
        config: The spec's ``preprocess`` section.
        categorical: Columns to treat as categories (the spec's ``data.categorical``); other
            non-numeric columns are categorical too.

    Fitted attributes: ``feature_columns_`` (raw columns expected, in order), ``columns_`` (one
    plain dict per numeric/categorical/date column), ``vocab_`` (text only), ``tokenizer_`` (a
    trained subword tokenizer's JSON object, Hugging Face's ``tokenizer.json``; None for word and
    char tokens and for tabular data), ``output_names_`` (one
    name per output feature before reshaping), ``warnings_`` (sentences about ID-like and
    high-cardinality columns, also issued as :class:`~dltoolkit.errors.DataWarning`).
    """

    def __init__(self, config: PreprocessSpec | None = None, categorical: list[str] | None = None) -> None:
        self.config = config if config is not None else PreprocessSpec()
        self.categorical = list(categorical) if categorical is not None else None

    @classmethod
    def from_spec(cls, spec: Spec) -> Preprocessor:
        """An unfitted preprocessor configured by ``spec.preprocess`` and ``spec.data.categorical``."""
        return cls(spec.preprocess, spec.data.categorical)

    # ------------------------------------------------------------------ fitting
    def fit(self, X: pd.DataFrame) -> Self:
        """Learn imputation values, scales, categories or the vocabulary from ``X`` (training rows)."""
        if not isinstance(X, pd.DataFrame) or len(X) == 0:
            raise DataError(message("Cannot fit preprocessing", _describe(X), "a non-empty DataFrame"))
        if self.config.text is not None:
            self._fit_text(X, self.config.text)
        else:
            self._fit_tabular(X)
        self._check_shape()
        return self

    def _fit_text(self, X: pd.DataFrame, text: TextSpec) -> None:
        check_names([str(c) for c in X.columns], [text.column], "preprocess.text.column")
        self.fit_texts(X[text.column])

    def fit_texts(self, texts: Iterable[object]) -> Self:
        """Fit ``preprocess.text`` (the vocabulary or the subword tokenizer) on the training texts,
        read once in order: a generator streams them (a table read unit by unit)."""
        text = self._text_config()
        self.feature_columns_ = [text.column]
        self.columns_: list[dict[str, Any]] = []
        self.tokenizer_: dict[str, Any] | None = None
        if _text.is_subword(text):
            self.tokenizer_ = _text.train_subword(texts, text)
            self.vocab_: list[str] | None = _text.subword_vocab(self.tokenizer_)
        else:
            self.vocab_ = _text.build_vocab(texts, text)
        self.output_names_ = [f"token{i}" for i in range(text.max_len)]
        self.warnings_: list[str] = []
        return self

    def _fit_tabular(self, X: pd.DataFrame) -> None:
        kinds = column_kinds(X, self.config, self.categorical)
        self.feature_columns_ = list(kinds)
        self.columns_ = [self._fit_column(X[c], c, kind) for c, kind in kinds.items()]
        self.vocab_, self.tokenizer_ = None, None
        self.output_names_ = [name for plan in self.columns_ for name in _output_names(plan)]
        self.warnings_ = column_warnings(X, kinds)
        for text in self.warnings_:
            warnings.warn(text, DataWarning, stacklevel=4)

    def _fit_column(self, series: pd.Series, name: str, kind: str) -> dict[str, Any]:
        column = self._column(name)
        if kind == "numeric":
            return _fit_numeric(series, name, column)
        if kind == "date":
            return fit_date(series, name, date_format(series) or "", column.scale, column.impute)
        return _fit_categorical(series, name, self)

    def _column(self, name: str) -> Column:
        override = self.config.columns.get(name) or ColumnSpec()
        return Column(
            scale=override.scale or self.config.scale,
            impute=override.impute or self.config.impute,
            categorical=override.categorical,
        )

    def _text_config(self) -> TextSpec:
        """``preprocess.text`` of a preprocessor fitted on text (it has a vocabulary or a tokenizer)."""
        text = self.config.text
        assert text is not None, "a vocabulary or a tokenizer is only fitted with preprocess.text set"
        return text

    def _check_shape(self) -> None:
        n = len(self.output_names_)
        shape = self.config.shape
        if shape is not None and (math.prod(shape) != n or min(shape) < 1):
            raise DataError(
                message(
                    "preprocess.shape does not fit the number of features",
                    shape,
                    f"positive sizes whose product is {n}",
                    f"Use e.g. [{n}] or remove preprocess.shape.",
                )
            )

    # ------------------------------------------------------------------ transforming
    @property
    def input_shape(self) -> tuple[int, ...]:
        """The shape of one transformed sample."""
        self._require_fitted()
        return tuple(self.config.shape) if self.config.shape else (len(self.output_names_),)

    @property
    def input_dtype(self) -> torch.dtype:
        """``torch.int64`` for token ids, ``torch.float32`` otherwise."""
        return torch.int64 if self.config.text is not None else torch.float32

    def transform(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Transform raw rows into an array of shape ``(n, *input_shape)``.

        Args:
            X: A DataFrame holding ``feature_columns_`` (others are ignored), or an array whose
                columns are ``feature_columns_`` in order.

        Returns:
            float32 features, or int64 token ids for text.
        """
        self._require_fitted()
        X = self.frame(X)
        if self.tokenizer_ is not None:
            out = _text.encode_subword(X[self.feature_columns_[0]], self._subword(), self._text_config())
        elif self.vocab_ is not None:
            out = _text.encode(X[self.feature_columns_[0]], self.vocab_, self._text_config())
        else:
            blocks = [_transform_column(X[plan["name"]], plan) for plan in self.columns_]
            out = np.concatenate(blocks, axis=1).astype(np.float32)
        return out.reshape(len(X), *self.input_shape)

    def _subword(self):
        """The ``tokenizers.Tokenizer`` of ``tokenizer_``, built once per preprocessor."""
        cached = self.__dict__.get("_tokenizer")
        if cached is None or cached[0] is not self.tokenizer_:
            cached = (self.tokenizer_, _text.load_subword(self.tokenizer_))
            self._tokenizer = cached
        return cached[1]

    def __getstate__(self) -> dict[str, Any]:  # pickled to workers: the Rust tokenizer is rebuilt there
        return {k: v for k, v in self.__dict__.items() if k != "_tokenizer"}

    def fit_transform(self, X: pd.DataFrame) -> np.ndarray:
        """``fit(X)`` then ``transform(X)``."""
        return self.fit(X).transform(X)

    def frame(self, X: pd.DataFrame | np.ndarray) -> pd.DataFrame:
        """Raw rows as a DataFrame in the original columns (an array's columns taken in that order)."""
        if isinstance(X, np.ndarray):
            X = X.reshape(len(X), -1) if X.ndim != 2 else X
            if X.shape[1] != len(self.feature_columns_):
                raise DataError(
                    message(
                        "Wrong number of feature columns",
                        X.shape[1],
                        f"{len(self.feature_columns_)} columns {self.feature_columns_}",
                    )
                )
            return pd.DataFrame(X, columns=self.feature_columns_)
        if not isinstance(X, pd.DataFrame):
            raise DataError(message("Cannot transform", _describe(X), "a DataFrame or a 2-d array"))
        require_columns([str(c) for c in X.columns], self.feature_columns_)
        return X

    def linear_params(self) -> tuple[np.ndarray, np.ndarray] | None:
        """Per output feature ``(scale, offset)`` with ``transformed = imputed_raw * scale + offset``.

        Returns:
            Two float64 arrays of length ``len(output_names_)``, or None when the transform is not
            affine per column (categorical or text columns).
        """
        self._require_fitted()
        if self.vocab_ is not None or any(plan["kind"] != "numeric" for plan in self.columns_):
            return None
        scale = np.array([plan["scale"] for plan in self.columns_], dtype=np.float64)
        offset = np.array([plan["offset"] for plan in self.columns_], dtype=np.float64)
        return scale, offset

    # ------------------------------------------------------------------ state
    def to_state(self) -> dict[str, Any]:
        """The fitted state as plain JSON data (lists, floats, strings)."""
        self._require_fitted()
        state = {
            "version": DATE_STATE_VERSION if self._has_dates() else STATE_VERSION,
            "config": self.config.model_dump(mode="json"),
            "categorical": self.categorical,
            "feature_columns": list(self.feature_columns_),
            "columns": [dict(plan) for plan in self.columns_],
            "vocab": self.vocab_,
            "output_names": list(self.output_names_),
        }
        if self.tokenizer_ is not None:
            state |= {"version": SUBWORD_STATE_VERSION, "tokenizer": self.tokenizer_}
        return state

    def _has_dates(self) -> bool:
        return any(plan["kind"] == "date" for plan in self.columns_)

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Preprocessor:
        """Restore a fitted preprocessor from :meth:`to_state` output."""
        if not isinstance(state, dict) or state.get("version") not in READABLE_STATES:
            got = state.get("version") if isinstance(state, dict) else type(state).__name__
            raise DataError(
                message("Unsupported preprocessor state", got, f"a dict with version in {READABLE_STATES}")
            )
        pre = cls(PreprocessSpec.model_validate(state["config"]), state["categorical"])
        pre.feature_columns_ = list(state["feature_columns"])
        pre.columns_ = [dict(plan) for plan in state["columns"]]
        pre.vocab_ = list(state["vocab"]) if state["vocab"] is not None else None
        pre.tokenizer_ = state.get("tokenizer")
        pre.output_names_ = list(state["output_names"])
        pre.warnings_ = []
        return pre

    def _require_fitted(self) -> None:
        if not hasattr(self, "feature_columns_"):
            raise DataError(
                message(
                    "The preprocessor is not fitted",
                    None,
                    "a fitted preprocessor",
                    "Call fit(X_train) first or restore one with from_state().",
                )
            )

    def __repr__(self) -> str:
        fitted = f", features={len(self.output_names_)}" if hasattr(self, "output_names_") else ""
        return f"Preprocessor(scale={self.config.scale!r}, impute={self.config.impute!r}{fitted})"


# ---------------------------------------------------------------------- numeric columns
def _fit_numeric(series: pd.Series, name: str, column: Column) -> dict[str, Any]:
    values = to_numeric(series, name)
    if np.isnan(values).all():
        raise DataError(
            message(
                f"Column {name!r} has no values in the training rows",
                "all missing",
                "at least one number",
                "Drop the column from data.features.",
            )
        )
    fill = _fill_value(values, column.impute)
    if fill is not None:
        values = np.where(np.isnan(values), fill, values)
    scale, offset = _scaling(values, column.scale)
    return {"name": name, "kind": "numeric", "fill": fill, "scale": scale, "offset": offset}


def _fill_value(values: np.ndarray, impute: str) -> float | None:
    if impute == "none":
        return None
    if impute == "mean":
        return float(np.nanmean(values))
    if impute == "median":
        return float(np.nanmedian(values))
    return float(pd.Series(values).mode(dropna=True).iloc[0])  # most_frequent: smallest mode


def _scaling(values: np.ndarray, scale: str) -> tuple[float, float]:
    """(scale, offset) for one column; a constant column gets scale 1."""
    if scale == "standard":
        center, spread = np.nanmean(values), np.nanstd(values)
    elif scale == "minmax":
        center, spread = np.nanmin(values), np.nanmax(values) - np.nanmin(values)
    else:
        return 1.0, 0.0
    if not spread > 1e-12 * max(1.0, abs(center)):
        spread = 1.0
    return float(1.0 / spread), float(-center / spread)


# ---------------------------------------------------------------------- categorical columns
def _fit_categorical(series: pd.Series, name: str, pre: Preprocessor) -> dict[str, Any]:
    strings = _as_strings(series).dropna()
    if len(strings) == 0:
        raise DataError(
            message(
                f"Column {name!r} has no values in the training rows",
                "all missing",
                "at least one category",
                "Drop the column from data.features.",
            )
        )
    counts = strings.value_counts()
    fill = sorted(counts.index[counts == counts.max()])[0]
    if (pre.config.columns.get(name) or ColumnSpec()).impute == "none":
        fill = None  # a missing value then encodes as all zeros, like an unknown category
    categories = sorted(counts.index)
    return {"name": name, "kind": "categorical", "fill": fill, "categories": categories,
            "onehot": pre.config.onehot}  # fmt: skip


def _as_strings(series: pd.Series) -> pd.Series:
    def text(value: Any) -> Any:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return None
        if isinstance(value, float | np.floating) and float(value).is_integer():
            return str(int(value))  # 1.0 read from a CSV with gaps is the category "1"
        return str(value)

    return pd.Series([text(v) for v in series.to_numpy(dtype=object)], index=series.index, dtype=object)


def _output_names(plan: dict[str, Any]) -> list[str]:
    if plan["kind"] == "date":
        return date_names(plan)
    if plan["kind"] == "categorical" and plan["onehot"]:
        return [f"{plan['name']}={c}" for c in plan["categories"]]
    return [plan["name"]]


def _transform_column(series: pd.Series, plan: dict[str, Any]) -> np.ndarray:
    """One raw column -> an (n, k) float64 block."""
    if plan["kind"] == "date":
        return transform_date(series, plan)
    if plan["kind"] == "numeric":
        values = to_numeric(series, plan["name"])
        if plan["fill"] is not None:
            values = np.where(np.isnan(values), plan["fill"], values)
        elif np.isnan(values).any():
            row = row_label(series.index, np.isnan(values))
            raise DataError(
                message(
                    f"Missing value in column {plan['name']!r} at row {row!r}",
                    "NaN",
                    "a number (impute is 'none')",
                    "Set preprocess.impute or fill the data.",
                )
            )
        return (values * plan["scale"] + plan["offset"])[:, None]
    strings = _as_strings(series)
    if plan["fill"] is not None:
        strings = strings.fillna(plan["fill"])
    # unknown or missing -> -1 (pd.Categorical with unknown values is deprecated in pandas)
    codes = pd.Index(plan["categories"], dtype=object).get_indexer(strings.to_numpy(dtype=object))
    codes = codes.astype(np.int64)
    if not plan["onehot"]:
        return codes[:, None].astype(np.float64)  # unknown or missing -> -1
    out = np.zeros((len(codes), len(plan["categories"])))
    known = codes >= 0
    out[np.nonzero(known)[0], codes[known]] = 1.0
    return out


def _describe(X: object) -> str:
    return f"an empty {type(X).__name__}" if hasattr(X, "__len__") and len(X) == 0 else type(X).__name__
