"""Every bad input of the core issue fails before training, with what, received, expected and a fix."""

import numpy as np
import pandas as pd
import pytest

from dltoolkit.api import run
from dltoolkit.errors import DataError, GraphError, SpecError, UnknownNameError

BASE = {
    "task": {"kind": "multiclass", "target": "target"},
    "data": {"source": "wine"},
    "graph": {"nodes": [{"name": "hidden", "op": "linear", "units": 8}]},
    "train": {"epochs": 1},
}


def spec(**patch):
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in BASE.items()}
    for key, value in patch.items():
        section, field = key.split("__")
        out[section] = {**out[section], field: value}
    return out


def frame_with(column, values):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=40), "target": np.repeat(["a", "b"], 20)})
    frame[column] = values
    return frame


CASES = [
    (
        "unknown-recipe",
        "wine-mlp",
        None,
        UnknownNameError,
        r"Unknown recipe: received 'wine-mlp'.*Did you mean 'wine'",
    ),
    (
        "unknown-option",
        spec(train__epoch=3),
        None,
        SpecError,
        r"Unknown option 'train.epoch'.*Did you mean 'epochs'",
    ),
    (
        "unknown-layer",
        spec(graph__nodes=[{"name": "h", "op": "lineer", "units": 3}]),
        None,
        UnknownNameError,
        r"Unknown layer: received 'lineer'.*Did you mean 'linear'",
    ),
    (
        "unknown-optimizer",
        spec(train__optimizer={"name": "adamw2"}),
        None,
        UnknownNameError,
        r"Unknown optimizer: received 'adamw2'.*Did you mean 'adamw'",
    ),
    ("missing-csv", spec(data__source="nowhere/data.csv"), None, DataError, r"nowhere/data.csv"),
    ("missing-target", spec(task__target="label"), None, DataError, r"label.*Did you mean|label.*target"),
    (
        "text-in-numeric",
        spec(data__source="frame"),
        frame_with("x", ["1.5"] * 39 + ["abc"]),
        DataError,
        r"'x'.*'abc'",
    ),
    (
        "nan-target",
        spec(data__source="frame"),
        frame_with("target", ["a"] * 20 + ["b"] * 19 + [None]),
        DataError,
        r"NaN|missing",
    ),
    (
        "bad-shapes",
        spec(graph__nodes=[{"name": "c", "op": "conv2d", "channels": 3}]),
        None,
        GraphError,
        r"Node 'c' \(conv2d\).*\(13,\)",
    ),
    ("continuous-target", spec(data__source="diabetes"), None, DataError, r"regression"),
    ("negative-lr", spec(train__optimizer={"lr": -0.01}), None, SpecError, r"train.optimizer.lr.*-0.01"),
    ("zero-batch", spec(train__batch_size=0), None, SpecError, r"train.batch_size.*received 0"),
    (
        "tiny-class",
        spec(data__source="frame"),
        frame_with("target", ["a"] * 38 + ["b"] * 2),
        DataError,
        r"'b'.*2.*stratify",
    ),
    (
        "oversized-units",
        spec(graph__nodes=[{"name": "hidden", "op": "linear", "units": 1e9}]),
        None,
        SpecError,
        r"Node 'hidden' \(linear\) makes the model too large to build: received '14,000,000,000 parameters"
        r".*expected at most 100,000,000 parameters.*DLTOOLKIT_MAX_PARAMS",
    ),
    (
        "oversized-repeat",
        spec(graph__nodes=[{"name": "h", "op": "linear", "units": 4000, "repeat": 50}]),
        None,
        SpecError,
        r"Node 'h' \(linear\) makes the model too large.*graph so far",
    ),
    (
        "no-rows",
        spec(data__source="frame"),
        pd.DataFrame(columns=["x", "target"]),
        DataError,
        r"The data has no rows: received \"0 rows \(columns \['x', 'target'\]\)\"",
    ),
]


@pytest.mark.parametrize(("case", "the_spec", "data", "error", "match"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_fails_before_training(tmp_path, case, the_spec, data, error, match):
    out = tmp_path / "out"
    with pytest.raises(error, match=match):
        run(the_spec, data, out=out)
    assert not out.exists()  # nothing was trained or written


def test_header_only_csv_is_a_clear_error(tmp_path):
    (tmp_path / "data.csv").write_text("x,target\n")
    with pytest.raises(DataError, match=r"The data has no rows.*only the header"):
        run(spec(data__source=str(tmp_path / "data.csv")), out=tmp_path / "out")
