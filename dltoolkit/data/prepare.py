"""From a spec to training-ready tensors: load, check, split, fit preprocessing on train, transform.

Example:
    >>> from dltoolkit.spec import Spec
    >>> spec = Spec.from_dict({"task": {"kind": "multiclass"}, "data": {"source": "iris"},
    ...                        "graph": {"nodes": []}})
    >>> p = prepare(spec)
    >>> p.input_shape, p.n_outputs, p.classes
    ((4,), 3, ['0', '1', '2'])
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from dltoolkit.data._columns import column_kinds, plain
from dltoolkit.data.images.source import is_image_source, source_format
from dltoolkit.data.images.transform import ImagePreprocessor
from dltoolkit.data.load import load_raw
from dltoolkit.data.preprocess import Preprocessor
from dltoolkit.data.target import TargetEncoder, check_target
from dltoolkit.errors import DataError, message
from dltoolkit.spec import Spec, SplitSpec


@dataclass
class Prepared:
    """The three splits as tensors, plus what is needed to map new data and predictions.

    Features are float32 (int64 token ids for text) of shape ``(n, *input_shape)``; targets are
    int64 class indices (classification) or float32 scaled values of shape ``(n,)`` (regression).
    A streamed image source has :class:`~dltoolkit.data.images.stream.ImageFiles` datasets of
    ``(input, target)`` pairs instead of feature tensors (see :mod:`dltoolkit.data.images.prepare`),
    a streamed table :class:`~dltoolkit.data.tables.stream.TableRows` (see
    :mod:`dltoolkit.data.tables.prepare`; its ``raw_test`` then holds the first test rows only).
    """

    X_train: torch.Tensor | Dataset
    y_train: torch.Tensor
    X_val: torch.Tensor | Dataset
    y_val: torch.Tensor
    X_test: torch.Tensor | Dataset
    y_test: torch.Tensor
    raw_test: pd.DataFrame  # the raw test features, original columns (images: their paths)
    y_test_raw: np.ndarray  # the raw test target: original labels or units
    preprocessor: Preprocessor | ImagePreprocessor  # fitted on the training split only
    target: TargetEncoder  # fitted on the training split only
    input_shape: tuple[int, ...]
    input_dtype: torch.dtype
    n_outputs: int  # multiclass: the number of classes; binary and regression: 1
    classes: (
        list[str] | None
    )  # display names in index order (task.class_names, else the labels); None: regression
    class_weights: list[float] | None = None  # loss weight per class index (task.class_weights)

    @classmethod
    def of(
        cls,
        spec: Spec,
        X: dict[str, Any],
        y: dict[str, torch.Tensor],
        raw_test: pd.DataFrame,
        y_test_raw: np.ndarray,
        preprocessor: Preprocessor | ImagePreprocessor,
        target: TargetEncoder,
    ) -> Prepared:
        """The prepared data of the ``train``/``val``/``test`` inputs ``X`` and encoded targets ``y``
        (tensors, or streamed datasets), with what follows from the fitted preprocessing and target:
        input shape and dtype, outputs, class names and class weights."""
        return cls(
            X_train=X["train"],
            y_train=y["train"],
            X_val=X["val"],
            y_val=y["val"],
            X_test=X["test"],
            y_test=y["test"],
            raw_test=raw_test,
            y_test_raw=y_test_raw,
            preprocessor=preprocessor,
            target=target,
            input_shape=preprocessor.input_shape,
            input_dtype=preprocessor.input_dtype,
            n_outputs=target.n_outputs,
            classes=(spec.task.class_names or list(target.classes_)) if target.is_classification else None,
            class_weights=target.class_weights(spec.task.class_weights, y["train"].numpy()),
        )


def prepare(spec: Spec, data: object = None) -> Prepared:
    """Load the data, check it against the task, split it and fit preprocessing on the train split.

    With ``data.split.test: 0`` the test split is the training split, and with ``data.split.val: 0``
    the validation split is the training split (useful for tiny data such as ``seed_linear``).

    Args:
        spec: The experiment spec.
        data: As for :func:`load_raw`: None, a DataFrame, or ``(X, y)`` arrays.

    Raises:
        DataError: the data does not fit the spec (each message says what and how to fix it).
    """
    if data is None and is_image_source(spec):
        from dltoolkit.data.images.prepare import prepare_images

        return prepare_images(spec)
    if data is None and source_format(spec) == "table_files":
        from dltoolkit.data.tables.prepare import prepare_table_files

        return prepare_table_files(spec)
    return prepare_frame(spec, data)


def prepare_frame(spec: Spec, data: object = None) -> Prepared:
    """:func:`prepare` for a table in memory: the spec's bundled dataset or CSV file, or ``data``."""
    X, y = load_raw(spec, data)
    y = check_target(y, spec.task)
    if spec.preprocess.text is None:
        column_kinds(X, spec.preprocess, spec.data.categorical)  # fail early on bad columns
    train, val, test = split_positions(spec, y)
    pre = Preprocessor.from_spec(spec).fit(X.iloc[train])
    target = TargetEncoder(spec.task.kind, spec.preprocess.target_scale).fit(y.iloc[train])
    check_class_names(spec, target)
    roles = (("train", train), ("val", val), ("test", test))
    inputs = {role: torch.from_numpy(pre.transform(X.iloc[rows])) for role, rows in roles}
    encoded = {role: torch.from_numpy(target.transform(y.iloc[rows])) for role, rows in roles}
    return Prepared.of(spec, inputs, encoded, X.iloc[test].copy(), y.iloc[test].to_numpy(), pre, target)


