"""prepare(): splits, tensors, fitting on the training rows only, and the split errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from dltoolkit.data import Prepared, prepare
from dltoolkit.data.prepare import split_indices
from dltoolkit.errors import DataError
from dltoolkit.spec import SplitSpec


def test_multiclass_tensors(make_spec):
    p = prepare(make_spec("multiclass", "digits", preprocess={"shape": [1, 8, 8]}))
    assert isinstance(p, Prepared)
    assert p.X_train.dtype == torch.float32 and p.X_train.shape[1:] == (1, 8, 8)
    assert p.y_train.dtype == torch.int64 and p.n_outputs == 10 and p.classes == [str(i) for i in range(10)]
    assert len(p.X_train) + len(p.X_val) + len(p.X_test) == 1797
    assert len(p.X_test) == len(p.raw_test) == len(p.y_test_raw) == 360
    assert list(p.raw_test.columns[:2]) == ["px0", "px1"]
    np.testing.assert_array_equal(p.target.inverse(p.y_test.numpy()), p.y_test_raw)


def test_binary_and_regression_targets(make_spec):
    binary = prepare(make_spec("binary", "breast_cancer"))
    assert binary.n_outputs == 1 and binary.y_train.dtype == torch.int64 and binary.classes == ["0", "1"]
    regression = prepare(make_spec("regression", "diabetes"))
    assert regression.n_outputs == 1 and regression.classes is None
    assert regression.y_train.dtype == torch.float32 and regression.y_train.shape == (
        len(regression.X_train),
    )
    assert regression.y_train.mean().item() == pytest.approx(0, abs=1e-5)
    np.testing.assert_allclose(
        regression.target.inverse(regression.y_test.numpy()), regression.y_test_raw, rtol=1e-5
    )


def test_text_dataset(make_spec):
    p = prepare(make_spec("binary", "sentences", preprocess={"text": {"max_len": 12}}))
    assert p.X_train.dtype == torch.int64 and p.input_shape == (12,) and p.input_dtype == torch.int64
    assert p.classes == ["negative", "positive"]


def test_zero_fractions_reuse_the_training_rows(make_spec):
    p = prepare(make_spec("regression", "seed_linear", data={"split": {"test": 0, "val": 0}}))
    assert len(p.X_train) == 4
    assert torch.equal(p.X_val, p.X_train) and torch.equal(p.X_test, p.X_train)
    assert p.y_test_raw.tolist() == [2, 3, 4, 5]


def test_stratified_split_keeps_proportions():
    y = pd.Series([0] * 80 + [1] * 20)
    train, val, test = split_indices(y, SplitSpec(test=0.2, val=0.25), stratify=True)
    for rows in (train, val, test):
        assert y.iloc[rows].mean() == pytest.approx(0.2)
    assert len(set(train) | set(val) | set(test)) == 100
    assert not (set(train) & set(val)) and not (set(train) & set(test)) and not (set(val) & set(test))


def test_split_is_seeded():
    y = pd.Series(np.arange(50) % 2)
    first = split_indices(y, SplitSpec(seed=1), True)
    assert all(
        np.array_equal(a, b) for a, b in zip(first, split_indices(y, SplitSpec(seed=1), True), strict=True)
    )
    assert not np.array_equal(first[2], split_indices(y, SplitSpec(seed=2), True)[2])


def test_preprocessing_is_fitted_on_train_only(make_spec, mixed_frame):
    frame = mixed_frame.copy()
    frame["a"] = np.arange(60.0) ** 2  # skewed, so subsets have clearly different means
    p = prepare(make_spec(data={"features": ["a"]}, preprocess={"impute": "none"}), frame)
    scale, offset = p.preprocessor.linear_params()
    raw_train = np.rint((p.X_train.numpy()[:, 0].astype(np.float64) - offset[0]) / scale[0])
    assert set(raw_train) <= set(frame["a"]) and len(set(raw_train)) == len(p.X_train)
    train_mean = -offset[0] / scale[0]
    assert train_mean == pytest.approx(raw_train.mean())
    assert train_mean != pytest.approx(frame["a"].mean())
    assert p.X_train.mean().item() == pytest.approx(0, abs=1e-5)


def test_class_too_small_to_stratify(make_spec, mixed_frame):
    frame = mixed_frame.copy()
    frame.loc[0, "target"] = 7
    with pytest.raises(
        DataError,
        match=r"Class 7 is too small to stratify.*'1 row\(s\)'.*at least 3 rows "
        r"per class.*stratify: false",
    ):
        prepare(make_spec(), frame)
    assert len(prepare(make_spec(data={"split": {"stratify": False, "val": 0}}), frame).X_train) == 48


def test_split_leaving_no_training_rows(make_spec):
    with pytest.raises(
        DataError, match=r"split leaves no training rows: received 'test=0.5, val=0.9 of 4 rows'"
    ):
        prepare(make_spec("regression", "seed_linear", data={"split": {"test": 0.5, "val": 0.9}}))


def test_stratified_test_split_too_small_for_the_classes(make_spec):
    with pytest.raises(
        DataError, match=r"stratified test split cannot hold every class.*'2 of 150 rows for 3"
    ):
        prepare(make_spec("multiclass", "iris", data={"split": {"test": 0.01, "val": 0}}))


def test_garbage_in_numeric_column_fails_before_splitting(make_spec, mixed_frame):
    frame = mixed_frame.astype({"a": object})
    frame.loc[57, "a"] = "abc"
    with pytest.raises(DataError, match=r"Non-numeric value in numeric column 'a' at row 57: received 'abc'"):
        prepare(make_spec(), frame)


def test_class_names_must_match(make_spec):
    with pytest.raises(DataError, match=r"task.class_names does not match.*3 names"):
        prepare(make_spec("multiclass", "iris", task={"class_names": ["a", "b"]}))


def test_arrays_prepare(make_spec):
    rng = np.random.default_rng(0)
    p = prepare(make_spec("binary", task={"target": "y"}), (rng.normal(size=(40, 3)), np.arange(40) % 2))
    assert p.input_shape == (3,) and p.preprocessor.feature_columns_ == ["x0", "x1", "x2"]


def test_regression_splits_are_stratified_by_target_quantiles():
    from dltoolkit.recipes import load_recipe

    spec = load_recipe("diabetes")
    data = prepare(spec)
    y_all = np.concatenate([data.target.inverse(data.y_train.numpy()), data.y_test_raw])
    quartiles = np.quantile(y_all, [0.25, 0.5, 0.75])
    share = np.bincount(np.searchsorted(quartiles, data.y_test_raw), minlength=4) / len(data.y_test_raw)
    assert np.all(np.abs(share - 0.25) < 0.07)  # each quarter of the targets is represented in the test split


def test_raw_split_draws_the_rows_prepare_draws():
    from dltoolkit.deploy import raw_split
    from dltoolkit.recipes import load_recipe

    for name in ("diabetes", "wine"):
        spec = load_recipe(name)
        X_test, y_test = raw_split(spec, "test")
        data = prepare(spec)
        assert X_test.index.equals(data.raw_test.index)
        np.testing.assert_array_equal(y_test, data.y_test_raw)
