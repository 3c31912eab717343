"""Shared fixtures of the deploy tests: tiny bundles trained once per session with dltoolkit.api.run.

Each bundle is a real short Lightning run (2-3 epochs, no plots) of a bundled recipe, so export,
ensembles and the server are tested on real models, preprocessing and test splits.
"""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dltoolkit.api import run
from dltoolkit.bundle import load


def _train(root: Path, name: str, recipe: str | dict, data=None, **overrides) -> Path:
    result = run(recipe, data, out=root / name, overrides={"train.epochs": 3, **overrides}, plots=False)
    return result.bundle


@pytest.fixture(scope="session")
def bundles_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("bundles")


@pytest.fixture(scope="session")
def wine_bundle(bundles_dir) -> Path:
    """Multiclass (3 classes, 13 numeric columns)."""
    return _train(bundles_dir, "wine", "wine")


@pytest.fixture(scope="session")
def wine_bundle_b(bundles_dir) -> Path:
    """A second wine model (other seed and width) for ensembles."""
    return _train(bundles_dir, "wine-b", "wine", **{"train.seed": 1, "graph.nodes.hidden.units": 8})


@pytest.fixture(scope="session")
def cancer_bundle(bundles_dir) -> Path:
    """Binary (one logit, sigmoid), 30 numeric columns."""
    return _train(bundles_dir, "cancer", "breast-cancer", **{"train.epochs": 2})


@pytest.fixture(scope="session")
def diabetes_bundle(bundles_dir) -> Path:
    """Regression with a standardised target mapped back to original units."""
    return _train(bundles_dir, "diabetes", "diabetes")


@pytest.fixture(scope="session")
def diabetes_bundle_b(bundles_dir) -> Path:
    return _train(bundles_dir, "diabetes-b", "diabetes", **{"train.seed": 1, "graph.nodes.hidden.units": 8})


def mixed_frame(n: int = 120, seed: int = 0) -> pd.DataFrame:
    """Two numeric columns (``a`` with gaps) and a categorical ``color``; a binary target."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=n)
    b = rng.normal(size=n)
    color = rng.choice(["red", "green", "blue"], size=n)
    y = ((a + b + (color == "red")) > 0.5).astype(int)
    a[::10] = np.nan
    return pd.DataFrame({"a": a, "b": b, "color": color, "y": y})


MIXED_SPEC = {
    "name": "mixed",
    "task": {"kind": "binary", "target": "y"},
    "data": {"source": "frame"},
    # a: imputed (null allowed); b: impute none (null refused); color: one-hot categories
    "preprocess": {"columns": {"b": {"impute": "none"}}},
    "graph": {"nodes": [{"name": "hidden", "op": "linear", "units": 8}, {"name": "act", "op": "relu"}]},
    "train": {"epochs": 2, "batch_size": 16},
}


@pytest.fixture(scope="session")
def mixed_bundle(bundles_dir) -> Path:
    """Numeric columns with and without imputation plus a categorical column (not exportable)."""
    return _train(bundles_dir, "mixed", MIXED_SPEC, mixed_frame(), **{"train.epochs": 2})


@pytest.fixture(scope="session")
def wine(wine_bundle):
    return load(wine_bundle)


@pytest.fixture(scope="session")
def diabetes(diabetes_bundle):
    return load(diabetes_bundle)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _records(frame: pd.DataFrame) -> list[dict]:
    return [
        {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in row.items()}
        for row in frame.to_dict("records")
    ]


@pytest.fixture(scope="session")
def free_port():
    """``free_port() -> int``: a free TCP port on the loopback interface."""
    return _free_port


@pytest.fixture(scope="session")
def to_records():
    """``to_records(frame) -> list[dict]``: rows as JSON-ready records (NaN as None)."""
    return _records