def split_positions(spec: Spec, y: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Positions of the train, validation and test rows the spec's split draws from target ``y``."""
    return split_indices(_strata(y, spec), spec.data.split, spec.data.split.stratify)


def _strata(y: pd.Series, spec: Spec) -> pd.Series:
    """What a stratified split keeps in proportion: the classes, or quantile bins of a regression target.

    Binning a continuous target keeps each split's range of targets representative, so a test
    split cannot by chance gather the extreme values.
    """
    if spec.task.is_classification or not spec.data.split.stratify:
        return y
    bins = min(spec.data.split.bins, max(1, len(y) // 10))
    return pd.Series(pd.qcut(y.rank(method="first"), bins, labels=False), index=y.index, name=y.name)


def split_indices(
    y: pd.Series, split: SplitSpec, stratify: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Positions of the train, validation and test rows (a zero fraction reuses the train rows).

    The test rows are drawn first, then the validation rows from the rest; both with scikit-learn's
    ``train_test_split``, stratified by class when ``stratify``.
    """
    n = len(y)
    n_test = math.ceil(split.test * n)
    n_val = math.ceil(split.val * (n - n_test))
    if n - n_test - n_val < 1:
        raise DataError(
            message(
                "The split leaves no training rows",
                f"test={split.test}, val={split.val} of {n} rows",
                "fractions that leave at least 1 training row",
                "Lower data.split.test / data.split.val or add data.",
            )
        )
    if stratify:
        _check_stratifiable(y, split)
    rest = np.arange(n)
    test = _draw(rest, y, split.test, split.seed, stratify, "test")
    rest = np.setdiff1d(rest, test) if split.test > 0 else rest
    val = _draw(rest, y, split.val, split.seed, stratify, "validation")
    train = np.setdiff1d(rest, val) if split.val > 0 else rest
    return train, (val if split.val > 0 else train), (test if split.test > 0 else train)


def _draw(
    rows: np.ndarray, y: pd.Series, fraction: float, seed: int, stratify: bool, role: str
) -> np.ndarray:
    """Draw ``fraction`` of ``rows`` for ``role`` (an empty array when the fraction is 0)."""
    if fraction <= 0:
        return rows[:0]
    from sklearn.model_selection import train_test_split

    labels = y.iloc[rows].to_numpy() if stratify else None
    if labels is not None:
        _check_split_size(labels, fraction, role)
    _, drawn = train_test_split(rows, test_size=fraction, random_state=seed, stratify=labels)
    return np.sort(drawn)


def _check_stratifiable(y: pd.Series, split: SplitSpec) -> None:
    """Every class needs a row for each stratified draw plus one for training."""
    need = 1 + (split.test > 0) + (split.val > 0)
    if need == 1:
        return
    counts = y.value_counts()
    small = counts[counts < need]
    if len(small):
        label, count = plain(small.index[0]), int(small.iloc[0])
        raise DataError(
            message(
                f"Class {label!r} is too small to stratify the split",
                f"{count} row(s)",
                f"at least {need} rows per class",
                "Set data.split.stratify: false or add rows of that class.",
            )
        )


def _check_split_size(labels: np.ndarray, fraction: float, role: str) -> None:
    """A stratified draw needs room for every class on both sides (scikit-learn's rule)."""
    n, n_classes = len(labels), len(np.unique(labels))
    n_drawn = math.ceil(fraction * n)
    small = min(np.unique(labels, return_counts=True)[1])
    if n_drawn < n_classes or n - n_drawn < n_classes or small < 2:
        raise DataError(
            message(
                f"The stratified {role} split cannot hold every class",
                f"{n_drawn} of {n} rows for {n_classes} classes (smallest class: {small})",
                "at least one row per class on each side",
                "Raise the split fraction, add data or set data.split.stratify: false.",
            )
        )


def check_class_names(spec: Spec, target: TargetEncoder) -> None:
    names = spec.task.class_names
    if names is not None and target.is_classification and len(names) != len(target.classes_):
        raise DataError(
            message(
                "task.class_names does not match the classes",
                names,
                f"{len(target.classes_)} names for classes {target.classes_}",
                "Fix or remove task.class_names.",
            )
        )
