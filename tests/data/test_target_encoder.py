"""TargetEncoder and the target checks against the task."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from dltoolkit.data import TargetEncoder
from dltoolkit.data.target import check_target
from dltoolkit.errors import DataError
from dltoolkit.spec import TaskSpec


def round_trip(encoder: TargetEncoder) -> TargetEncoder:
    return TargetEncoder.from_state(json.loads(json.dumps(encoder.to_state())))


@pytest.mark.parametrize(
    ("labels", "classes"),
    [([3, 1, 2, 1], ["1", "2", "3"]), (["b", "a", "c"], ["a", "b", "c"]), ([True, False], ["False", "True"])],
    ids=["ints", "strings", "bools"],
)
def test_classes_and_inverse_keep_the_label_type(labels, classes):
    encoder = TargetEncoder("multiclass").fit(pd.Series(labels))
    assert encoder.classes_ == classes and encoder.n_outputs == len(classes)
    indices = encoder.transform(labels)
    assert indices.dtype == np.int64
    for enc in (encoder, round_trip(encoder)):
        decoded = enc.inverse(indices)
        assert decoded.tolist() == list(labels)
        assert type(decoded.tolist()[0]) is type(labels[0])


def test_binary_has_one_output():
    assert TargetEncoder("binary").fit(["no", "yes"]).n_outputs == 1


def test_unseen_label_is_an_error():
    with pytest.raises(DataError, match=r"label not seen in the training rows: received 'd'"):
        TargetEncoder("multiclass").fit(["a", "b"]).transform(["a", "d"])


@pytest.mark.parametrize("scale", ["standard", "minmax", "none"], ids=str)
def test_regression_scaling_and_inverse(scale):
    y = np.array([2.0, 4.0, 6.0, 12.0])
    encoder = TargetEncoder("regression", scale).fit(y)
    scaled = encoder.transform(y)
    assert scaled.dtype == np.float32 and scaled.shape == (4,)
    if scale == "standard":
        assert scaled.mean() == pytest.approx(0, abs=1e-6) and scaled.std() == pytest.approx(1, abs=1e-6)
    if scale == "minmax":
        assert (scaled.min(), scaled.max()) == pytest.approx((0, 1))
    np.testing.assert_allclose(round_trip(encoder).inverse(scaled), y, rtol=1e-6)


def test_constant_regression_target_is_safe():
    assert np.isfinite(TargetEncoder("regression").fit([5.0, 5.0]).transform([5.0, 6.0])).all()


def task(kind: str) -> TaskSpec:
    return TaskSpec(kind=kind)


def test_nan_target_counts_and_names_first_row():
    y = pd.Series([1.0, np.nan, 2.0, np.nan], name="target")
    with pytest.raises(
        DataError,
        match=r"Missing values in the target 'target': received '2 missing, first "
        r"at row 1'",
    ):
        check_target(y, task("regression"))


def test_continuous_target_for_classification():
    y = pd.Series(np.linspace(0, 1, 50) + 0.001, name="price")
    with pytest.raises(
        DataError, match=r"Continuous target 'price' for a multiclass task.*task.kind: regression"
    ):
        check_target(y, task("multiclass"))


def test_integral_float_labels_become_ints():
    assert check_target(pd.Series([0.0, 1.0, 1.0]), task("binary")).dtype == np.int64


def test_too_many_classes_for_binary_but_two_for_multiclass_is_fine():
    y = pd.Series([0, 1, 2, 0], name="target")
    with pytest.raises(DataError, match=r"3 classes in the target 'target' for a binary task.*multiclass"):
        check_target(y, task("binary"))
    assert check_target(pd.Series([0, 1, 1]), task("multiclass")).nunique() == 2


def test_single_class_is_an_error():
    with pytest.raises(DataError, match="Only one class"):
        check_target(pd.Series(["a", "a"]), task("binary"))


def test_text_target_for_regression():
    with pytest.raises(DataError, match=r"Non-numeric target 'target' for a regression task: received 'cat'"):
        check_target(pd.Series(["cat", "dog"], name="target"), task("regression"))
