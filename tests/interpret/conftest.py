"""Shared fixtures of the explain tests: a bundle trained on data whose answer is planted.

The target depends on ``x0`` strongly and on the categorical ``colour`` (red or not) less; ``x1..x4``
are noise. A real 3-epoch run, trained once per session.
"""

from __future__ import annotations

import matplotlib
import numpy as np
import pandas as pd
import pytest

matplotlib.use("Agg")

PLANTED_SPEC = {
    "name": "planted",
    "task": {"kind": "binary", "target": "y"},
    "data": {"source": "frame", "split": {"test": 0.3, "val": 0.15, "seed": 0}},
    "graph": {"nodes": [{"name": "hidden", "op": "linear", "units": 16}, {"name": "act", "op": "relu"}]},
    "train": {"epochs": 3, "batch_size": 32, "optimizer": {"name": "adam", "lr": 0.05}},
}


def planted_frame(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({f"x{i}": rng.normal(size=n) for i in range(5)})
    frame["colour"] = rng.choice(["red", "green", "blue"], size=n)
    frame["y"] = np.where(2.0 * frame["x0"] + 1.5 * (frame["colour"] == "red") > 0.5, "yes", "no")
    return frame


@pytest.fixture(scope="session")
def planted(tmp_path_factory):
    """(bundle path, the data it was trained from)."""
    from dltoolkit.api import run

    frame = planted_frame()
    result = run(PLANTED_SPEC, frame, out=tmp_path_factory.mktemp("planted") / "run", plots=False)
    return result.bundle, frame
