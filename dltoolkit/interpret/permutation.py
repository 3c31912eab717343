"""Permutation importance of a bundle's original input columns, with scikit-learn's own loop.

:func:`sklearn.inspection.permutation_importance` takes any object with ``fit`` and a scorer. It
accepts a raw DataFrame and shuffles one DataFrame column at a time (``X.iloc[idx, col]``), so a
categorical column is permuted as one column whatever its one-hot width, and the importances come
out in the original column names. :class:`BundleClassifier` / :class:`BundleRegressor` are the thin
scikit-learn view of a bundle it needs (:func:`bundle_estimator`): ``predict`` / ``predict_proba`` on raw rows, ``fit``
refused (the model is trained).

Example:
    >>> table = permutation_importance(model, rows.raw, rows.y_index, repeats=5)  # doctest: +SKIP
    >>> table.index[0]                                  # the column whose shuffling hurts most  # doctest: +SKIP
    'proline'
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin

from dltoolkit.bundle import Predictor
from dltoolkit.errors import DLToolkitError, message

SCORING = {"classification": "accuracy", "regression": "r2"}  # the default score per task
MAX_ROWS = 2000  # a larger test split is subsampled (seeded) for the permutations


class _Bundle(BaseEstimator):
    def __init__(self, predictor: Predictor) -> None:
        self.predictor = predictor

    def fit(self, X: Any, y: Any = None) -> _Bundle:
        raise DLToolkitError("A bundle is already trained: retrain it with dltoolkit run, not fit().")

    def _output(self, X: pd.DataFrame) -> np.ndarray:
        with warnings.catch_warnings():  # a shuffled column holds the same values: nothing new to report
            warnings.simplefilter("ignore")
            return self.predictor.output(self.predictor.transform(X))


class BundleClassifier(ClassifierMixin, _Bundle):
    """A trained classification bundle as a fitted scikit-learn classifier over raw rows.

    It predicts class indices ``0..C-1`` (``classes_``), so ``y`` is the test split's class indices.
    """

    @property
    def classes_(self) -> np.ndarray:
        return np.arange(len(self.predictor.target.classes_))

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return self._output(X).argmax(1)

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        return self._output(X)


class BundleRegressor(RegressorMixin, _Bundle):
    """A trained regression bundle as a fitted scikit-learn regressor: values in original units."""

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return self.predictor.target.inverse(self._output(X))


def bundle_estimator(model: Predictor) -> BundleClassifier | BundleRegressor:
    """The scikit-learn view of ``model`` that fits its task."""
    return (BundleClassifier if model.target.is_classification else BundleRegressor)(model)


def permutation_importance(
    model: Predictor,
    X: pd.DataFrame,
    y: np.ndarray,
    *,
    repeats: int = 5,
    scoring: str | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """How much the test score drops when one original column is shuffled, ``repeats`` times each.

    Args:
        model: the trained bundle.
        X: raw test rows in the model's input columns.
        y: class indices (classification) or values in original units (regression).
        repeats: shuffles per column; their spread is the ``std`` column.
        scoring: a scikit-learn scorer name (``"neg_log_loss"``, ``"roc_auc_ovr"``...); default
            accuracy for classification, R² for regression.
        seed: seeds the shuffles (and the subsample of a test split over ``MAX_ROWS`` rows).

    Returns:
        One row per input column, most important first: ``importance`` (the mean drop), ``std``,
        then ``repeat_1..repeat_k``. The frame's ``attrs["scoring"]`` names the score.
    """
    from sklearn.inspection import permutation_importance as sk_permutation_importance

    if not isinstance(repeats, int) or repeats < 1:
        raise DLToolkitError(message("Invalid number of repeats", repeats, "an integer >= 1"))
    task = "classification" if model.target.is_classification else "regression"
    scoring = scoring or SCORING[task]
    if len(X) > MAX_ROWS:
        keep = np.random.default_rng(seed).choice(len(X), MAX_ROWS, replace=False)
        X, y = X.iloc[keep], np.asarray(y)[keep]
    result = sk_permutation_importance(
        bundle_estimator(model), X, y, scoring=scoring, n_repeats=repeats, random_state=seed
    )
    table = pd.DataFrame(
        result.importances, index=pd.Index(model.input_columns, name="feature"),
        columns=[f"repeat_{i + 1}" for i in range(repeats)],
    )  # fmt: skip
    table.insert(0, "std", result.importances_std)
    table.insert(0, "importance", result.importances_mean)
    table = table.sort_values("importance", ascending=False, kind="stable")
    table.attrs["scoring"] = scoring
    return table
