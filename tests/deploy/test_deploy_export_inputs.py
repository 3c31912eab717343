"""Export of models with categorical and text inputs: string inputs folded into the exported file.

Checked with a plain ONNX Runtime session and ``torch.jit.load`` against the bundle's own
``predict_proba`` / ``predict`` on rows with missing values, unseen categories and unusual texts.
"""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest
import torch

from dltoolkit.api import run
from dltoolkit.bundle import load
from dltoolkit.cli import main
from dltoolkit.data._rows import InputWarning
from dltoolkit.deploy import Ensemble, ExportError, export
from dltoolkit.deploy._inputs import InputLayout
from dltoolkit.deploy.export import export_checked, max_difference, verification_rows

SPEC = {
    "name": "shop",
    "task": {"kind": "binary", "target": "y"},
    "data": {"source": "frame"},
    # color: missing values imputed with the most frequent; shape: not imputed (missing -> all zeros)
    "preprocess": {"columns": {"shape": {"impute": "none"}}},
    "graph": {"nodes": [{"name": "hidden", "op": "linear", "units": 8}, {"name": "act", "op": "relu"}]},
    "train": {"epochs": 2, "batch_size": 16, "early_stopping": None},
}
TEXTS = [
    "the plot was not good",
    "I think the FILM is really GREAT!!",
    "",
    "  naïve café: 東京 ΣΟΦΙΑΣ, wasn't it?  ",
    "zzz unknown-words _here_ 42",
]


def shop_frame(n: int = 160, seed: int = 0) -> pd.DataFrame:
    """Two numbers (``a`` with gaps) and two string columns with gaps; a binary target."""
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=n), rng.normal(size=n)
    color = rng.choice(["red", "green", "blue"], size=n).astype(object)
    shape = rng.choice(["round", "square"], size=n).astype(object)
    y = ((a + (color == "red") - (shape == "square")) > 0.3).astype(int)
    a[::10], color[3::8], shape[5::9] = np.nan, None, None
    return pd.DataFrame({"a": a, "b": b, "color": color, "shape": shape, "y": y})


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    root = tmp_path_factory.mktemp("shop")
    return run(SPEC, shop_frame(), out=root / "run", plots=False).bundle


@pytest.fixture(scope="module")
def shop_ordinal(tmp_path_factory):
    """The same table with ordinal codes instead of one-hot (another encoding, for an ensemble)."""
    root = tmp_path_factory.mktemp("shop-ordinal")
    overrides = {"preprocess.onehot": False, "train.seed": 1}
    return run(SPEC, shop_frame(), out=root / "run", overrides=overrides, plots=False).bundle


@pytest.fixture(scope="module")
def sentences(tmp_path_factory):
    root = tmp_path_factory.mktemp("sentences")
    overrides = {"train.epochs": 1, "train.early_stopping": None}
    return run("sentences-transformer", out=root / "run", overrides=overrides, plots=False).bundle


def odd_rows(model) -> pd.DataFrame:
    """Test rows, then each categorical column missing (None and NaN), unseen, and a numeric gap."""
    rows = model.examples[model.input_columns].head(6).reset_index(drop=True).astype(object)
    rows.loc[0, "color"], rows.loc[1, "color"], rows.loc[2, "color"] = None, np.nan, "purple"
    rows.loc[3, "shape"], rows.loc[4, "shape"], rows.loc[5, "shape"] = None, "triangle", "round"
    rows.loc[5, "a"] = np.nan
    rows[["a", "b"]] = rows[["a", "b"]].astype(np.float32).astype(np.float64)
    return rows


def want(model, rows: pd.DataFrame) -> np.ndarray:
    with pytest.warns(InputWarning, match="not seen in training"):
        return model.predict_proba(rows)


def strings(column: pd.Series) -> np.ndarray:
    return np.array(["" if v is None or v != v else str(v) for v in column], dtype=object)


def test_onnx_export_takes_numbers_and_one_string_tensor_per_category(shop, tmp_path):
    model = load(shop)
    out = export(shop, "onnx", out=tmp_path / "shop.onnx")
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    inputs = [(i.name, i.type, i.shape) for i in session.get_inputs()]
    assert inputs == [
        ("features", "tensor(float)", ["batch", 2]),
        ("color", "tensor(string)", ["batch"]),
        ("shape", "tensor(string)", ["batch"]),
    ]
    rows = odd_rows(model)
    feeds = {"features": rows[["a", "b"]].to_numpy(np.float32)}
    feeds |= {c: strings(rows[c]) for c in ("color", "shape")}
    got = session.run(None, feeds)[0]
    assert got.shape == (6, 2) and max_difference(got, want(model, rows)) <= 1e-5
    # a missing color is the most frequent one; a missing shape (not imputed) is an unseen one
    filled = dict(feeds, color=np.array([model.preprocessor.columns_[2]["fill"]] * 6, dtype=object))
    np.testing.assert_allclose(session.run(None, filled)[0][:2], got[:2], atol=1e-6)
    unseen = dict(feeds, shape=np.array(["triangle"] * 6, dtype=object))
    np.testing.assert_allclose(session.run(None, unseen)[0][3], got[3], atol=1e-6)
    meta = json.loads(session.get_modelmeta().custom_metadata_map["dltoolkit"])
    assert meta["inputs"][0]["columns"] == ["a", "b"] and meta["output"]["classes"] == model.classes
    assert meta["inputs"][1]["categories"] == ["blue", "green", "red"]
    assert "'color': string ['batch']" in session.get_modelmeta().description


