"""Sound default training settings and the "still improving" note (issue 12, right numbers)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from dltoolkit import api
from dltoolkit.bundle import Predictor
from dltoolkit.spec import Spec
from dltoolkit.train.fit import fit


def _table(n: int = 600, seed: int = 0) -> pd.DataFrame:
    """A small noisy table (two numeric columns, one categorical): about 90% is learnable."""
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=n), rng.normal(size=n)
    colour = rng.choice(["red", "blue"], size=n)
    score = a - 0.8 * b + 0.7 * (colour == "red") + rng.normal(0, 0.4, n)
    return pd.DataFrame({"a": a, "b": b, "colour": colour, "y": (score > 0.3).astype(int)})


def _spec(**train) -> Spec:
    data = {
        "task": {"kind": "binary", "target": "y"},
        "data": {"source": "frame"},
        "graph": {"nodes": [{"name": "h", "op": "linear", "units": 16}, {"name": "r", "op": "relu"}]},
    }
    return Spec.from_dict(data | ({"train": train} if train else {}))


def test_default_settings_train_until_early_stopping_and_score_well(tmp_path):
    spec = _spec()  # no train section at all
    assert spec.train.early_stopping is not None and spec.train.epochs >= 100
    checked = api.check(spec, _table())
    result = fit(spec, checked.graph, checked.data, tmp_path)
    assert result.stopped_early and result.epochs < spec.train.epochs
    assert result.best_epoch == result.epochs - spec.train.early_stopping
    assert not result.still_improving and result.warnings() == []
    d = checked.data
    metrics, _, _ = api.test_metrics(Predictor(spec, d.preprocessor, d.target, result.model), d)
    assert metrics["accuracy"] >= 0.85


def test_the_report_says_when_training_ended_while_still_improving(tmp_path):
    spec = _spec(epochs=4, early_stopping=None, optimizer={"lr": 0.001})
    result = api.run(spec, _table(200), out=tmp_path / "run")
    notes = [w for w in result.metrics.get("warnings", []) if "still improving" in w]
    assert len(notes) == 1 and "epoch 4 of 4" in notes[0] and "Raise train.epochs" in notes[0]
    written = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert written["warnings"] == result.metrics["warnings"]
    assert "still improving" in (tmp_path / "run" / "report.html").read_text()
    info = json.loads((tmp_path / "run" / "model" / "bundle.json").read_text())
    assert info["still_improving"] is True and info["stopped_early"] is False and info["epochs"] == 4


def test_the_command_line_prints_the_warnings(tmp_path, capsys):
    from dltoolkit.cli import main

    path = tmp_path / "data.csv"
    _table(200).to_csv(path, index=False)
    spec = _spec(epochs=3, early_stopping=None).with_values({"data.source": str(path)})
    spec.save(tmp_path / "spec.yaml")
    assert main(["run", str(tmp_path / "spec.yaml"), "--quiet", "--out", str(tmp_path / "run")]) == 0
    assert (
        "warning: Training ended at epoch 3 of 3 while val_loss was still improving"
        in capsys.readouterr().out
    )
