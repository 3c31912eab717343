"""Bad inputs to load / predict / serve / export: each a clear one-line error, never a traceback."""

from __future__ import annotations

import io
import json
import re
import shutil

import numpy as np
import pandas as pd
import pytest

from dltoolkit.bundle import BundleError, load
from dltoolkit.cli import main
from dltoolkit.errors import DataError


def _damage(bundle, tmp_path, how: str):
    copy = tmp_path / "model"
    shutil.copytree(bundle, copy)
    if how == "empty-weights":
        (copy / "weights.pt").write_bytes(b"")
    elif how == "truncated-weights":
        data = (copy / "weights.pt").read_bytes()
        (copy / "weights.pt").write_bytes(data[: len(data) // 2])
    elif how == "truncated-preprocess":
        text = (copy / "preprocess.json").read_text()
        (copy / "preprocess.json").write_text(text[: len(text) // 2])
    elif how == "newer-format":
        meta = json.loads((copy / "bundle.json").read_text())
        (copy / "bundle.json").write_text(json.dumps(meta | {"format": 99}))
    return copy


DAMAGE = [
    ("empty-weights", r"Damaged bundle file .*weights.pt.*cannot be read.*0 bytes"),
    ("truncated-weights", r"Damaged bundle file .*weights.pt.*cannot be read"),
    ("truncated-preprocess", r"Damaged bundle file .*preprocess.json.*not valid JSON"),
    (
        "newer-format",
        r"written by a newer dltoolkit: received 'format 99'; expected format 1 or older.*Upgrade",
    ),
]


@pytest.mark.parametrize(("how", "match"), DAMAGE, ids=[d[0] for d in DAMAGE])
def test_damaged_bundle_is_a_clear_error_in_load_predict_serve_export(
    wine_bundle, tmp_path, capsys, how, match
):
    from dltoolkit.deploy.serve import create_app

    bundle = _damage(wine_bundle, tmp_path, how)
    with pytest.raises(BundleError, match=match):
        load(bundle)
    with pytest.raises(BundleError, match=match):
        create_app(bundle)
    (tmp_path / "in.csv").write_text("a\n1\n")
    for argv in (
        ["predict", str(bundle), str(tmp_path / "in.csv")],
        ["export", str(bundle), "--out", str(tmp_path / "m.onnx")],
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and ("Damaged" in err or "newer" in err), err
    assert not (tmp_path / "m.onnx").exists()


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", r"Could not read the input CSV.*No columns"),
        ("alcohol,malic_acid\n", r"No rows to predict: received \"0 rows"),
    ],
    ids=["empty-file", "header-only"],
)
def test_predict_on_an_empty_csv_is_a_clear_error(wine_bundle, tmp_path, capsys, text, match):
    (tmp_path / "in.csv").write_text(text)
    assert main(["predict", str(wine_bundle), str(tmp_path / "in.csv")]) == 2
    err = capsys.readouterr().err
    assert re.search(match, err), err
    with pytest.raises(DataError, match=match):
        load(wine_bundle).predict(tmp_path / "in.csv")


def test_missing_columns_are_named_with_the_columns_received(wine):
    rows = pd.DataFrame(np.zeros((2, len(wine.input_columns))), columns=wine.input_columns)
    rows = rows.drop(columns=["alcohol", "hue"]).assign(extra=1.0)
    with pytest.raises(
        DataError,
        match=r"2 input column\(s\) missing from the data: \['alcohol', 'hue'\]: received \[.*'extra'",
    ):
        wine.predict(rows)
    assert wine.input_columns == wine.feature_columns and len(wine.input_columns) == 13


def test_readme_example_on_the_digits_frame(tmp_path):
    """The README shows predict_proba on scikit-learn's digits: columns pixel_0_0... are named as missing
    px0...; renamed to ``input_columns`` they predict."""
    from sklearn.datasets import load_digits

    from dltoolkit.api import run

    model = run("digits-mlp", out=tmp_path / "d", overrides={"train.epochs": 1}, plots=False).predictor
    frame = load_digits(as_frame=True).frame.drop(columns="target").head(5)
    with pytest.raises(DataError, match=r"64 input column\(s\) missing .*'px0'.*received \['pixel_0_0'"):
        model.predict_proba(frame)
    raw_rows = pd.DataFrame(frame.to_numpy(), columns=model.input_columns)
    assert model.predict_proba(raw_rows).shape == (5, 10)


def test_cli_predict_warns_once_per_unseen_category_column(mixed_bundle, tmp_path, capsys):
    frame = load(mixed_bundle).examples.head(6).reset_index(drop=True)  # raw test rows it carries
    frame.loc[0, "color"] = "purple"
    frame.to_csv(tmp_path / "in.csv", index=False)
    assert main(["predict", str(mixed_bundle), str(tmp_path / "in.csv")]) == 0
    out, err = capsys.readouterr()
    assert err.count("warning:") == 1 and "Column 'color': 1 of 6 value(s) are categories not seen" in err
    assert len(pd.read_csv(io.StringIO(out))) == 6
