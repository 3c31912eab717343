"""The target: checked against the task, then encoded (class indices or scaled values) and back.

Example:
    >>> enc = TargetEncoder("multiclass").fit([3, 1, 2, 1])
    >>> enc.classes_, enc.transform([1, 3]).tolist(), enc.inverse([2]).tolist()
    (['1', '2', '3'], [0, 2], [3])
"""

from __future__ import annotations

from typing import Any, Literal, Self

import numpy as np
import pandas as pd

from dltoolkit.data._columns import plain, row_label
from dltoolkit.errors import DataError, message
from dltoolkit.spec import Scale, TaskSpec

STATE_VERSION = 1
MAX_FLOAT_CLASSES = 20  # a float target with more distinct values looks continuous


def check_target(y: pd.Series, task: TaskSpec) -> pd.Series:
    """Check the target against the task; return it (integral floats become ints for classes).

    Raises:
        DataError: missing values, a continuous target for classification, a non-numeric target
            for regression, fewer than 2 classes, or more than 2 classes with ``kind: binary``.
    """
    missing = y.isna()
    if missing.any():
        first = row_label(y.index, missing.to_numpy())
        raise DataError(
            message(
                f"Missing values in the target {y.name!r}",
                f"{int(missing.sum())} missing, first at row {first!r}",
                "a value in every row",
                "Drop or fill those rows.",
            )
        )
    if task.kind == "regression":
        return _check_regression(y)
    return _check_classes(y, task)


def _check_regression(y: pd.Series) -> pd.Series:
    if pd.api.types.is_bool_dtype(y) or not pd.api.types.is_numeric_dtype(y):
        example = y.iloc[0]
        raise DataError(
            message(
                f"Non-numeric target {y.name!r} for a regression task",
                example,
                "numbers",
                "Use task.kind: binary or multiclass for labels.",
            )
        )
    return y.astype(np.float64)


def _check_classes(y: pd.Series, task: TaskSpec) -> pd.Series:
    if pd.api.types.is_float_dtype(y):
        values = y.to_numpy(dtype=np.float64)
        integral = np.all(values == np.round(values))
        # Float targets with many values are quantities even when they happen to be whole numbers
        # (e.g. scikit-learn's diabetes progression scores).
        if len(np.unique(values)) > MAX_FLOAT_CLASSES:
            raise DataError(
                message(
                    f"Continuous target {y.name!r} for a {task.kind} task",
                    f"{len(np.unique(values))} distinct numeric values",
                    "class labels",
                    "Use task.kind: regression.",
                )
            )
        if integral:
            y = y.astype(np.int64)
    n_classes = y.nunique()
    if n_classes < 2:
        raise DataError(
            message(
                f"Only one class in the target {y.name!r}",
                plain(y.iloc[0]),
                "at least 2 classes",
                "Check the target column.",
            )
        )
    if task.kind == "binary" and n_classes > 2:
        raise DataError(
            message(
                f"{n_classes} classes in the target {y.name!r} for a binary task",
                sorted(map(str, y.unique()))[:10],
                "2 classes",
                "Use task.kind: multiclass.",
            )
        )
    return y


