"""Ensembles: combining members, greedy selection, evaluation, the ensemble bundle and its export."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest

from dltoolkit.bundle import Predictor, graph_for, load
from dltoolkit.deploy import (
    Ensemble,
    evaluate_ensemble,
    export,
    greedy_selection,
    load_ensemble,
    raw_split,
    save_ensemble,
)
from dltoolkit.deploy.export import max_difference
from dltoolkit.errors import DLToolkitError, SpecError, UnknownNameError


@pytest.fixture(scope="module")
def wine_pair(wine_bundle, wine_bundle_b):
    return [load(wine_bundle), load(wine_bundle_b)]


@pytest.fixture(scope="module")
def wine_test(wine_pair):
    return raw_split(wine_pair[0].spec, "test")


def untrained(model: Predictor, seed: int = 123) -> Predictor:
    """The same preprocessing with a freshly initialised network (a bad member)."""
    import torch

    torch.manual_seed(seed)
    net = graph_for(model.spec, model.preprocessor, model.target.n_outputs).compile()
    return Predictor(model.spec, model.preprocessor, model.target, net)


def test_mean_of_probabilities_with_weights(wine_pair, wine_test):
    X, _ = wine_test
    a, b = (m.predict_proba(X) for m in wine_pair)
    ens = Ensemble(wine_pair, weights=[3, 1])
    np.testing.assert_allclose(ens.predict_proba(X), (3 * a + b) / 4, atol=1e-6)
    labels = np.asarray(wine_pair[0].target.inverse(((3 * a + b) / 4).argmax(1)))
    np.testing.assert_array_equal(ens.predict(X), labels)
    assert ens.classes == wine_pair[0].classes


def test_members_can_be_bundle_paths_and_arrays_work(wine_bundle, wine_bundle_b, wine_test):
    X, _ = wine_test
    ens = Ensemble([wine_bundle, wine_bundle_b])
    np.testing.assert_array_equal(ens.predict(X.to_numpy()), ens.predict(X))


def test_vote_counts_the_members_classes(wine_pair, wine_test):
    X, _ = wine_test
    votes = [np.eye(3)[m.predict_proba(X).argmax(1)] for m in wine_pair]
    np.testing.assert_allclose(Ensemble(wine_pair, method="vote").output(X), (votes[0] + votes[1]) / 2)


def test_regression_mean_in_original_units(diabetes_bundle, diabetes_bundle_b):
    members = [load(diabetes_bundle), load(diabetes_bundle_b)]
    X, _ = raw_split(members[0].spec, "test")
    ens = Ensemble(members)
    np.testing.assert_allclose(ens.predict(X), (members[0].predict(X) + members[1].predict(X)) / 2)
    with pytest.raises(DLToolkitError, match="predict_proba is for classification"):
        ens.predict_proba(X)


@pytest.mark.parametrize(
    ("kwargs", "error", "pattern"),
    [
        ({"weights": [1]}, SpecError, "Invalid ensemble weights"),
        ({"weights": [1, -1]}, SpecError, "Invalid ensemble weights"),
        ({"method": "median"}, UnknownNameError, r"Unknown ensemble method.*'mean'"),
    ],
    ids=["weights-length", "weights-negative", "method"],
)
def test_bad_ensemble_arguments(wine_pair, kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        Ensemble(wine_pair, **kwargs)


def test_members_must_share_the_task(wine_pair, diabetes):
    with pytest.raises(SpecError, match="member 1 differs from member 0 in its task kind"):
        Ensemble([wine_pair[0], diabetes])
    with pytest.raises(SpecError, match="needs a list of members"):
        Ensemble([])


def test_greedy_selection_leaves_out_a_bad_member(wine_pair):
    bad = untrained(wine_pair[0])
    X_val, y_val = raw_split(wine_pair[0].spec, "val")
    ens = greedy_selection([bad, *wine_pair], X_val, y_val, rounds=6)
    assert all(m is not bad for m in ens.members)
    assert len(ens.selection_scores_) == 6 and sum(ens.weights) <= 6
    singles = [greedy_selection([m], X_val, y_val, rounds=1).selection_scores_[0] for m in [bad, *wine_pair]]
    assert min(ens.selection_scores_) <= min(singles) + 1e-12  # never worse than the best member
    with pytest.raises(UnknownNameError, match="selection metric"):
        greedy_selection(wine_pair, X_val, y_val, metric="auc")


def test_greedy_selection_for_regression(diabetes_bundle, diabetes_bundle_b):
    members = [load(diabetes_bundle), load(diabetes_bundle_b)]
    X_val, y_val = raw_split(members[0].spec, "val")
    ens = greedy_selection(members, X_val, y_val, rounds=4, metric="mae")
    assert 1 <= len(ens.members) <= 2 and ens.kind == "regression"


def test_evaluate_ensemble_uses_the_standard_metrics_and_plots(wine_pair, wine_test, tmp_path):
    X, y = wine_test
    ens = Ensemble(wine_pair)
    metrics = evaluate_ensemble(ens, X, y, plots=tmp_path / "plots")
    assert set(wine_pair[0].metrics) <= set(metrics)  # the same keys as a single model's
    assert metrics["n"] == len(y)
    expected = float((ens.predict(X).astype(str) == y.astype(str)).mean())
    assert metrics["accuracy"] == pytest.approx(expected)
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == [
        "confusion_matrix.png",
        "precision_recall.png",
        "roc.png",
    ]
    assert ens.metrics is metrics


def test_save_and_load_the_ensemble_bundle(wine_pair, wine_test, tmp_path):
    X, y = wine_test
    ens = Ensemble(wine_pair, weights=[2, 1])
    evaluate_ensemble(ens, X, y)
    path = save_ensemble(tmp_path / "ens", ens)
    meta = json.loads((path / "bundle.json").read_text())
    assert meta["kind"] == "ensemble" and meta["weights"] == [2.0, 1.0] and meta["members"] == 2
    assert isinstance(load(path / "members" / "1"), Predictor)  # each member is a plain bundle
    again = load_ensemble(path)
    np.testing.assert_array_equal(again.predict_proba(X), ens.predict_proba(X))
    assert again.metrics["accuracy"] == ens.metrics["accuracy"] and again.path == path
    assert isinstance(load(path), Ensemble) and isinstance(load(path / "members" / "0"), Predictor)
    save_ensemble(path, Ensemble(wine_pair[:1]))  # replaced in place, nothing left over
    assert [p.name for p in tmp_path.iterdir()] == ["ens"] and len(load_ensemble(path).members) == 1


def test_load_ensemble_refuses_a_model_bundle(wine_bundle):
    with pytest.raises(DLToolkitError, match="Not an ensemble bundle"):
        load_ensemble(wine_bundle)


def test_an_ensemble_bundle_is_not_a_member(wine_pair, wine_bundle, tmp_path):
    nested = save_ensemble(tmp_path / "ens", Ensemble(wine_pair))
    with pytest.raises(SpecError, match=r"An ensemble member is itself an ensemble(.|\n)*ensemble.members"):
        Ensemble([wine_bundle, nested])


def test_ensemble_onnx_export_matches(wine_pair, wine_test, tmp_path):
    ens = Ensemble(wine_pair, weights=[1, 2])
    out = export(save_ensemble(tmp_path / "ens", ens), "onnx", out=tmp_path / "ens.onnx")
    x = wine_test[0][ens.feature_columns].to_numpy(dtype=np.float32)
    got = ort.InferenceSession(str(out)).run(None, {"features": x})[0]
    assert max_difference(got, ens.predict_proba(x.astype(np.float64))) <= 1e-5
