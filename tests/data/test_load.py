"""load_raw: every kind of source, and a clear error for each missing piece."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dltoolkit.data import load_raw
from dltoolkit.errors import DataError, UnknownNameError


def test_bundled_dataset(make_spec):
    X, y = load_raw(make_spec("regression", "diabetes"))
    assert X.shape == (442, 10) and "bmi" in X.columns
    assert y.name == "target" and len(y) == 442


def test_csv_path(make_spec, tmp_path, mixed_frame):
    path = tmp_path / "data.csv"
    mixed_frame.to_csv(path, index=False)
    X, y = load_raw(make_spec(source=str(path)))
    assert list(X.columns) == ["a", "b", "color"]
    assert y.tolist() == mixed_frame["target"].tolist()


def test_frame_with_features_and_custom_target(make_spec, mixed_frame):
    frame = mixed_frame.rename(columns={"target": "label"})
    spec = make_spec(task={"target": "label"}, data={"features": ["color", "a"]})
    X, y = load_raw(spec, frame)
    assert list(X.columns) == ["color", "a"] and y.name == "label"


def test_arrays_are_named_x0_to_xn(make_spec):
    X, y = load_raw(make_spec("regression", task={"target": "y"}), (np.ones((5, 3)), np.arange(5.0)))
    assert list(X.columns) == ["x0", "x1", "x2"] and y.name == "y"


def test_unknown_dataset_name(make_spec):
    with pytest.raises(UnknownNameError, match=r"Unknown dataset: received 'digtis'.*Did you mean 'digits'"):
        load_raw(make_spec(source="digtis"))


def test_missing_csv_names_the_path(make_spec, tmp_path):
    path = tmp_path / "nowhere.csv"
    with pytest.raises(DataError, match=rf"CSV file not found: received '{path}'"):
        load_raw(make_spec(source=str(path)))


def test_frame_source_without_data(make_spec):
    with pytest.raises(DataError, match="No data passed for source 'frame'"):
        load_raw(make_spec())


def test_missing_target_lists_columns_and_closest(make_spec, mixed_frame):
    with pytest.raises(
        DataError,
        match=r"Target column not in the data: received 'targte'.*'color'.*"
        r"Did you mean 'target'",
    ):
        load_raw(make_spec(task={"target": "targte"}), mixed_frame)


def test_missing_feature_column(make_spec, mixed_frame):
    with pytest.raises(
        DataError,
        match=r"Feature column not in the data: received 'colour'.*"
        r"Did you mean 'color'",
    ):
        load_raw(make_spec(data={"features": ["a", "colour"]}), mixed_frame)


def test_target_among_features(make_spec, mixed_frame):
    with pytest.raises(DataError, match="target is listed among the features"):
        load_raw(make_spec(data={"features": ["a", "target"]}), mixed_frame)


def test_unsupported_data_type(make_spec):
    with pytest.raises(DataError, match="Unsupported data: received 'list'"):
        load_raw(make_spec(), [[1, 2]])


def test_mismatched_arrays(make_spec):
    with pytest.raises(DataError, match="Arrays of mismatched shapes"):
        load_raw(make_spec(), (np.ones((5, 2)), np.ones(4)))


def test_load_returns_copies(make_spec, mixed_frame):
    X, _ = load_raw(make_spec(), mixed_frame)
    X.loc[0, "a"] = -1.0
    assert mixed_frame.loc[0, "a"] != -1.0
    assert isinstance(X, pd.DataFrame)
