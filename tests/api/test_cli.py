"""The real console script, run as a user would."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

DLTOOLKIT = str(Path(sys.executable).with_name("dltoolkit"))


def cli(*args, check=True):
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    result = subprocess.run([DLTOOLKIT, *args], capture_output=True, text=True, timeout=300, env=env)
    if check and result.returncode != 0:
        raise AssertionError(result.stderr)
    return result


def test_recipes_lists_every_bundled_recipe():
    out = cli("recipes").stdout
    for name in (
        "digits-mlp",
        "digits-cnn",
        "breast-cancer",
        "wine",
        "diabetes",
        "seed-linear",
        "waves-gru",
        "sentences-transformer",
    ):
        assert name in out


def test_run_then_predict(tmp_path):
    out = tmp_path / "wine"
    result = cli(
        "run", "wine", "--out", str(out), "--set", "train.epochs=3", "--set", "train.optimizer.lr=0.01"
    )
    assert "accuracy" in result.stdout and "training" in result.stderr  # metrics and the progress bar
    for name in (
        "spec.yaml",
        "metrics.json",
        "history.csv",
        "model/bundle.json",
        "report.html",
        "plots/confusion_matrix.png",
        "plots/roc.png",
        "plots/precision_recall.png",
    ):
        assert (out / name).is_file(), name
    assert "epochs: 3" in (out / "spec.yaml").read_text()
    metrics = json.loads((out / "metrics.json").read_text())
    from sklearn.datasets import load_wine

    frame = load_wine(as_frame=True).frame.drop(columns="target").head(10)
    frame.to_csv(tmp_path / "in.csv", index=False)
    cli("predict", str(out / "model"), str(tmp_path / "in.csv"), "--out", str(tmp_path / "pred.csv"))
    pred = pd.read_csv(tmp_path / "pred.csv")
    assert len(pred) == 10 and {"prediction", "proba_0", "proba_1", "proba_2"} <= set(pred.columns)
    assert 0 <= metrics["accuracy"] <= 1


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["run", "digits-mpl"], "Did you mean 'digits-mlp'"),
        (["run", "wine", "--set", "train.optimizer.lr=-1"], "train.optimizer.lr"),
        (["run", "wine", "--set", "train.optimiser.lr=0.1"], "Did you mean 'optimizer'"),
        (["run", "wine", "--set", "epochs"], "key=value"),
        (["predict", "nowhere", "x.csv"], "Not a model bundle"),
    ],
    ids=["unknown-recipe", "negative-lr", "unknown-key", "bad-set", "bad-bundle"],
)
def test_errors_are_one_clear_line(args, match):
    result = cli(*args, check=False)
    assert result.returncode == 2
    assert match in result.stderr and "Traceback" not in result.stderr
