"""Training-time metrics mean what the test metrics of the same name mean (issue 12, right numbers)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from pytorch_lightning.callbacks import Callback

from dltoolkit.api import check
from dltoolkit.evaluate import evaluate
from dltoolkit.spec import Spec
from dltoolkit.train.fit import fit

CLASSIFICATION = {  # val name -> test name
    "val_acc": "accuracy",
    "val_precision": "precision",
    "val_recall": "recall",
    "val_f1": "f1",
    "val_roc_auc": "roc_auc",
}
REGRESSION = {"val_mse": "mse", "val_rmse": "rmse", "val_mae": "mae", "val_r2": "r2"}


class LastOutputs(Callback):
    """The model's outputs on the validation split after the last epoch (not the best checkpoint)."""

    def __init__(self, x_val: torch.Tensor) -> None:
        self.x_val = x_val

    def on_train_end(self, trainer, module) -> None:
        with torch.no_grad():
            self.output = module.predict_output(module(self.x_val.to(module.device))).cpu().double().numpy()


def _frame(kind: str, n: int = 240, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=n), rng.normal(size=n)
    if kind == "binary":  # imbalanced (about 1 in 5 positive): binary F1 and macro F1 differ
        y = (a + 0.5 * b + rng.normal(0, 0.7, n) > 1.0).astype(int)
    elif kind == "multiclass":
        y = np.digitize(a + b, [-0.7, 0.7])
    else:  # a target far from unit scale: scaled and original units differ a lot
        y = 1000.0 + 300.0 * a - 120.0 * b + rng.normal(0, 30.0, n)
    return pd.DataFrame({"a": a, "b": b, "y": y})


def _fit(kind: str, tmp_path):
    spec = Spec.from_dict(
        {
            "task": {"kind": kind, "target": "y"},
            "data": {"source": "frame", "split": {"val": 0.3}},
            "graph": {"nodes": [{"name": "h", "op": "linear", "units": 4}, {"name": "r", "op": "relu"}]},
            "train": {"epochs": 3, "early_stopping": None, "optimizer": {"lr": 0.01}},
        }
    )
    checked = check(spec, _frame(kind))
    last = LastOutputs(checked.data.X_val)
    result = fit(spec, checked.graph, checked.data, tmp_path, extra_callbacks=[last])
    return checked.data, result.history.iloc[-1], last.output


@pytest.mark.parametrize("kind", ["binary", "multiclass"])
def test_val_classification_metrics_are_the_test_metrics_on_the_val_split(kind, tmp_path):
    data, logged, output = _fit(kind, tmp_path)
    expected = evaluate(kind, data.y_val.numpy(), output)
    for val_name, test_name in CLASSIFICATION.items():
        assert logged[val_name] == pytest.approx(expected[test_name], abs=1e-6), val_name


def test_val_f1_is_macro_f1_on_an_imbalanced_binary_task(tmp_path):
    """Torchmetrics' binary F1 (the positive class only) was logged as val_f1 before."""
    from sklearn.metrics import f1_score

    data, logged, output = _fit("binary", tmp_path)
    predicted = output.argmax(axis=1)
    macro = f1_score(data.y_val.numpy(), predicted, average="macro")
    positive = f1_score(data.y_val.numpy(), predicted, average="binary", zero_division=0)
    assert abs(macro - positive) > 0.05  # the two definitions differ on this data
    assert logged["val_f1"] == pytest.approx(macro, abs=1e-6)


def test_val_regression_metrics_are_in_the_target_units(tmp_path):
    data, logged, output = _fit("regression", tmp_path)
    y_val = data.target.inverse(data.y_val.numpy())
    expected = evaluate("regression", y_val, data.target.inverse(output))
    for val_name, test_name in REGRESSION.items():
        assert logged[val_name] == pytest.approx(expected[test_name], rel=1e-5), val_name
    assert logged["val_mae"] > 10  # original units (a standardised error would be about 1)
