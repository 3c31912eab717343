"""Shared fixtures of the data tests: a spec factory and a small mixed-type frame."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from dltoolkit.spec import Spec


def build_spec(kind: str = "multiclass", source: str = "frame", **sections: Any) -> Spec:
    """A minimal spec; ``sections`` update ``data``, ``preprocess`` or ``task`` dicts."""
    data = {"task": {"kind": kind}, "data": {"source": source}, "graph": {"nodes": []}}
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    return Spec.from_dict(data)


@pytest.fixture
def make_spec():
    return build_spec


@pytest.fixture
def mixed_frame() -> pd.DataFrame:
    """60 rows: two numeric columns (one with gaps), one categorical, a 3-class target."""
    rng = np.random.default_rng(0)
    n = 60
    frame = pd.DataFrame(
        {
            "a": rng.normal(5.0, 2.0, n),
            "b": rng.uniform(0.0, 10.0, n),
            "color": rng.choice(["red", "green", "blue"], n),
            "target": np.arange(n) % 3,
        }
    )
    frame.loc[[3, 10, 20], "b"] = np.nan
    return frame
