"""Fixtures shared by every stage's tests: a tiny dataset and a tiny spec."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

import dltoolkit  # noqa: F401  (first: its finder lets Lightning's and torchmetrics' torchvision import work)

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("PYTHONWARNINGS", "ignore")


@pytest.fixture
def tiny_frame() -> pd.DataFrame:
    """120 rows, two numeric features and one categorical; a learnable 3-class target."""
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=120), rng.normal(size=120)
    colour = rng.choice(["red", "green", "blue"], size=120)
    target = np.where(a + b > 0.5, "high", np.where(a + b < -0.5, "low", "mid"))
    return pd.DataFrame({"a": a, "b": b, "colour": colour, "label": target})


@pytest.fixture
def tiny_spec_dict() -> dict:
    return {
        "name": "tiny",
        "task": {"kind": "multiclass", "target": "label"},
        "data": {"source": "frame", "split": {"test": 0.25, "val": 0.2, "seed": 0}},
        "graph": {"nodes": [{"name": "hidden", "op": "linear", "units": 8}, {"name": "act", "op": "relu"}]},
        "train": {"epochs": 3, "batch_size": 16, "optimizer": {"name": "adam", "lr": 0.01}},
    }
