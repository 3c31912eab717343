"""Shared fixtures of the evaluate tests: random predictions per task kind and a tiny history."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

CLASSES = {"binary": ["neg", "pos"], "multiclass": ["cat", "dog", "bird"]}


def _classification(kind: str, n: int = 200, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Labels (n,) and row-normalised probabilities (n, C), loosely correlated with the labels."""
    rng = np.random.default_rng(seed)
    k = len(CLASSES[kind])
    y = rng.integers(0, k, size=n)
    logits = rng.normal(size=(n, k)) + 1.5 * np.eye(k)[y]
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return y, proba


def _regression(n: int = 200, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Targets around 10 and predictions with unit noise."""
    rng = np.random.default_rng(seed)
    y = rng.normal(10.0, 3.0, size=n)
    return y, y + rng.normal(0.0, 1.0, size=n)


@pytest.fixture
def classes() -> dict[str, list[str]]:
    """Class names per classification kind."""
    return CLASSES


@pytest.fixture
def make_classification():
    """``make_classification(kind, n=200, seed=0) -> (y, proba)``."""
    return _classification


@pytest.fixture
def make_regression():
    """``make_regression(n=200, seed=0) -> (y, pred)``."""
    return _regression


@pytest.fixture
def history() -> pd.DataFrame:
    """Five epochs with losses, metrics, a learning rate and one gap (val_acc missing at epoch 0)."""
    return pd.DataFrame(
        {
            "epoch": range(5),
            "train_loss": [1.0, 0.7, 0.5, 0.4, 0.35],
            "val_loss": [1.1, 0.8, 0.6, 0.55, 0.5],
            "train_acc": [0.5, 0.6, 0.7, 0.75, 0.8],
            "val_acc": [np.nan, 0.55, 0.65, 0.7, 0.72],
            "lr": [1e-3] * 5,
        }
    )
