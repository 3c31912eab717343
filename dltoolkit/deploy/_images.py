"""``POST /predict`` for an image model: uploaded files or base64 images in, predictions out.

Two request shapes, both limited to ``max_records`` images and ``max_body_bytes`` bytes:

* ``multipart/form-data`` with one or more image files (any field names; ``file`` is usual), as a
  browser form or ``curl -F file=@cat.png`` sends them;
* JSON ``{"images": ["<base64 of an image file>", ...]}`` (PNG, JPEG, WebP... bytes; a
  ``data:image/png;base64,`` prefix is accepted).

Each image is decoded, converted and resized by the bundle's deterministic transform, exactly as
``predict`` does. The answer is the table models' shape: ``predictions``, ``probabilities`` (for
classification) and ``warnings``, one entry per image in request order.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
from typing import Any

import torch

from dltoolkit.deploy.serve import RequestError
from dltoolkit.errors import DataError, message


async def read_images(request: Any, body: bytes, channels: int, max_images: int) -> list[torch.Tensor]:
    """The request's images decoded to uint8 ``(channels, H, W)`` (RequestError on bad input)."""
    kind = request.headers.get("content-type", "")
    if kind.startswith("multipart/form-data"):
        named = await _uploads(request, body, max_images)
    else:
        named = _base64_images(body)
    if not named:
        raise RequestError(422, "images", message("No image in the request", 0, "at least one image"))
    if len(named) > max_images:
        raise RequestError(
            413,
            "images",
            message("Too many images", len(named), f"at most {max_images}", "Split the request."),
        )
    return [_decode(field, data, channels) for field, data in named]


async def _uploads(request: Any, body: bytes, max_images: int) -> list[tuple[str, bytes]]:
    from starlette.datastructures import UploadFile
    from starlette.formparsers import MultiPartException
    from starlette.requests import Request

    async def replay() -> dict[str, Any]:  # the body was already read (with its size limit)
        return {"type": "http.request", "body": body, "more_body": False}

    try:
        form = await Request(request.scope, replay).form(max_files=max_images + 1, max_fields=100)
    except MultiPartException as e:
        raise RequestError(400, "body", f"The multipart body cannot be parsed: {e.message}") from None
    named = []
    for key, value in form.multi_items():
        if isinstance(value, UploadFile):
            named.append((f"{key} ({value.filename})" if value.filename else key, await value.read()))
    await form.close()
    return named


def _base64_images(body: bytes) -> list[tuple[str, bytes]]:
    try:
        payload = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RequestError(400, "body", f"The body is not valid JSON: {e}") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("images"), list):
        raise RequestError(
            422,
            "images",
            message(
                "Missing field 'images'",
                f"a JSON {type(payload).__name__}",
                '{"images": ["<base64 image file>", ...]} or a multipart/form-data upload',
            ),
        )
    extra = sorted(set(payload) - {"images"})
    if extra:
        raise RequestError(422, extra[0], message(f"Unknown field {extra[0]!r}", extra[0], "only 'images'"))
    named = []
    for i, text in enumerate(payload["images"]):
        field = f"images[{i}]"
        if not isinstance(text, str):
            raise RequestError(422, field, message(f"{field} is not a string", text, "base64 text"))
        text = text.split(",", 1)[1] if text.startswith("data:") and "," in text else text
        try:
            named.append((field, base64.b64decode(text, validate=True)))
        except (binascii.Error, ValueError):
            raise RequestError(
                422,
                field,
                message(f"{field} is not valid base64", text[:40], "the base64 text of an image file"),
            ) from None
    return named


def _decode(field: str, data: bytes, channels: int) -> torch.Tensor:
    from dltoolkit.data.images.transform import load_image

    try:
        return load_image(io.BytesIO(data), channels)
    except DataError:
        raise RequestError(
            422,
            field,
            message(f"{field} is not a readable image", f"{len(data)} bytes", "a PNG, JPEG or WebP file"),
        ) from None


def answer_images(model: Any, images: list[torch.Tensor]) -> dict[str, Any]:
    """``{"predictions": [...], "probabilities": [[...]], "warnings": []}`` for decoded images."""
    out = model.output(model.preprocessor.transform(images))
    if model.classes is None:
        return {"predictions": model.target.inverse(out).astype(float).tolist(), "warnings": []}
    return {
        "predictions": model.target.inverse(out.argmax(1)).tolist(),
        "probabilities": out.astype(float).tolist(),
        "warnings": [],
    }
