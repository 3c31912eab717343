"""A model whose text goes through a trained BPE tokenizer: the bundle carries the tokenizer, and
``load``, ``predict`` and the server read raw text with it."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from dltoolkit.api import run
from dltoolkit.bundle import load
from dltoolkit.deploy import create_app

SPEC = {
    "name": "sentences-bpe",
    "task": {"kind": "binary"},
    "data": {"source": "sentences", "options": {"n": 300}},
    "preprocess": {"text": {"tokenizer": "bpe", "vocab_size": 150, "max_len": 12}},
    "graph": {
        "nodes": [
            {"name": "embed", "op": "embedding", "dim": 16},
            {"name": "pool", "op": "global_avg_pool", "axis": "sequence"},
        ]
    },
    "train": {"epochs": 2, "batch_size": 32},
}
TEXTS = ["the service was not good", "honestly the hotel was wonderful", "ZQXJV unseen words"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    return run(SPEC, out=tmp_path_factory.mktemp("bpe") / "run", plots=False)


def test_the_bundle_carries_the_tokenizer_and_predicts_identically_after_load(trained):
    state = json.loads((trained.bundle / "preprocess.json").read_text())["preprocessor"]
    assert state["tokenizer"]["model"]["type"] == "BPE"
    assert state["tokenizer"] == trained.predictor.preprocessor.tokenizer_
    loaded = load(trained.bundle)
    assert loaded.preprocessor.vocab_ == trained.predictor.preprocessor.vocab_
    rows = pd.DataFrame({"text": TEXTS})
    np.testing.assert_array_equal(loaded.predict_proba(rows), trained.predictor.predict_proba(rows))
    assert loaded.predict(rows).tolist() == trained.predictor.predict(rows).tolist()


def test_the_server_answers_on_raw_text(trained):
    loaded = load(trained.bundle)
    client = TestClient(create_app(loaded))
    reply = client.post("/predict", json={"records": [{"text": t} for t in TEXTS]})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["predictions"] == loaded.predict(pd.DataFrame({"text": TEXTS})).tolist()
    assert body["probabilities"] == loaded.predict_proba(pd.DataFrame({"text": TEXTS})).tolist()
    bad = client.post("/predict", json={"records": [{"text": 3}]})
    assert bad.status_code == 422 and "text" in bad.text


def test_export_refuses_the_subword_tokenizer_clearly(trained, tmp_path):
    from dltoolkit.deploy import export
    from dltoolkit.deploy.export import ExportError

    with pytest.raises(
        ExportError, match=r"does not support a trained subword tokenizer.*tokenizer: bpe.*dltoolkit serve"
    ):
        export(trained.bundle, format="torchscript", out=tmp_path / "m.pt")
    assert not (tmp_path / "m.pt").exists()
