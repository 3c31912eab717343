"""An image folder end to end: the digits-cnn graph trained from files streamed by DataLoader workers,
its bundle and report, predict on paths, a folder and arrays, the server (multipart and base64), ONNX."""

from __future__ import annotations

import base64
import io
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from dltoolkit.api import resolve_spec, run
from dltoolkit.bundle import load
from dltoolkit.data.images.samples import write_digits_folder
from dltoolkit.data.images.stream import ImageFiles

SIZE = 12


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return write_digits_folder(tmp_path_factory.mktemp("digits") / "digits", per_class=12, sizes=(10, 16),
                               manifest=True)  # fmt: skip


@pytest.fixture(scope="module")
def trained(folder, tmp_path_factory):
    """digits-cnn on the folder, streamed (in_memory_mb 0); every decoded item records its process."""
    record = tmp_path_factory.mktemp("pids") / "pids.txt"
    decode = ImageFiles.__getitem__

    def recording(self, index):
        with open(record, "a") as f:
            f.write(f"{os.getpid()}\n")
        return decode(self, index)

    spec = resolve_spec(
        "digits-cnn",
        {
            "data.source": str(folder),
            "data.in_memory_mb": 0,
            "data.workers": 1,
            "preprocess.shape": None,
            "preprocess.image": {"channels": 1, "size": SIZE},
            "preprocess.augment.rotation": 5,
            "train.epochs": 2,
            "train.early_stopping": None,
        },
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ImageFiles, "__getitem__", recording)
        result = run(spec, out=tmp_path_factory.mktemp("run") / "out")
    return result, [int(line) for line in record.read_text().split()]


@pytest.fixture(scope="module")
def model(trained):
    return load(trained[0].bundle)


def test_training_decodes_in_worker_processes(trained):
    from dltoolkit.data.images.prepare import split_files

    result, pids = trained
    sizes = {role: len(paths) for role, paths in split_files(result.spec).items()}
    assert pids and os.getpid() not in pids  # no image was decoded in this process
    assert len(pids) >= 2 * (sizes["train"] + sizes["val"]) + sizes["test"]  # 2 epochs, then the test split


def test_run_writes_bundle_report_and_example_images(trained):
    result, _ = trained
    assert 0.0 <= result.metrics["accuracy"] <= 1.0 and len(result.history) == 2
    assert (result.out / "report.html").is_file() and (result.out / "plots").is_dir()
    examples = torch.load(result.bundle / "examples.pt", weights_only=True)
    assert examples.dtype == torch.uint8 and examples.shape == (16, 1, SIZE, SIZE)


def test_predict_on_paths_a_folder_and_arrays_agree(model, folder):
    files = sorted(str(p) for p in (folder / "4").iterdir())
    by_folder = model.predict_proba(folder / "4")
    by_paths = model.predict_proba(files)
    arrays = [np.array(Image.open(f).convert("RGB")) for f in files]  # RGB arrays for a grayscale model
    by_arrays = model.predict_proba(arrays)
    np.testing.assert_allclose(by_folder, by_paths, atol=1e-6)
    np.testing.assert_allclose(by_arrays, by_paths, atol=2e-2)  # RGB->L rounding differs by 1 level at most
    np.testing.assert_allclose(by_paths.sum(1), 1.0, atol=1e-5)
    assert set(model.predict(files)) <= set(model.classes)
    everything = model.predict(folder)  # 120 files: decoded by DataLoader workers
    assert len(everything) == 120


def test_serve_takes_a_multipart_upload_and_base64(model, folder):
    from fastapi.testclient import TestClient

    from dltoolkit.deploy.serve import create_app

    files = sorted((folder / "7").iterdir())[:3]
    client = TestClient(create_app(model))
    uploads = [("file", (f.name, f.read_bytes(), "application/octet-stream")) for f in files]
    upload = client.post("/predict", files=uploads)
    encoded = client.post(
        "/predict", json={"images": [base64.b64encode(f.read_bytes()).decode() for f in files]}
    )
    want = model.predict_proba([str(f) for f in files])
    for answer in (upload, encoded):
        assert answer.status_code == 200, answer.text
        np.testing.assert_allclose(answer.json()["probabilities"], want, atol=1e-5)
        assert answer.json()["predictions"] == model.predict([str(f) for f in files]).tolist()
    bad = client.post("/predict", json={"images": ["not base64!"]})
    assert bad.status_code == 422 and bad.json()["field"] == "images[0]"
    meta = client.get("/metadata").json()
    assert meta["image"]["size"] == [SIZE, SIZE] and meta["input_schema"]["columns"][0]["type"] == "image"


def test_onnx_export_folds_normalisation_in(model, folder, tmp_path):
    import onnxruntime as ort

    from dltoolkit.deploy import export

    path = export(model, "onnx", out=tmp_path / "digits.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    files = sorted((folder / "2").iterdir())[:5]
    images = model.preprocessor.resized(
        [torch.from_numpy(np.array(Image.open(f).convert("L")))[None] for f in files]
    )
    got = session.run(None, {session.get_inputs()[0].name: images.numpy()})[0]
    assert session.get_inputs()[0].type == "tensor(uint8)"
    np.testing.assert_allclose(got, model.predict_proba([str(f) for f in files]), atol=1e-5)


def test_cli_predict_on_a_folder(trained, folder, capsys):
    from dltoolkit.cli import main

    assert main(["predict", str(trained[0].bundle), str(folder / "1")]) == 0
    table = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert list(table.columns[:2]) == ["path", "prediction"] and len(table) == 12


@pytest.mark.parametrize("kind, target, metric", [("multiclass", "target", "f1"), ("regression", "value", "r2")],
                         ids=["classification", "regression"])  # fmt: skip
def test_a_manifest_trains_and_predicts(folder, tmp_path, kind, target, metric):
    spec = {
        "name": f"manifest-{kind}",
        "task": {"kind": kind, "target": target},
        "data": {"source": str(folder / "manifest.csv"), "workers": 1},
        "preprocess": {"image": {"channels": 1, "size": 8}},
        "graph": {"nodes": [{"name": "conv", "op": "conv2d", "channels": 4, "kernel_size": 3},
                            {"name": "act", "op": "relu"}, {"name": "flat", "op": "flatten"}]},
        "train": {"epochs": 1, "early_stopping": None},
    }  # fmt: skip
    result = run(spec, out=tmp_path / "out", plots=False)
    assert metric in result.metrics
    predictions = load(result.bundle).predict(folder / "manifest.csv")
    assert len(predictions) == 120
    if kind == "regression":
        assert predictions.dtype.kind == "f"
