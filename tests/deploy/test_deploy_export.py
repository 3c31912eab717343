"""Export with the preprocessing folded in: parity with the bundle under real ONNX Runtime and TorchScript."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest
import torch

from dltoolkit.bundle import Predictor, load
from dltoolkit.cli import main
from dltoolkit.data import prepare
from dltoolkit.deploy import ExportError, export
from dltoolkit.deploy.export import export_checked, max_difference
from dltoolkit.errors import UnknownNameError


def raw_test(model) -> np.ndarray:
    frame = prepare(model.spec).raw_test[model.feature_columns]
    return np.array(frame.to_numpy(dtype=np.float32))  # a writable copy


def reference(model, x: np.ndarray) -> np.ndarray:
    rows = pd.DataFrame(x.astype(np.float64), columns=model.feature_columns)
    return model.predict_proba(rows) if model.classes is not None else model.predict(rows)


def onnx_run(path, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["features"]
    return session.run(None, {"features": x})[0]


@pytest.mark.parametrize("name", ["wine_bundle", "cancer_bundle", "diabetes_bundle"])
def test_onnx_export_matches_the_bundle(request, tmp_path, name):
    bundle = request.getfixturevalue(name)
    model = load(bundle)
    out = export(bundle, "onnx", out=tmp_path / "model.onnx")
    x = raw_test(model)
    got, want = onnx_run(out, x), reference(model, x)
    assert got.shape == want.shape
    assert max_difference(got, want) <= 1e-5
    assert onnx_run(out, x[:1]).shape == want[:1].shape  # dynamic batch axis
    if model.classes is not None:
        np.testing.assert_allclose(got.sum(1), 1.0, atol=1e-5)  # probabilities
    else:
        assert abs(got.mean() - want.mean()) < 1e-3 * abs(want.mean())  # original units, not scaled


def test_onnx_export_imputes_missing_values_like_the_bundle(wine_bundle, tmp_path):
    model = load(wine_bundle)
    out = export(model, "onnx", out=tmp_path / "wine.onnx")
    x = raw_test(model)
    x[::3, 0] = np.nan
    x[1::4, 5] = np.nan
    assert max_difference(onnx_run(out, x), reference(model, x)) <= 1e-5


@pytest.mark.parametrize("name", ["wine_bundle", "diabetes_bundle"])
def test_torchscript_export_matches_the_bundle(request, tmp_path, name):
    model = load(request.getfixturevalue(name))
    out = export(model, "torchscript", out=tmp_path / "model.pt")
    loaded = torch.jit.load(str(out))
    x = raw_test(model)
    with torch.inference_mode():
        got = loaded(torch.from_numpy(x)).numpy()
    assert max_difference(got, reference(model, x)) <= 1e-5


class SizeDependent(torch.nn.Module):
    """A model whose output depends on the batch size through Python control flow."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.inner(x)
        return out + 1.0 if x.shape[0] > 4 else out


def test_export_fails_with_the_difference_and_writes_nothing(diabetes, tmp_path):
    broken = Predictor(diabetes.spec, diabetes.preprocessor, diabetes.target, SizeDependent(diabetes.model))
    out = tmp_path / "broken.pt"
    with pytest.raises(ExportError, match=r"max difference \d") as info:
        export(broken, "torchscript", out=out)
    # the traced graph lost the "+ 1" (one scaled unit): off by the target's spread in original units
    assert f"max difference {diabetes.target.spread_:.6g}"[:19] in str(info.value)
    assert "Nothing was written" in str(info.value)
    assert list(tmp_path.iterdir()) == []  # not even a temporary file


def test_mixed_model_exports_with_a_string_input(mixed_bundle, tmp_path):
    """Numeric columns with and without imputation next to a categorical one (refused before)."""
    model = load(mixed_bundle)
    out = export(mixed_bundle, "onnx", out=tmp_path / "mixed.onnx")
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["features", "color"]
    rows = model.examples[model.feature_columns].head(8).copy()
    rows[["a", "b"]] = rows[["a", "b"]].astype(np.float32).astype(np.float64)  # as the file reads them
    feeds = {"features": rows[["a", "b"]].to_numpy(np.float32), "color": rows["color"].to_numpy(object)}
    assert max_difference(session.run(None, feeds)[0], model.predict_proba(rows)) <= 1e-5


def test_unknown_format_lists_the_formats(wine_bundle, tmp_path):
    with pytest.raises(UnknownNameError, match=r"Unknown export format.*'onnx'"):
        export(wine_bundle, "onnxx", out=tmp_path / "x")


def test_export_replaces_an_old_file_atomically(wine_bundle, tmp_path):
    out = tmp_path / "wine.pt"
    out.write_text("old")
    path, diff, rows = export_checked(wine_bundle, "torchscript", out=out)
    assert path == out and diff <= 1e-5 and rows == len(raw_test(load(wine_bundle)))
    assert torch.jit.load(str(out)) is not None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["wine.pt"]


def test_cli_export(wine_bundle, tmp_path, capsys):
    out = tmp_path / "cli.onnx"
    assert main(["export", str(wine_bundle), "--format", "onnx", "--out", str(out)]) == 0
    assert out.is_file()
    assert "max difference" in capsys.readouterr().out


def test_cli_limits_match_the_server():
    from dltoolkit.deploy import cli, serve

    assert (cli.MAX_RECORDS, cli.MAX_BODY_BYTES) == (serve.MAX_RECORDS, serve.MAX_BODY_BYTES)


def test_export_needs_no_training_csv_and_takes_data_as_an_override(tmp_path):
    """The bundle carries raw test rows (examples.json): export verifies on them after the CSV is gone;
    ``--data`` recreates the test split from a CSV instead."""
    from dltoolkit.api import run
    from dltoolkit.data.datasets import DATASETS

    csv = tmp_path / "wine.csv"
    DATASETS.get("wine")({}).to_csv(csv, index=False)
    result = run(
        "wine", out=tmp_path / "run", overrides={"data.source": str(csv), "train.epochs": 1}, plots=False
    )
    test_rows = len(result.predictor.examples)
    assert (result.bundle / "examples.json").is_file() and test_rows == len(prepare(result.spec).raw_test)
    moved = csv.rename(tmp_path / "elsewhere.csv")
    path, diff, rows = export_checked(result.bundle, "onnx", out=tmp_path / "m.onnx")
    assert path.is_file() and rows == test_rows and diff <= 1e-5
    assert main(["export", str(result.bundle), "--out", str(tmp_path / "m2.onnx"), "--data", str(moved)]) == 0
    assert (tmp_path / "m2.onnx").is_file()
    (result.bundle / "examples.json").unlink()  # a bundle written before bundles carried rows
    assert main(["export", str(result.bundle), "--out", str(tmp_path / "m3.onnx")]) == 2
    assert not (tmp_path / "m3.onnx").exists()
