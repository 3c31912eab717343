"""An HTTP JSON inference server for a model or ensemble bundle (FastAPI on uvicorn).

Endpoints:
    ``POST /predict`` ``{"records": [{column: value, ...}, ...]}`` -> ``{"predictions": [...],
    "warnings": [...]}`` plus ``"probabilities"`` (one list per record, columns in ``classes``
    order) for classification; the same values as the bundle's ``predict`` / ``predict_proba``.
    ``warnings`` lists what was accepted but deserves notice: categories not seen in training
    (counted per column; they encode as all zeros) and keys the model does not use (ignored).
    ``GET /health`` -> ``{"status": "ok"}``.
    ``GET /metadata`` -> the spec, the input schema, the test metrics and the request limits; a CSV
    ``data.source`` is shown by its file name only (the server's folders are nobody's business).
    An unexpected failure answers 500 with a generic ``detail`` and an ``id``; the exception itself
    is only logged (logger ``dltoolkit.serve``, with that id).

An image model's ``POST /predict`` takes image files instead: a ``multipart/form-data`` upload or
``{"images": ["<base64 image file>", ...]}`` (see :mod:`dltoolkit.deploy._images`); ``/metadata``
then has an ``image`` entry (channels, size).

Every record is validated before the model runs, by the same rules ``predict`` applies
(:mod:`dltoolkit.data._rows`): a missing column, a value of the wrong type (a number column takes
numbers and numeric strings such as ``"39.1"``), a null / NaN where the column is not imputed, a
non-finite number, an empty or oversized payload each get a 4xx answer whose ``detail`` names the
field (``"field"`` holds it too). ``null`` (or ``NaN``) is accepted only where the preprocessing
imputes the column (``"nullable": true`` in the schema).

Example:
    >>> app = create_app(load("runs/wine/model"))          # doctest: +SKIP
    >>> TestClient(app).post("/predict", json={"records": [...]})  # doctest: +SKIP
"""

# No ``from __future__ import annotations`` here: FastAPI reads the endpoints' annotations
# (``Request``, imported inside create_app) at definition time.
import json
import logging
import math
import os
import uuid
from collections.abc import Sequence
from pathlib import PurePath
from typing import Any

import numpy as np
import pandas as pd
import torch

from dltoolkit._extras import require
from dltoolkit.bundle import Predictor, load
from dltoolkit.data._rows import NULL_RULE, Column, InputError, check_rows
from dltoolkit.deploy.ensemble import Ensemble
from dltoolkit.errors import DLToolkitError, message

MAX_RECORDS = 1000
MAX_BODY_BYTES = 1_000_000
log = logging.getLogger("dltoolkit.serve")


