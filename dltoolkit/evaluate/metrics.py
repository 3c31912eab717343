"""Test metrics computed with torchmetrics' functional API, returned as plain JSON-ready data.

torch and torchmetrics are imported inside the functions: importing torchmetrics pulls in
matplotlib, and ``import dltoolkit.evaluate`` must stay light.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

from dltoolkit.evaluate._checks import check_classification, check_kind, check_regression


def evaluate(kind: str, y_true: np.ndarray, output: np.ndarray, classes: list[str] | None = None) -> dict:
    """Compute the standard test metrics of a task.

    Args:
        kind: ``"binary"``, ``"multiclass"`` or ``"regression"``.
        y_true: Targets, shape (n,): class indices, or values in original units.
        output: Classification: probabilities (n, C) (binary: columns ``[1-p, p]``; a vector of
            ``p`` is also accepted). Regression: predictions (n,) in original units.
        classes: Display names of the classes in label order; default ``"0"``, ``"1"``...

    Returns:
        Classification: ``accuracy`` (fraction correct) and macro ``precision``, ``recall``,
        ``f1``; ``roc_auc`` (binary AUC, or macro one-vs-rest AUC over the classes present in
        y_true; None if y_true holds one class only); ``per_class``; ``confusion_matrix`` (rows
        true, columns predicted); ``n``. Regression: ``mse``, ``rmse``, ``mae``, ``r2`` (None for
        a single row), ``n``. Both: ``warnings``, a list of sentences (classification: one per
        class of y_true that is never predicted). Every number is a plain Python float or int.

    Raises:
        DataError: unknown kind, mismatched lengths, wrong shapes, non-finite values.

    Example:
        >>> m = evaluate("binary", np.array([0, 1, 1]), np.array([[.9, .1], [.2, .8], [.6, .4]]))
        >>> m["accuracy"], m["confusion_matrix"]
        (0.6666666865348816, [[1, 0], [1, 1]])
    """
    if check_kind(kind) == "regression":
        return _regression(*check_regression(y_true, output))
    return _classification(kind, *check_classification(kind, y_true, output, classes))


def _classification(kind: str, y: np.ndarray, proba: np.ndarray, classes: list[str]) -> dict:
    import torch
    from torchmetrics.functional import classification as tmc

    target, probs = torch.from_numpy(y), torch.from_numpy(proba)
    preds, k = probs.argmax(dim=1), len(classes)
    out: dict[str, Any] = dict(classification_scores(kind, target, probs))
    out["per_class"] = _per_class(preds, target, classes)
    out["confusion_matrix"] = tmc.multiclass_confusion_matrix(preds, target, num_classes=k).tolist()
    out["n"] = len(y)
    out["warnings"] = never_predicted(out["confusion_matrix"], classes)
    return out


def classification_scores(kind: str, target: Any, probs: Any) -> dict[str, float | None]:
    """The scalar classification metrics: one definition for the test metrics and ``val_*``.

    Args:
        kind: ``"binary"`` or ``"multiclass"``.
        target: class indices, an int64 tensor of shape (n,).
        probs: class probabilities, a float tensor of shape (n, C) (binary: ``[1-p, p]``).

    Returns:
        ``accuracy`` (fraction correct), macro ``precision``, ``recall`` and ``f1`` over the C
        classes of the predicted class (the argmax, so 0.5 is the binary threshold), and
        ``roc_auc`` (see :func:`evaluate`; None when ``target`` holds one class only).
    """
    from torchmetrics.functional import classification as tmc

    preds, k = probs.argmax(dim=1), probs.shape[1]
    # validate_args=False: the inputs are built here (argmax indices, softmax probabilities), and
    # torchmetrics' checks cost more than the metrics themselves, every epoch (results unchanged)
    options: dict[str, Any] = {"num_classes": k, "validate_args": False}
    scores = {
        "accuracy": tmc.multiclass_accuracy(preds, target, average="micro", **options),
        "precision": tmc.multiclass_precision(preds, target, average="macro", **options),
        "recall": tmc.multiclass_recall(preds, target, average="macro", **options),
        "f1": tmc.multiclass_f1_score(preds, target, average="macro", **options),
    }
    out: dict[str, float | None] = {name: float(v) for name, v in scores.items()}
    out["roc_auc"] = _roc_auc(kind, probs, target)
    return out


def never_predicted(confusion: list[list[int]], classes: list[str]) -> list[str]:
    """A warning for each class in the true labels that the model never predicts.

    Example:
        >>> never_predicted([[5, 0], [2, 0]], ["common", "rare"])[0][:40]
        "Class 'rare' (2 rows) is never predicted"
    """
    matrix = np.asarray(confusion)
    support, predicted = matrix.sum(axis=1), matrix.sum(axis=0)
    return [
        f"Class {name!r} ({int(support[i])} rows) is never predicted on these rows: its recall "
        "is 0. Set task.class_weights: balanced, add rows of that class, or train longer."
        for i, name in enumerate(classes)
        if support[i] > 0 and predicted[i] == 0
    ]


def _roc_auc(kind: str, probs: Any, target: Any) -> float | None:
    """Binary AUC, or the macro one-vs-rest AUC over the classes present in ``target``."""
    import torch
    from torchmetrics.functional import classification as tmc

    present = torch.unique(target)
    if len(present) < 2:
        return None
    if kind == "binary":
        return float(tmc.binary_auroc(probs[:, 1], target, validate_args=False))
    with warnings.catch_warnings():  # absent classes warn; they are left out of the mean below
        warnings.simplefilter("ignore", UserWarning)
        per_class = tmc.multiclass_auroc(
            probs, target, num_classes=probs.shape[1], average=None, validate_args=False
        )
    return float(per_class[present].mean())


def _per_class(preds: Any, target: Any, classes: list[str]) -> dict[str, dict]:
    from torchmetrics.functional import classification as tmc

    k = len(classes)
    columns = {
        "precision": tmc.multiclass_precision(preds, target, num_classes=k, average=None).tolist(),
        "recall": tmc.multiclass_recall(preds, target, num_classes=k, average=None).tolist(),
        "f1": tmc.multiclass_f1_score(preds, target, num_classes=k, average=None).tolist(),
    }
    support = np.bincount(target.numpy(), minlength=k)
    return {
        name: {**{m: float(v[i]) for m, v in columns.items()}, "support": int(support[i])}
        for i, name in enumerate(classes)
    }


def _regression(y: np.ndarray, pred: np.ndarray) -> dict:
    import torch

    out: dict[str, Any] = dict(regression_scores(torch.from_numpy(y), torch.from_numpy(pred)))
    out["n"] = len(y)
    out["warnings"] = []
    return out


def regression_scores(target: Any, preds: Any) -> dict[str, float | None]:
    """The scalar regression metrics: one definition for the test metrics and ``val_*``.

    Args:
        target, preds: float tensors of shape (n,), both in the target's original units.

    Returns:
        ``mse``, ``rmse``, ``mae`` and ``r2`` (None for a single row), in the target's units.
    """
    from torchmetrics.functional import mean_absolute_error, mean_squared_error, r2_score

    mse = float(mean_squared_error(preds, target))
    return {
        "mse": mse,
        "rmse": mse**0.5,
        "mae": float(mean_absolute_error(preds, target)),
        "r2": float(r2_score(preds, target)) if len(target) >= 2 else None,
    }


def metrics_table(metrics: dict) -> pd.DataFrame:
    """One row per scalar metric of an :func:`evaluate` result, for a notebook.

    Nested entries (``per_class``, ``confusion_matrix``) are left out; a None value stays None.

    Example:
        >>> metrics_table({"mse": 0.25, "n": 10, "per_class": {}})["value"].to_dict()
        {'mse': 0.25, 'n': 10}
    """
    rows = {k: v for k, v in metrics.items() if v is None or isinstance(v, int | float)}
    table = pd.DataFrame({"value": pd.Series(rows, dtype=object)})
    table.index.name = "metric"
    return table
