"""Preprocessor: scaling, imputation, one-hot, overrides, reshape, state round trip, errors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.impute import SimpleImputer
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from dltoolkit.data import Preprocessor
from dltoolkit.errors import DataError
from dltoolkit.spec import PreprocessSpec


def fitted(frame: pd.DataFrame, categorical: list[str] | None = None, **config) -> Preprocessor:
    return Preprocessor(PreprocessSpec(**config), categorical).fit(frame)


@pytest.fixture
def numeric() -> pd.DataFrame:
    rng = np.random.default_rng(1)
    return pd.DataFrame({"a": rng.normal(3, 2, 40), "b": rng.uniform(-5, 5, 40), "c": np.full(40, 7.0)})


@pytest.mark.parametrize(
    ("scale", "reference"),
    [("standard", StandardScaler), ("minmax", MinMaxScaler)],
    ids=["standard", "minmax"],
)
def test_scaling_matches_sklearn(numeric, scale, reference):
    out = fitted(numeric, scale=scale).transform(numeric)
    np.testing.assert_allclose(out, reference().fit_transform(numeric), atol=1e-5)
    assert out.dtype == np.float32


def test_no_scaling_and_constant_column_is_safe(numeric):
    np.testing.assert_allclose(fitted(numeric, scale="none").transform(numeric), numeric, rtol=1e-6)
    out = fitted(numeric).transform(numeric)
    assert np.isfinite(out).all() and np.allclose(out[:, 2], 0.0)


@pytest.mark.parametrize("strategy", ["mean", "median", "most_frequent"], ids=str)
def test_imputation_matches_sklearn(mixed_frame, strategy):
    frame = mixed_frame[["a", "b"]]
    out = fitted(frame, scale="none", impute=strategy).transform(frame)
    np.testing.assert_allclose(out, SimpleImputer(strategy=strategy).fit_transform(frame), rtol=1e-5)


def test_impute_none_keeps_missing_values_an_error(mixed_frame):
    pre = fitted(mixed_frame[["a", "b"]], impute="none")
    with pytest.raises(DataError, match=r"Missing value in column 'b' at row 3.*Set preprocess.impute"):
        pre.transform(mixed_frame[["a", "b"]])


def test_one_hot_with_unknown_and_missing_category(mixed_frame):
    pre = fitted(mixed_frame[["a", "color"]])
    assert pre.output_names_ == ["a", "color=blue", "color=green", "color=red"]
    new = pd.DataFrame({"a": [0.0, 0.0, 0.0], "color": ["green", "purple", None]})
    out = pre.transform(new)
    assert out[0, 1:].tolist() == [0, 1, 0]
    assert out[1, 1:].tolist() == [0, 0, 0]  # unknown -> all zeros
    most_frequent = mixed_frame["color"].value_counts().idxmax()
    assert out[2, 1 + ["blue", "green", "red"].index(most_frequent)] == 1  # missing -> most frequent


def test_declared_categorical_and_ordinal_codes():
    frame = pd.DataFrame({"code": [3, 1, 2, 3], "x": [1.0, 2.0, 3.0, 4.0]})
    pre = fitted(frame, categorical=["code"], onehot=False, scale="none")
    assert pre.transform(pd.DataFrame({"code": [1, 3, 9], "x": [0, 0, 0]}))[:, 0].tolist() == [0, 2, -1]


def test_per_column_overrides(numeric):
    pre = fitted(numeric, columns={"a": {"scale": "minmax"}, "b": {"scale": "none"}})
    out = pre.transform(numeric)
    assert out[:, 0].min() == pytest.approx(0) and out[:, 0].max() == pytest.approx(1)
    np.testing.assert_allclose(out[:, 1], numeric["b"], rtol=1e-6)
    categorical = fitted(numeric[["a", "c"]], columns={"c": {"categorical": True}})
    assert categorical.output_names_ == ["a", "c=7"]


def test_override_of_unknown_column_is_an_error(numeric):
    with pytest.raises(DataError, match=r"Unknown column in preprocess.columns: received 'aa'.*Did you mean"):
        fitted(numeric, columns={"aa": {"scale": "none"}})


def test_linear_params_reproduce_transform(mixed_frame):
    frame = mixed_frame[["a", "b"]]
    pre = fitted(frame, columns={"b": {"scale": "minmax", "impute": "median"}})
    scale, offset = pre.linear_params()
    imputed = frame.fillna({"b": frame["b"].median()}).to_numpy()
    np.testing.assert_allclose(imputed * scale + offset, pre.transform(frame), rtol=1e-5, atol=1e-6)
    assert fitted(mixed_frame[["a", "color"]]).linear_params() is None


def test_state_round_trip_through_json(mixed_frame):
    frame = mixed_frame[["a", "b", "color"]]
    pre = fitted(frame, columns={"a": {"scale": "minmax"}})
    state = json.loads(json.dumps(pre.to_state()))
    restored = Preprocessor.from_state(state)
    np.testing.assert_array_equal(restored.transform(frame), pre.transform(frame))
    assert restored.feature_columns_ == ["a", "b", "color"] and restored.input_shape == pre.input_shape


def test_reshape_and_shape_mismatch():
    frame = pd.DataFrame(np.arange(32.0).reshape(2, 16), columns=[f"p{i}" for i in range(16)])
    pre = fitted(frame, shape=[1, 4, 4])
    assert pre.input_shape == (1, 4, 4) and pre.transform(frame).shape == (2, 1, 4, 4)
    with pytest.raises(DataError, match=r"preprocess.shape does not fit.*\[1, 5, 4\].*product is 16"):
        fitted(frame, shape=[1, 5, 4])


def test_transform_selects_columns_and_accepts_arrays(numeric):
    pre = fitted(numeric[["a", "b"]])
    reordered = numeric[["b", "a", "c"]]
    np.testing.assert_array_equal(pre.transform(reordered), pre.transform(numeric[["a", "b"]]))
    np.testing.assert_array_equal(pre.transform(numeric[["a", "b"]].to_numpy()), pre.transform(numeric))
    with pytest.raises(
        DataError, match=r"1 input column\(s\) missing from the data: \['b'\]: received \['a'\]"
    ):
        pre.transform(numeric[["a"]])


def test_numeric_column_with_garbage_names_value_and_row():
    frame = pd.DataFrame({"x": [str(i) for i in range(19)] + ["abc"]})
    with pytest.raises(DataError, match=r"Non-numeric value in numeric column 'x' at row 19: received 'abc'"):
        fitted(frame)


def test_declared_numeric_column_with_text():
    frame = pd.DataFrame({"size": ["small", "1", "2"]})
    with pytest.raises(DataError, match=r"column 'size' at row 0: received 'small'.*declare the column"):
        fitted(frame, columns={"size": {"scale": "minmax"}})
    assert fitted(frame).output_names_ == ["size=1", "size=2", "size=small"]  # mostly text: categorical


def test_numeric_strings_are_numbers():
    pre = fitted(pd.DataFrame({"x": ["1", "2", "3"]}), scale="none")
    assert pre.transform(pd.DataFrame({"x": ["5"]})).tolist() == [[5.0]]


def test_not_fitted_and_empty_fit():
    with pytest.raises(DataError, match="not fitted"):
        Preprocessor().transform(pd.DataFrame({"x": [1]}))
    with pytest.raises(DataError, match="Cannot fit preprocessing"):
        Preprocessor().fit(pd.DataFrame({"x": []}))


def test_pandas_categorical_and_bool_columns():
    frame = pd.DataFrame({"n": pd.Categorical([1, 2, 1]), "flag": [True, False, True]})
    pre = fitted(frame, scale="none")
    assert pre.output_names_ == ["n=1", "n=2", "flag"]
    assert pre.transform(frame)[:, 2].tolist() == [1.0, 0.0, 1.0]