def test_torchscript_export_takes_numbers_and_string_lists(shop, tmp_path, capsys):
    model = load(shop)
    out = tmp_path / "shop.pt"
    assert main(["export", str(shop), "--format", "torchscript", "--out", str(out)]) == 0
    assert "max difference" in capsys.readouterr().out
    extra = {"dltoolkit.json": ""}
    loaded = torch.jit.load(str(out), _extra_files=extra)
    rows = odd_rows(model)
    categories = {c: [None if v is None or v != v else str(v) for v in rows[c]] for c in ("color", "shape")}
    categories["color"][1] = ""  # the empty string is missing too
    with torch.inference_mode():
        got = loaded(torch.from_numpy(rows[["a", "b"]].to_numpy(np.float32)), categories).numpy()
    assert max_difference(got, want(model, rows)) <= 1e-5
    assert [i["name"] for i in json.loads(extra["dltoolkit.json"])["inputs"]] == [
        "features",
        "color",
        "shape",
    ]
    with pytest.raises(torch.jit.Error, match="missing categorical column shape"):
        loaded(torch.zeros(1, 2), {"color": ["red"]})


def test_verification_covers_gaps_and_unseen_categories(shop):
    model = load(shop)
    rows = verification_rows(model, InputLayout.of(model))
    assert len(rows) == len(model.examples) + 6
    probes, known = rows.tail(6), {c.name: set(c.categories or ()) for c in model.input_schema}
    for column in ("color", "shape"):
        assert probes[column].isna().any() and probes[column].notna().any()
        assert not set(probes[column].dropna()) & known[column]  # unseen categories
    assert probes["a"].isna().any()  # a numeric column that imputes gets a gap too


def test_a_wrong_encoding_fails_verification_and_writes_nothing(shop, tmp_path, monkeypatch):
    """Were a missing color read as unseen (not imputed), the rows with gaps would catch it, even
    when the test rows (here from data without gaps) have none."""
    from dltoolkit.deploy._scripted import CategoryEncoder

    build = CategoryEncoder.__init__

    def forgetful(self, block):
        build(self, block)
        self.missing = -1

    monkeypatch.setattr(CategoryEncoder, "__init__", forgetful)
    complete = shop_frame().fillna({"color": "red", "shape": "round"})
    with pytest.raises(ExportError, match=r"max difference .*Nothing was written"):
        export(shop, "torchscript", out=tmp_path / "wrong.pt", data=complete)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.undo()
    assert export(shop, "torchscript", out=tmp_path / "right.pt", data=complete).is_file()


def test_ensemble_of_two_encodings_exports_to_onnx(shop, shop_ordinal, tmp_path):
    ens = Ensemble([shop, shop_ordinal], weights=[1, 2])
    path, diff, checked = export_checked(ens, "onnx", out=tmp_path / "ens.onnx")
    assert diff <= 1e-5 and checked > len(ens.members[0].examples)
    rows = odd_rows(ens.members[0])
    feeds = {"features": rows[["a", "b"]].to_numpy(np.float32)}
    feeds |= {c: strings(rows[c]) for c in ("color", "shape")}
    got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, feeds)[0]
    assert max_difference(got, want(ens, rows)) <= 1e-5


def test_text_model_exports_to_torchscript_and_tokenises_inside(sentences, tmp_path):
    model = load(sentences)
    out = export(sentences, "torchscript", out=tmp_path / "text.pt")
    loaded = torch.jit.load(str(out))
    texts = list(model.examples["text"].head(20)) + TEXTS
    with torch.inference_mode():
        got = loaded(texts).numpy()
    rows = pd.DataFrame({"text": texts})
    assert max_difference(got, model.predict_proba(rows)) <= 1e-5
    np.testing.assert_array_equal(model.target.inverse(got.argmax(1)), model.predict(rows))
    ids = getattr(loaded.tokenizers, "0")(TEXTS)  # the scripted tokeniser alone
    from dltoolkit.data.text import encode

    want_ids = encode(TEXTS, model.preprocessor.vocab_, model.preprocessor.config.text)
    np.testing.assert_array_equal(ids.numpy(), want_ids)


def test_text_model_onnx_export_points_to_torchscript(sentences, tmp_path):
    with pytest.raises(ExportError, match=r"ONNX export does not support text inputs.*--format torchscript"):
        export(sentences, "onnx", out=tmp_path / "text.onnx")
    assert list(tmp_path.iterdir()) == []