class TargetEncoder:
    """Encode the target for training and decode predictions.

    Classification maps the sorted unique training labels to indices ``0..C-1`` (``classes_`` are
    their strings); regression scales values per ``scale`` (standard / minmax / none).

    Args:
        kind: The task kind: ``"binary"``, ``"multiclass"`` or ``"regression"``.
        scale: Scaling of regression targets (the spec's ``preprocess.target_scale``).
    """

    def __init__(self, kind: str, scale: Scale = "standard") -> None:
        self.kind = kind
        self.scale = scale

    @property
    def is_classification(self) -> bool:
        return self.kind != "regression"

    def fit(self, y: Any) -> Self:
        """Learn the classes or the scaling from the training targets."""
        values = np.asarray(y)
        if self.is_classification:
            labels = np.unique(values)
            self.labels_ = [plain(v) for v in labels]
            self.dtype_ = str(values.dtype) if values.dtype.kind in "biuf" else "object"
            self.classes_ = [str(v) for v in self.labels_]
        else:
            values = values.astype(np.float64)
            self.center_, self.spread_ = _scaling(values, self.scale)
        return self

    def transform(self, y: Any) -> np.ndarray:
        """Class indices (int64) or scaled values (float32, shape (n,))."""
        values = np.asarray(y)
        if not self.is_classification:
            return ((values.astype(np.float64) - self.center_) / self.spread_).astype(np.float32)
        index = {label: i for i, label in enumerate(self.labels_)}
        codes = [index.get(plain(v), -1) for v in values]
        out = np.asarray(codes, dtype=np.int64)
        if (out < 0).any():
            bad = plain(values[out < 0][0])
            raise DataError(
                message(
                    "A label not seen in the training rows",
                    bad,
                    f"one of {self.classes_}",
                    "Keep data.split.stratify: true or add training rows of that class.",
                )
            )
        return out

    def inverse(self, values: Any) -> np.ndarray:
        """Original labels from class indices, or original units from scaled values."""
        values = np.asarray(values)
        if not self.is_classification:
            return values.astype(np.float64) * self.spread_ + self.center_
        return np.asarray(self.labels_, dtype=self.dtype_)[values.astype(np.int64)]

    @property
    def scale_params(self) -> tuple[float, float]:
        """Regression: ``(center, spread)`` with ``value = scaled * spread + center``; else (0, 1)."""
        return (0.0, 1.0) if self.is_classification else (self.center_, self.spread_)

    def class_weights(
        self, weights: Literal["balanced"] | dict[str, float] | None, codes: Any
    ) -> list[float] | None:
        """Loss weights per class index from ``task.class_weights`` and the training codes.

        Args:
            weights: ``"balanced"`` (scikit-learn's ``compute_class_weight``: n_rows / (n_classes *
                rows of the class)), ``{label: weight}`` (others weigh 1) or None.
            codes: the training split's class indices.

        Raises:
            DataError: a label in ``weights`` is not a class of the target.
        """
        if weights is None or not self.is_classification:
            return None
        if weights == "balanced":
            from sklearn.utils.class_weight import compute_class_weight

            k = np.arange(len(self.classes_))
            return [float(w) for w in compute_class_weight("balanced", classes=k, y=np.asarray(codes))]
        unknown = [label for label in weights if label not in self.classes_]
        if unknown:
            raise DataError(
                message(
                    "Unknown class in task.class_weights",
                    unknown[0],
                    f"one of the target's labels {self.classes_}",
                    "Use the labels as they appear in the target column, or 'balanced'.",
                )
            )
        return [float(weights.get(label, 1.0)) for label in self.classes_]

    @property
    def n_outputs(self) -> int:
        """Model outputs: the number of classes (multiclass) or 1 (binary, regression)."""
        return len(self.classes_) if self.kind == "multiclass" else 1

    def to_state(self) -> dict[str, Any]:
        """The fitted state as plain JSON data."""
        state: dict[str, Any] = {"version": STATE_VERSION, "kind": self.kind, "scale": self.scale}
        if self.is_classification:
            state.update(labels=list(self.labels_), dtype=self.dtype_)
        else:
            state.update(center=self.center_, spread=self.spread_)
        return state

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> TargetEncoder:
        """Restore a fitted encoder from :meth:`to_state` output."""
        if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
            got = state.get("version") if isinstance(state, dict) else type(state).__name__
            raise DataError(message("Unsupported target state", got, f"a dict with version {STATE_VERSION}"))
        enc = cls(state["kind"], state["scale"])
        if enc.is_classification:
            enc.labels_, enc.dtype_ = list(state["labels"]), state["dtype"]
            enc.classes_ = [str(v) for v in enc.labels_]
        else:
            enc.center_, enc.spread_ = float(state["center"]), float(state["spread"])
        return enc

    def __repr__(self) -> str:
        return f"TargetEncoder(kind={self.kind!r}, scale={self.scale!r})"


def _scaling(values: np.ndarray, scale: str) -> tuple[float, float]:
    if scale == "standard":
        center, spread = float(values.mean()), float(values.std())
    elif scale == "minmax":
        center, spread = float(values.min()), float(values.max() - values.min())
    else:
        return 0.0, 1.0
    return center, spread if spread > 1e-12 * max(1.0, abs(center)) else 1.0
