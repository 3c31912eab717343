"""Input checks shared by the metrics and the plots: one DataError shape for every bad array."""

from __future__ import annotations

import numpy as np

from dltoolkit.errors import DataError, message

KINDS = ("binary", "multiclass", "regression")


def check_kind(kind: str) -> str:
    """Return ``kind`` if it is a known task kind, else raise DataError."""
    if kind not in KINDS:
        raise DataError(
            message("Unknown task kind", kind, f"one of {list(KINDS)}", "Use the spec's task.kind.")
        )
    return kind


def _as_array(name: str, values: object, dtype: type = float) -> np.ndarray:
    try:
        return np.asarray(values, dtype=dtype)
    except (TypeError, ValueError) as e:
        raise DataError(message(f"{name} is not numeric", type(values).__name__, "a numeric array")) from e


def _check_lengths(y_true: np.ndarray, output: np.ndarray) -> None:
    if len(y_true) != len(output):
        raise DataError(
            message(
                "y_true and output have different lengths",
                (len(y_true), len(output)),
                "one prediction per target",
                "Pass the predictions of exactly the rows in y_true.",
            )
        )
    if len(y_true) == 0:
        raise DataError(message("No rows to evaluate", 0, "at least one row", "Check the test split."))


def _check_finite(name: str, values: np.ndarray) -> None:
    bad = int((~np.isfinite(values)).sum())
    if bad:
        raise DataError(
            message(
                f"{name} contains NaN or infinite values",
                f"{bad} non-finite value(s)",
                "finite numbers only",
                "Check the model for a diverged loss or the data for missing values.",
            )
        )


def _check_labels(y: np.ndarray, n_classes: int, name: str = "y_true") -> np.ndarray:
    _check_finite(name, y)
    if y.ndim != 1 or np.any(y != np.round(y)):
        raise DataError(
            message(f"{name} is not a 1-D array of class indices", y.shape, "integers of shape (n,)")
        )
    y = y.astype(np.int64)
    if y.min() < 0 or y.max() >= n_classes:
        raise DataError(
            message(
                f"{name} has class indices outside the {n_classes} classes",
                (int(y.min()), int(y.max())),
                f"indices in [0, {n_classes - 1}]",
                "Encode the target with the same label order as the model's outputs.",
            )
        )
    return y


def _check_proba(proba: np.ndarray, kind: str) -> np.ndarray:
    if kind == "binary" and proba.ndim == 1:
        proba = np.stack([1.0 - proba, proba], axis=1)
    if proba.ndim != 2 or (kind == "binary" and proba.shape[1] != 2):
        expected = "shape (n, 2) with columns [1-p, p]" if kind == "binary" else "shape (n, C)"
        raise DataError(message(f"{kind} output has the wrong shape", proba.shape, expected))
    _check_finite("output", proba)
    if proba.min() < 0 or proba.max() > 1 or not np.allclose(proba.sum(axis=1), 1.0, atol=1e-3):
        raise DataError(
            message(
                "output is not a matrix of class probabilities",
                f"values in [{proba.min():.3g}, {proba.max():.3g}]",
                "rows of values in [0, 1] summing to 1",
                "Apply softmax to the logits (sigmoid, then [1-p, p], for binary).",
            )
        )
    return proba


def check_classification(
    kind: str, y_true: object, output: object, classes: list[str] | None
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Validate classification inputs.

    Returns:
        ``(y, proba, classes)``: int64 labels (n,), float64 probabilities (n, C), C class names.
    """
    y, proba = _as_array("y_true", y_true), _as_array("output", output)
    _check_lengths(y, proba)
    proba = _check_proba(proba, kind)
    names = _class_names(classes, proba.shape[1], "probability columns")
    return _check_labels(y, proba.shape[1]), proba, names


def _class_names(classes: list[str] | None, n_classes: int, columns: str) -> list[str]:
    if classes is None:
        return [str(i) for i in range(n_classes)]
    if len(classes) != n_classes:
        raise DataError(
            message(
                f"The number of class names does not match the {columns}",
                f"{len(classes)} names for {n_classes} {columns}",
                "one name per class",
                "Pass the class names in label order (or classes=None).",
            )
        )
    return [str(c) for c in classes]


def check_predicted_labels(
    y_true: object, y_pred: object, classes: list[str] | None
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Validate true and predicted class indices (or probabilities, reduced to their argmax)."""
    y, pred = _as_array("y_true", y_true), _as_array("y_pred", y_pred)
    _check_lengths(y, pred)
    if pred.ndim == 2:
        pred = _check_proba(pred, "multiclass").argmax(axis=1)
    _check_finite("y_true", y)
    _check_finite("y_pred", pred)
    n_classes = len(classes) if classes is not None else int(max(y.max(), pred.max())) + 1
    names = _class_names(classes, n_classes, "classes")
    return _check_labels(y, n_classes), _check_labels(pred, n_classes, "y_pred"), names


def check_regression(y_true: object, output: object) -> tuple[np.ndarray, np.ndarray]:
    """Validate regression inputs; returns float64 arrays of shape (n,)."""
    y, pred = _as_array("y_true", y_true), _as_array("output", output)
    _check_lengths(y, pred)
    for name, values in (("y_true", y), ("output", pred)):
        if values.ndim == 2 and values.shape[1] == 1:
            continue
        if values.ndim != 1:
            raise DataError(
                message(f"regression {name} has the wrong shape", values.shape, "shape (n,) or (n, 1)")
            )
    y, pred = y.reshape(-1), pred.reshape(-1)
    _check_finite("y_true", y)
    _check_finite("output", pred)
    return y, pred
