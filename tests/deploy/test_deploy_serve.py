"""The inference server in-process (FastAPI TestClient): answers, metadata and input validation."""

from __future__ import annotations

import json
import math
import traceback

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient

from dltoolkit.bundle import load
from dltoolkit.data import prepare
from dltoolkit.deploy import Ensemble, create_app
from dltoolkit.deploy.ensemble import raw_split


@pytest.fixture(scope="module")
def mixed(mixed_bundle):
    return load(mixed_bundle)


@pytest.fixture(scope="module")
def mixed_client(mixed):
    return TestClient(create_app(mixed, max_records=5, max_body_bytes=2_000))


@pytest.fixture(scope="module")
def wine_client(wine):
    return TestClient(create_app(wine))


def test_health(wine_client):
    assert wine_client.get("/health").json() == {"status": "ok"}


def test_classification_answers_equal_predict_and_predict_proba(wine, wine_client, to_records):
    X = prepare(wine.spec).raw_test
    reply = wine_client.post("/predict", json={"records": to_records(X)})
    assert reply.status_code == 200
    body = reply.json()
    assert body["predictions"] == wine.predict(X).tolist()
    assert body["probabilities"] == wine.predict_proba(X).tolist()


def test_regression_answers_in_original_units(diabetes, to_records):
    X = prepare(diabetes.spec).raw_test
    body = TestClient(create_app(diabetes)).post("/predict", json={"records": to_records(X)}).json()
    assert body["predictions"] == diabetes.predict(X).tolist() and "probabilities" not in body


def test_null_is_imputed_where_the_column_imputes(mixed, mixed_client):
    rows = [{"a": None, "b": 0.5, "color": "red"}, {"a": 1.0, "b": -0.5, "color": None}]
    body = mixed_client.post("/predict", json={"records": rows}).json()
    import pandas as pd

    frame = pd.DataFrame(rows).astype({"a": float})
    assert body["predictions"] == mixed.predict(frame).tolist()
    assert body["probabilities"] == mixed.predict_proba(frame).tolist()


def test_metadata_has_spec_schema_and_metrics(mixed, mixed_client):
    meta = mixed_client.get("/metadata").json()
    assert meta["spec"] == json.loads(json.dumps(mixed.spec.to_dict()))
    assert meta["input_schema"]["columns"] == [
        {"name": "a", "type": "number", "nullable": True},
        {"name": "b", "type": "number", "nullable": False},
        {"name": "color", "type": "category", "nullable": True},
    ]
    assert "imputes" in meta["input_schema"]["null"]
    assert meta["metrics"]["accuracy"] == mixed.metrics["accuracy"]
    assert meta["classes"] == mixed.classes and meta["limits"]["max_records"] == 5


GOOD = {"a": 1.0, "b": 2.0, "color": "red"}


@pytest.mark.parametrize(
    ("body", "status", "field", "pattern"),
    [
        ({"records": [{"a": 1.0, "color": "red"}]}, 422, "records[0].b", "Missing column 'b'"),
        ({"records": [GOOD, GOOD | {"b": "abc"}]}, 422, "records[1].b", "Wrong type.*'abc'.*a number"),
        ({"records": [GOOD | {"color": [1]}]}, 422, "records[0].color", "Wrong type"),
        ({"records": [GOOD | {"b": None}]}, 422, "records[0].b", "Missing value.*not imputed"),
        ('{"records": [{"a": 1.0, "b": NaN, "color": "red"}]}', 422, "records[0].b", "Missing value"),
        ('{"records": [{"a": Infinity, "b": 1, "color": "red"}]}', 422, "records[0].a", "Non-finite"),
        ({"records": []}, 422, "records", "'records' is empty"),
        ({"records": {"a": 1}}, 422, "records", "must be a list"),
        ({"records": [1]}, 422, "records[0]", "not an object"),
        ({"rows": [GOOD]}, 422, "records", "Missing field 'records'"),
        ({"records": [GOOD], "extra": 1}, 422, "extra", "Unknown field 'extra'"),
        ({"records": [GOOD] * 6}, 413, "records", "Too many records.*at most 5"),
        ({"records": [GOOD | {"color": "x" * 3000}]}, 413, "body", "too large"),
        ("{not json", 400, "body", "not valid JSON"),
        ("[1, 2]", 422, "records", "Missing field 'records'"),
    ],
    ids=[
        "missing-column",
        "text-for-number",
        "list-for-category",
        "null-not-imputed",
        "nan-not-imputed",
        "infinity",
        "empty",
        "records-not-list",
        "record-not-object",
        "no-records",
        "extra-field",
        "too-many-records",
        "body-too-large",
        "bad-json",
        "json-array",
    ],
)
def test_bad_requests_get_4xx_naming_the_field(mixed_client, body, status, field, pattern):
    content = body if isinstance(body, str) else json.dumps(body)
    reply = mixed_client.post("/predict", content=content, headers={"content-type": "application/json"})
    assert reply.status_code == status, reply.text
    answer = reply.json()
    assert answer["field"] == field
    assert __import__("re").search(pattern, answer["detail"]), answer["detail"]
    assert mixed_client.get("/health").status_code == 200  # still serving


