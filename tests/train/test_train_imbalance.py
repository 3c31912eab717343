"""Imbalanced classes: task.class_weights and the never-predicted warning (issue 12, right numbers)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.utils.class_weight import compute_class_weight

from dltoolkit import api
from dltoolkit.data import prepare
from dltoolkit.errors import DataError, SpecError
from dltoolkit.spec import Spec
from dltoolkit.train.fit import build_module


def _rare(n: int = 400, seed: int = 0) -> pd.DataFrame:
    """A binary target with about 8% positives ("yes"), weakly separable."""
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=n), rng.normal(size=n)
    y = np.where(a + 0.5 * b + rng.normal(0, 0.8, n) > 2.0, "yes", "no")
    return pd.DataFrame({"a": a, "b": b, "y": y})


def _spec(kind: str = "binary", weights=None, **train) -> Spec:
    return Spec.from_dict(
        {
            "task": {"kind": kind, "target": "y", "class_weights": weights},
            "data": {"source": "frame"},
            "graph": {"nodes": [{"name": "h", "op": "linear", "units": 8}, {"name": "r", "op": "relu"}]},
            "train": {"epochs": 5, "early_stopping": None, "optimizer": {"lr": 0.003}} | train,
        }
    )


def test_balanced_weights_come_from_the_training_split_only():
    data = prepare(_spec(weights="balanced"), _rare())
    y_train = data.y_train.numpy()
    expected = compute_class_weight("balanced", classes=np.arange(2), y=y_train)
    assert data.class_weights == pytest.approx(expected.tolist())
    assert data.class_weights[1] > 5 * data.class_weights[0]  # "yes" is rare


def test_weights_by_label_default_to_one_and_unknown_labels_are_refused():
    assert prepare(_spec(weights={"yes": 4}), _rare()).class_weights == [1.0, 4.0]
    with pytest.raises(DataError, match=r"Unknown class in task.class_weights.*'maybe'.*\['no', 'yes'\]"):
        prepare(_spec(weights={"maybe": 2}), _rare())


@pytest.mark.parametrize(
    ("kind", "weights", "error"),
    [
        ("regression", "balanced", r"class_weights is set for a regression task"),
        ("binary", {"yes": 0}, r"weights must be positive"),
        ("binary", "auto", r"class_weights"),
    ],
    ids=["regression", "zero-weight", "unknown-mode"],
)
def test_bad_class_weights_are_spec_errors(kind, weights, error):
    frame = _rare().assign(y=lambda f: np.arange(len(f), dtype=float)) if kind == "regression" else _rare()
    with pytest.raises(SpecError, match=error):
        api.check(_spec(kind, weights), frame)


@pytest.mark.parametrize("loss", ["bce", "cross_entropy"])
def test_the_loss_is_the_class_weighted_mean(loss):
    spec = _spec(weights={"yes": 3}, loss=loss)
    checked = api.check(spec, _rare())
    module = build_module(spec, checked.graph, 1, data=checked.data)
    x, y = checked.data.X_train[:64], checked.data.y_train[:64]
    out = module(x)
    w = torch.tensor([1.0, 3.0])[y]
    if loss == "bce":
        each = torch.nn.functional.binary_cross_entropy_with_logits(
            out.squeeze(-1), y.float(), reduction="none"
        )
    else:
        logits = torch.cat([torch.zeros_like(out), out], dim=-1)
        each = torch.nn.functional.cross_entropy(logits, y, reduction="none")
    assert module.loss(out, y).item() == pytest.approx(((each * w).sum() / w.sum()).item(), rel=1e-5)


def test_balanced_weights_make_the_rare_class_predicted_and_the_report_warns_otherwise(tmp_path):
    plain = api.run(_spec(epochs=20), _rare(), out=tmp_path / "plain")
    assert plain.metrics["per_class"]["yes"]["recall"] == 0.0
    warning = [w for w in plain.metrics["warnings"] if "never predicted" in w]
    assert len(warning) == 1 and "'yes'" in warning[0] and "class_weights: balanced" in warning[0]
    assert "never predicted" in (tmp_path / "plain" / "report.html").read_text()

    weighted = api.run(_spec(weights="balanced", epochs=20), _rare(), out=tmp_path / "weighted", plots=False)
    assert weighted.metrics["per_class"]["yes"]["recall"] > 0.5
    assert not any("never predicted" in w for w in weighted.metrics.get("warnings", []))


def test_weights_keyed_by_numeric_labels_in_yaml_round_trip():
    text = """
task: {kind: binary, target: y, class_weights: {0: 1, 1: 2.5}}
data: {source: frame}
graph: {nodes: []}
"""
    spec = Spec.from_yaml(text)
    assert spec.task.class_weights == {"0": 1.0, "1": 2.5}
    assert Spec.from_yaml(spec.to_yaml()) == spec
    frame = _rare().assign(y=lambda f: (f["y"] == "yes").astype(int))
    assert prepare(spec, frame).class_weights == [1.0, 2.5]
