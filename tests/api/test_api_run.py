import json

import numpy as np
import pandas as pd
import pytest
import torch

import dltoolkit
from dltoolkit.api import run
from dltoolkit.bundle import load
from dltoolkit.errors import DataError, DLToolkitError


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=120), rng.normal(size=120)
    frame = pd.DataFrame(
        {
            "a": a,
            "b": b,
            "colour": rng.choice(["red", "blue"], size=120),
            "label": np.where(a + b > 0, "yes", "no"),
        }
    )
    frame.loc[3, "a"] = np.nan  # imputed
    spec = {
        "name": "tiny",
        "task": {"kind": "binary", "target": "label"},
        "data": {"source": "frame", "split": {"test": 0.25, "val": 0.2}},
        "graph": {"nodes": [{"name": "hidden", "op": "linear", "units": 8}, {"name": "act", "op": "relu"}]},
        "train": {"epochs": 4, "optimizer": {"lr": 0.02}},
    }
    out = tmp_path_factory.mktemp("run")
    return run(spec, frame, out=out), frame


def test_run_writes_every_output(tiny_run):
    result, _ = tiny_run
    out = result.out
    for name in (
        "spec.yaml",
        "metrics.json",
        "history.csv",
        "report.html",
        "model/weights.pt",
        "plots/learning_curves.png",
        "plots/confusion_matrix.png",
        "plots/roc.png",
    ):
        assert (out / name).is_file(), name
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"accuracy", "precision", "recall", "f1", "roc_auc", "per_class", "confusion_matrix"} <= set(
        metrics
    )
    assert len(pd.read_csv(out / "history.csv")) == 4
    assert not (out / ".work").exists()
    assert "accuracy" in (out / "report.html").read_text()


def test_bundle_predicts_from_raw_columns_like_the_run(tiny_run, tmp_path):
    result, frame = tiny_run
    model = load(result.bundle)
    raw = frame.drop(columns="label").iloc[:20]
    proba = model.predict_proba(raw)
    assert proba.shape == (20, 2) and np.allclose(proba.sum(1), 1)
    np.testing.assert_allclose(proba, result.predictor.predict_proba(raw), rtol=1e-6)
    assert set(model.predict(raw)) <= {"yes", "no"}
    raw.to_csv(tmp_path / "in.csv", index=False)
    np.testing.assert_allclose(model.predict_proba(tmp_path / "in.csv"), proba, rtol=1e-5)
    assert model.metrics["accuracy"] == result.metrics["accuracy"]


def test_bundle_metrics_are_the_test_split_metrics(tiny_run):
    result, frame = tiny_run
    model = load(result.bundle)
    from dltoolkit.data import prepare

    data = prepare(result.spec, frame)
    predicted = model.predict(data.raw_test)
    assert np.mean(predicted == data.y_test_raw) == pytest.approx(result.metrics["accuracy"])


def test_bundle_rejects_missing_columns(tiny_run):
    model = load(tiny_run[0].bundle)
    with pytest.raises(DataError, match="colour"):
        model.predict(pd.DataFrame({"a": [1.0], "b": [2.0]}))


def test_load_rejects_a_non_bundle(tmp_path):
    with pytest.raises(DLToolkitError, match="Not a model bundle.*lacks"):
        load(tmp_path)


def test_interrupted_save_leaves_no_half_written_bundle(tiny_run, tmp_path, monkeypatch):
    from dltoolkit import bundle

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    before = sorted(p.name for p in tiny_run[0].bundle.iterdir())
    monkeypatch.setattr(bundle.torch, "save", boom)
    with pytest.raises(KeyboardInterrupt):
        bundle.save_bundle(tmp_path / "model", tiny_run[0].predictor)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(KeyboardInterrupt):  # an existing bundle stays whole
        bundle.save_bundle(tiny_run[0].bundle, tiny_run[0].predictor)
    assert sorted(p.name for p in tiny_run[0].bundle.iterdir()) == before
    assert not [p for p in tiny_run[0].out.iterdir() if p.name.startswith(".model")]


def test_run_accepts_numpy_arrays(tmp_path):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(80, 3)).astype(np.float32)
    y = X @ np.array([1.0, -2.0, 0.5]) + 3
    spec = {
        "task": {"kind": "regression", "target": "y"},
        "data": {"source": "frame"},
        "graph": {"nodes": [{"name": "h", "op": "linear", "units": 8}]},
        "train": {"epochs": 2},
    }
    result = dltoolkit.run(spec, (X, y), out=tmp_path, plots=False)
    assert {"mse", "rmse", "mae", "r2"} <= set(result.metrics)
    assert load(result.bundle).predict(X[:5]).shape == (5,)
    assert torch.get_num_threads() >= 1


def test_smoke_mode_shrinks_epochs_and_trials(monkeypatch):
    from dltoolkit.api import resolve_spec

    assert resolve_spec("digits-mlp").train.epochs == 30
    monkeypatch.setenv("DLTOOLKIT_SMOKE", "1")
    spec = resolve_spec("digits-mlp")
    assert spec.train.epochs == 2 and spec.search.samples == 2 and spec.search.max_epochs == 2