def test_chunked_oversized_body_is_refused(mixed_client):
    def chunks():
        for _ in range(10):
            yield b" " * 500

    reply = mixed_client.post("/predict", content=chunks(), headers={"content-type": "application/json"})
    assert reply.status_code == 413 and reply.json()["field"] == "body"


def test_serves_an_ensemble(wine_bundle, wine_bundle_b, to_records):
    ens = Ensemble([wine_bundle, wine_bundle_b], weights=[1, 3])
    X, _ = raw_split(ens.spec, "test")
    client = TestClient(create_app(ens))
    body = client.post("/predict", json={"records": to_records(X)}).json()
    assert body["predictions"] == ens.predict(X).tolist()
    assert body["probabilities"] == ens.predict_proba(X).tolist()
    meta = client.get("/metadata").json()
    assert meta["kind"] == "ensemble" and meta["spec"]["weights"] == [1.0, 3.0]
    assert all(c["type"] == "number" and c["nullable"] for c in meta["input_schema"]["columns"])


def test_metadata_metrics_are_valid_json(wine):
    wine_copy = load(wine.path)
    wine_copy.metrics = {"accuracy": 1.0, "roc_auc": math.nan, "per_class": {"0": {"f1": math.inf}}}
    meta = TestClient(create_app(wine_copy)).get("/metadata").json()
    assert meta["metrics"] == {"accuracy": 1.0, "roc_auc": None, "per_class": {"0": {"f1": None}}}
    assert np.isfinite(meta["limits"]["max_body_bytes"])


def test_predict_and_serve_accept_the_same_inputs_and_report_unseen_categories(mixed, mixed_client):
    """One validation for both: a numeric string is a number, an unused column is ignored, an unseen
    category is counted (predict warns, serve answers ``warnings``); the same values are refused."""
    import pandas as pd

    from dltoolkit.data._rows import InputError, InputWarning

    rows = [
        {"a": "0.25", "b": 0.5, "color": "purple", "d": 1},
        {"a": 1.0, "b": -0.5, "color": "red", "d": 2},
        {"a": None, "b": 1.5, "color": "teal", "d": 3},
    ]
    reply = mixed_client.post("/predict", json={"records": rows})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    frame = pd.DataFrame(rows)
    with pytest.warns(InputWarning) as caught:
        expected = mixed.predict_proba(frame)
    notes = [str(w.message) for w in caught if issubclass(w.category, InputWarning)]
    assert body["warnings"] == notes and len(notes) == 2
    assert notes[0] == "Ignored 1 column(s) the model does not use: ['d']"
    assert notes[1].startswith("Column 'color': 2 of 3 value(s) are categories not seen in training")
    assert "'purple'" in notes[1] and "'teal'" in notes[1]
    assert body["probabilities"] == np.asarray(expected, dtype=np.float32).tolist()
    bad = [rows[1] | {"b": "abc"}]
    refused = mixed_client.post("/predict", json={"records": bad})
    with pytest.raises(InputError) as error:
        mixed.predict(pd.DataFrame(bad))
    assert refused.status_code == 422 and refused.json()["detail"] == str(error.value)
    assert refused.json()["field"] == "records[0].b"
    clean = mixed_client.post("/predict", json={"records": [GOOD]}).json()
    assert clean["warnings"] == []


def test_a_500_answer_hides_the_exception_and_logs_it_with_an_id(wine, to_records, caplog):
    from dltoolkit.bundle import Predictor

    # a real model of the wrong width: torch raises inside the forward pass
    broken = Predictor(wine.spec, wine.preprocessor, wine.target, torch.nn.Linear(5, 3))
    client = TestClient(create_app(broken))
    X = prepare(wine.spec).raw_test.head(2)
    with caplog.at_level("ERROR", logger="dltoolkit.serve"):
        reply = client.post("/predict", json={"records": to_records(X)})
    assert reply.status_code == 500
    body = reply.json()
    assert "mat1" not in body["detail"] and "RuntimeError" not in body["detail"]
    assert body["id"] in body["detail"] and body["field"] is None
    logged = [r for r in caplog.records if body["id"] in r.getMessage()]
    assert logged and "mat1" in "".join(traceback.format_exception(*logged[0].exc_info))


def test_metadata_names_a_data_file_without_its_folder(wine):
    from dltoolkit.bundle import Predictor

    spec = wine.spec.with_values({"data.source": "/home/ana/private/wine.csv"})
    model = Predictor(spec, wine.preprocessor, wine.target, wine.model, wine.metrics)
    meta = TestClient(create_app(model)).get("/metadata").json()
    assert meta["spec"]["data"]["source"] == "wine.csv"
    assert "/home/ana" not in json.dumps(meta)
    ensemble = TestClient(create_app(Ensemble([model, model]))).get("/metadata").json()
    assert "/home/ana" not in json.dumps(ensemble)