class RequestError(Exception):
    """A request the server refuses: an HTTP status, the offending field and a message."""

    def __init__(self, status: int, field: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.field, self.detail = status, field, detail


# ---------------------------------------------------------------------- the input schema
def input_schema(model: Predictor | Ensemble) -> list[dict[str, Any]]:
    """One entry per raw input column: ``name``, ``type`` (number / category / text), ``nullable``."""
    return [column.public() for column in model.input_schema]


def metadata(model: Predictor | Ensemble, limits: dict[str, int]) -> dict[str, Any]:
    """What ``GET /metadata`` answers."""
    ensemble = isinstance(model, Ensemble)
    spec = (
        {
            "method": model.method,
            "weights": model.weights,
            "members": [public_spec(m.spec.to_dict()) for m in model.members],
        }
        if isinstance(model, Ensemble)
        else public_spec(model.spec.to_dict())
    )
    return {
        "kind": "ensemble" if ensemble else "model",
        "task": model.spec.task.kind,
        "classes": model.classes,
        "spec": spec,
        "input_schema": {"columns": input_schema(model), "null": NULL_RULE},
        "metrics": _jsonable(model.metrics),
        "limits": limits,
    }


def public_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """The spec as the server shows it: a data file named by its file name, never its folder.

    Example:
        >>> public_spec({"data": {"source": "/home/ana/private/train.csv"}})["data"]["source"]
        'train.csv'
    """
    data = spec.get("data") or {}
    source = data.get("source")
    if isinstance(source, str) and ("/" in source or "\\" in source):
        name = PurePath(source.replace("\\", "/")).name
        spec = spec | {"data": data | {"source": name}}
    return spec


def _jsonable(value: Any) -> Any:
    """Non-finite floats (not valid JSON) as None."""
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# ---------------------------------------------------------------------- request validation
def parse_records(body: bytes, schema: list[Column], max_records: int) -> tuple[pd.DataFrame, list[str]]:
    """The request body as checked rows of the schema's columns, and the warnings to return.

    The JSON shape is checked here; every value is checked by :func:`dltoolkit.data._rows.check_rows`,
    the rules ``predict`` applies too. RequestError on any bad input.
    """
    try:
        payload = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RequestError(400, "body", f"The body is not valid JSON: {e}") from None
    if not isinstance(payload, dict) or "records" not in payload:
        raise RequestError(
            422, "records", message("Missing field 'records'", _kind(payload), 'an object {"records": [...]}')
        )
    extra = sorted(set(payload) - {"records"})
    if extra:
        raise RequestError(422, extra[0], message(f"Unknown field {extra[0]!r}", extra[0], "only 'records'"))
    records = payload["records"]
    if not isinstance(records, list):
        raise RequestError(
            422, "records", message("'records' must be a list", _kind(records), "a list of objects")
        )
    if not records:
        raise RequestError(422, "records", message("'records' is empty", [], "at least one record"))
    if len(records) > max_records:
        raise RequestError(
            413,
            "records",
            message("Too many records", len(records), f"at most {max_records}", "Split the request."),
        )
    names = [c.name for c in schema]
    expected, unused = set(names), dict[str, None]()
    for i, record in enumerate(records):
        if type(record) is not dict or record.keys() != expected:
            unused |= dict.fromkeys(_check_columns(i, record, names))
    columns = {name: _array([r[name] for r in records]) for name in names}
    columns |= {name: _array([r.get(name) for r in records]) for name in unused}
    frame = pd.DataFrame(columns, copy=False)
    try:
        return check_rows(frame, schema)
    except InputError as e:
        field = f"records[{e.row}].{e.column}" if e.row is not None else "records"
        raise RequestError(422, field, str(e)) from None


def _array(values: list[Any]) -> np.ndarray:
    """One column's JSON values: float64 when all are plain numbers (the common, fast case)."""
    if all(type(v) is float or type(v) is int for v in values):
        return np.array(values, dtype=np.float64)
    return np.fromiter(values, dtype=object, count=len(values))  # a list value stays one element


def _check_columns(i: int, record: Any, names: list[str]) -> list[str]:
    """Raise on a record that is not an object or lacks a column; return the keys the model ignores."""
    if not isinstance(record, dict):
        raise RequestError(
            422, f"records[{i}]", message(f"records[{i}] is not an object", _kind(record), "{column: value}")
        )
    missing = [n for n in names if n not in record]
    if missing:
        field = f"records[{i}].{missing[0]}"
        raise RequestError(
            422,
            field,
            message(
                f"Missing column {missing[0]!r} in records[{i}]", sorted(record), f"every column of {names}"
            ),
        )
    return [k for k in record if k not in names]


def _kind(value: Any) -> str:
    return f"a JSON {type(value).__name__}"


# ---------------------------------------------------------------------- answering
def answer(model: Predictor | Ensemble, frame: pd.DataFrame, notes: Sequence[str] = ()) -> dict[str, Any]:
    """``{"predictions": [...], "probabilities": [[...]], "warnings": [...]}`` from one forward pass.

    ``frame`` comes from :func:`parse_records` (checked); ``notes`` are its warnings.
    """
    if isinstance(model, Predictor):
        out = model.output(torch.from_numpy(model.preprocessor.transform(frame)))
        target = model.target
        values = target.inverse(out) if model.classes is None else None
    else:
        out, target = model.output(frame, checked=True), model.members[0].target
        values = out
    if model.classes is None:
        return {"predictions": np.asarray(values, dtype=np.float64).tolist(), "warnings": list(notes)}
    return {
        "predictions": target.inverse(out.argmax(1)).tolist(),
        "probabilities": np.asarray(out, dtype=np.float32).tolist(),
        "warnings": list(notes),
    }


def create_app(
    model: Predictor | Ensemble | str | os.PathLike,
    *,
    max_records: int = MAX_RECORDS,
    max_body_bytes: int = MAX_BODY_BYTES,
):
    """The FastAPI application serving ``model`` (a Predictor, an Ensemble or a bundle path).

    Args:
        model: What to serve.
        max_records: Most records in one request (413 above).
        max_body_bytes: Largest request body in bytes (413 above).
    """
    require("serve", "The HTTP server (dltoolkit serve, create_app)")
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse
    from starlette.concurrency import run_in_threadpool

    model = model if isinstance(model, Predictor | Ensemble) else load(model)
    schema = model.input_schema
    meta = metadata(model, {"max_records": max_records, "max_body_bytes": max_body_bytes})
    images = _image_model(model)
    if images:  # an image model: uploads or base64 images instead of records (dltoolkit.deploy._images)
        from dltoolkit.deploy._images import answer_images, read_images

        meta["image"] = images
    app = FastAPI(title=f"dltoolkit: {model.spec.name}", version="1")

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/metadata")
    def get_metadata() -> dict[str, Any]:
        return meta

    @app.post("/predict")
    async def predict(request: Request) -> JSONResponse:
        try:
            body = await _read_body(request, max_body_bytes)
            if images:
                decoded = await read_images(request, body, images["channels"], max_records)
                return JSONResponse(await run_in_threadpool(answer_images, model, decoded))
            frame, notes = parse_records(body, schema, max_records)
            return JSONResponse(await run_in_threadpool(answer, model, frame, notes))
        except RequestError as e:
            return JSONResponse({"detail": e.detail, "field": e.field}, status_code=e.status)
        except DLToolkitError as e:  # the preprocessing refused a value the schema let through
            return JSONResponse({"detail": str(e), "field": "records"}, status_code=422)
        except Exception:  # never let one request take the server down, nor tell the client why
            incident = uuid.uuid4().hex[:12]
            log.exception("Internal error %s while answering /predict", incident)
            detail = f"Internal error (id {incident}); the server's log has the details."
            return JSONResponse({"detail": detail, "field": None, "id": incident}, status_code=500)

    return app


def _image_model(model: Predictor | Ensemble) -> dict[str, Any] | None:
    """What an image model takes (channels, size, the request shapes); None for a table model."""
    pre = getattr(model, "preprocessor", None)
    if pre is None or getattr(pre, "kind", None) != "image":
        return None
    return {
        "channels": pre.config.channels,
        "size": list(pre.config.size),
        "requests": ["multipart/form-data image files", '{"images": ["<base64 image file>", ...]}'],
    }


async def _read_body(request: Any, limit: int) -> bytes:
    """The body, refusing (413) anything larger than ``limit`` bytes before reading it all."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise RequestError(
            413,
            "body",
            message(
                "The request body is too large",
                f"{declared} bytes",
                f"at most {limit} bytes",
                "Split the request.",
            ),
        )
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestError(
                413,
                "body",
                message(
                    "The request body is too large",
                    f"over {limit} bytes",
                    f"at most {limit} bytes",
                    "Split the request.",
                ),
            )
        chunks.append(chunk)
    return b"".join(chunks)


def serve(
    model: str | os.PathLike,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    max_records: int = MAX_RECORDS,
    max_body_bytes: int = MAX_BODY_BYTES,
    threads: int | None = 1,
) -> None:
    """Serve a bundle with uvicorn until interrupted (loopback only unless ``host`` says otherwise)."""
    import torch

    require("serve", "dltoolkit serve")
    import uvicorn

    if threads:
        torch.set_num_threads(threads)
    app = create_app(model, max_records=max_records, max_body_bytes=max_body_bytes)
    print(f"serving {model} on http://{host}:{port} (Ctrl-C to stop)", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
