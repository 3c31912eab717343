"""evaluate() against scikit-learn's own metrics, and its input checks."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from sklearn import metrics as skm

from dltoolkit.errors import DataError
from dltoolkit.evaluate import evaluate, metrics_table

KINDS = ["binary", "multiclass"]


@pytest.mark.parametrize("kind", KINDS, ids=KINDS)
def test_classification_matches_sklearn(kind, make_classification, classes):
    y, proba = make_classification(kind)
    m = evaluate(kind, y, proba, classes[kind])
    pred = proba.argmax(axis=1)
    p, r, f, support = skm.precision_recall_fscore_support(y, pred, average=None)
    macro = skm.precision_recall_fscore_support(y, pred, average="macro")
    auc = (
        skm.roc_auc_score(y, proba[:, 1])
        if kind == "binary"
        else skm.roc_auc_score(y, proba, multi_class="ovr")
    )
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred), abs=1e-6)
    assert [m["precision"], m["recall"], m["f1"]] == pytest.approx(list(macro[:3]), abs=1e-6)
    assert m["roc_auc"] == pytest.approx(auc, abs=1e-6)
    assert m["confusion_matrix"] == skm.confusion_matrix(y, pred).tolist()
    assert list(m["per_class"]) == classes[kind]
    for i, name in enumerate(classes[kind]):
        got = m["per_class"][name]
        assert [got["precision"], got["recall"], got["f1"]] == pytest.approx([p[i], r[i], f[i]], abs=1e-6)
        assert got["support"] == support[i]
    assert m["n"] == len(y)
    json.dumps(m)


@pytest.mark.parametrize("kind", KINDS, ids=KINDS)
def test_perfect_classification_scores_one(kind, make_classification, classes):
    y, _ = make_classification(kind)
    proba = np.eye(len(classes[kind]))[y]
    m = evaluate(kind, y, proba)
    assert [m["accuracy"], m["precision"], m["recall"], m["f1"], m["roc_auc"]] == [1.0] * 5
    assert list(m["per_class"]) == [str(i) for i in range(len(classes[kind]))]


def test_binary_accepts_probability_vector(make_classification):
    y, proba = make_classification("binary")
    assert evaluate("binary", y, proba[:, 1]) == evaluate("binary", y, proba)


def test_roc_auc_is_none_with_one_class():
    m = evaluate("binary", np.zeros(4, dtype=int), np.tile([0.7, 0.3], (4, 1)))
    assert m["roc_auc"] is None
    json.dumps(m)


def test_multiclass_roc_auc_skips_absent_classes(make_classification):
    y, proba = make_classification("multiclass")
    y = np.where(y == 2, 0, y)  # class 2 never occurs
    expected = np.mean([skm.roc_auc_score(y == i, proba[:, i]) for i in (0, 1)])
    assert evaluate("multiclass", y, proba)["roc_auc"] == pytest.approx(expected, abs=1e-6)


def test_regression_matches_sklearn(make_regression):
    y, pred = make_regression()
    m = evaluate("regression", y, pred)
    assert m["mse"] == pytest.approx(skm.mean_squared_error(y, pred))
    assert m["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(y, pred)))
    assert m["mae"] == pytest.approx(skm.mean_absolute_error(y, pred))
    assert m["r2"] == pytest.approx(skm.r2_score(y, pred))
    assert m["n"] == len(y) and isinstance(m["n"], int)
    assert all(type(m[k]) is float for k in ("mse", "rmse", "mae", "r2"))
    json.dumps(m)


def test_perfect_regression(make_regression):
    y, _ = make_regression()
    m = evaluate("regression", y, y.reshape(-1, 1))
    assert (m["mse"], m["mae"], m["r2"]) == (0.0, 0.0, 1.0)


BAD = {
    "unknown kind": (("ordinal", [0, 1], [[0.5, 0.5]] * 2), r"Unknown task kind: received 'ordinal'"),
    "lengths": (("binary", [0, 1, 1], [[0.5, 0.5]] * 2), r"different lengths: received \(3, 2\)"),
    "regression lengths": (("regression", [1.0, 2.0], [1.0]), r"different lengths"),
    "nan output": (("regression", [1.0, 2.0], [1.0, np.nan]), r"output contains NaN.*1 non-finite"),
    "nan proba": (("multiclass", [0, 1], [[np.nan, 0.5, 0.5]] * 2), r"output contains NaN"),
    "logits": (
        ("multiclass", [0, 1], [[2.0, -1.0, 0.3]] * 2),
        r"not a matrix of class probabilities.*softmax",
    ),
    "binary columns": (("binary", [0, 1], [[0.2, 0.3, 0.5]] * 2), r"wrong shape.*\(n, 2\)"),
    "label range": (("multiclass", [0, 3], [[0.2, 0.3, 0.5]] * 2), r"outside the 3 classes.*\[0, 2\]"),
    "float labels": (("multiclass", [0.5, 1], [[0.2, 0.3, 0.5]] * 2), r"not a 1-D array of class indices"),
    "empty": (("regression", [], []), r"No rows to evaluate"),
}


@pytest.mark.parametrize("args, match", BAD.values(), ids=BAD.keys())
def test_bad_input_raises_data_error(args, match):
    with pytest.raises(DataError, match=match) as info:
        evaluate(*args)
    assert "expected" in str(info.value)


def test_class_names_must_match_columns(make_classification):
    y, proba = make_classification("multiclass")
    with pytest.raises(DataError, match=r"2 names for 3 probability columns.*Pass the class names"):
        evaluate("multiclass", y, proba, ["a", "b"])


def test_metrics_table_keeps_scalars_only(make_classification):
    y, proba = make_classification("multiclass")
    table = metrics_table(evaluate("multiclass", y, proba))
    assert list(table.index) == ["accuracy", "precision", "recall", "f1", "roc_auc", "n"]
    assert table.index.name == "metric" and list(table.columns) == ["value"]


def test_import_is_light():
    heavy = "{'matplotlib', 'ray', 'torchmetrics'}"
    code = f"import sys, dltoolkit.evaluate; print(sorted({heavy} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
