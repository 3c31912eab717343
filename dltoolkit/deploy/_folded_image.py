"""The folded graph of an image model: uint8 images in, probabilities (or values) out.

The exported model takes ``features``: uint8 ``(n, C, H, W)``, images already decoded, converted to
the model's ``C`` channels (grayscale or RGB) and resized to its ``H x W`` (``preprocess.image``:
the shorter side resized to ``resize`` then a center crop, or resized straight to ``size``;
bilinear with antialiasing, as ``torchvision.transforms.v2.Resize``). That much is left to the
caller (decoders and resizers differ by platform and ONNX has no image decoder). The graph then
does the rest of the bundle's work: scaling to [0, 1], the per-channel normalisation fitted in
training, the network, and softmax / sigmoid into class probabilities ``(n, classes)``, or the
inverse target scaling into values ``(n,)`` (float64) for regression.

A bundle carries up to 16 of its test images at the model's size (``examples.pt``); export
verifies the exported file on them, or on the images ``data`` names (a folder, files or arrays).
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeGuard

import numpy as np
import torch
from torch import nn

from dltoolkit._files import atomic_path
from dltoolkit._quiet import quiet_libraries
from dltoolkit.bundle import Predictor, _to_output, load
from dltoolkit.deploy.export import INPUT_NAME, OUTPUT_NAME, ExportError, max_difference
from dltoolkit.errors import DataError, message

if TYPE_CHECKING:
    from dltoolkit.data.images.predictor import ImagePredictor


def is_image_model(model: Any) -> TypeGuard[Predictor | str | os.PathLike]:
    """True for an image model: a Predictor over an image transform, or a bundle folder holding one."""
    if isinstance(model, str | os.PathLike):
        file = Path(model) / "preprocess.json"
        try:
            return json.loads(file.read_text())["preprocessor"].get("kind") == "image"
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return False  # not a bundle folder, or a damaged one: the general path says what is wrong
    return getattr(getattr(model, "preprocessor", None), "kind", None) == "image"


def export_image(model: Predictor | str | os.PathLike, format: str, *, out: Path, tolerance: float,
                 data: Any = None) -> tuple[Path, float, int]:  # fmt: skip
    """Export an image model (see the module's doc) and verify it; ``(path, max difference, images)``."""
    from dltoolkit.data.images.predictor import ImagePredictor

    predictor = model if isinstance(model, Predictor) else load(model)
    assert isinstance(predictor, ImagePredictor)  # is_image_model(model): an image model's bundle
    module, x = FoldedImageModel(predictor).eval(), image_examples(predictor, data)
    with atomic_path(out) as tmp:  # only a verified export is renamed into place
        with quiet_libraries():
            run = (_write_onnx if format == "onnx" else _write_torchscript)(
                module, torch.from_numpy(x[:4]), tmp
            )
        got, want = run(x), image_reference(predictor, x)
        diff = max_difference(got, want)
        if not diff <= tolerance:
            raise ExportError(
                message(
                    f"The {format} export does not reproduce the bundle's outputs on {len(x)} images",
                    f"max |exported - bundle| / max(1, |bundle|) = {diff:.6g}",
                    f"at most {tolerance:g}",
                    "Nothing was written.",
                )
            )
    return out, diff, len(x)


def _write_onnx(module: nn.Module, example: torch.Tensor, path: Path) -> Callable[[np.ndarray], np.ndarray]:
    import onnxruntime as ort

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                module,
                (example,),
                dynamo=True,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_shapes=({0: torch.export.Dim("batch")},),
                verbose=False,
            )
        assert program is not None  # dynamo=True returns the ONNX program
        program.save(str(path))
    except Exception as e:  # the exporter's own errors are many and undocumented
        raise ExportError(f"The ONNX exporter failed: {type(e).__name__}: {e}") from e
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return lambda x: session.run(None, {INPUT_NAME: x})[0]


def _write_torchscript(
    module: nn.Module, example: torch.Tensor, path: Path
) -> Callable[[np.ndarray], np.ndarray]:
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.jit.save(torch.jit.trace(module, (example,), check_trace=False), str(path))
    except Exception as e:
        raise ExportError(f"TorchScript tracing failed: {type(e).__name__}: {e}") from e
    loaded = torch.jit.load(str(path))

    def run(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return loaded(torch.from_numpy(np.ascontiguousarray(x))).numpy()

    return run


class FoldedImageModel(nn.Module):
    """An image model with its normalisation and output mapping: uint8 images in, outputs out."""

    mean: torch.Tensor  # buffers (traced or exported, never scripted: see dltoolkit.deploy._folded)
    std: torch.Tensor

    def __init__(self, predictor: ImagePredictor) -> None:
        super().__init__()
        pre, target = predictor.image_preprocessor, predictor.target
        self.register_buffer("mean", torch.tensor(pre.mean_, dtype=torch.float32)[None, :, None, None])
        self.register_buffer("std", torch.tensor(pre.std_, dtype=torch.float32)[None, :, None, None])
        self.kind = predictor.spec.task.kind
        self.center = float(target.center_) if self.kind == "regression" else 0.0
        self.spread = float(target.spread_) if self.kind == "regression" else 1.0
        self.model = predictor.model.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = (x.to(torch.float32) / 255.0 - self.mean) / self.std
        out = self.model(z)
        if self.kind == "regression":
            return out.squeeze(-1).to(torch.float64) * self.spread + self.center
        return _to_output(out, self.kind)


def image_examples(model: ImagePredictor, data: Any = None) -> np.ndarray:
    """uint8 ``(n, C, H, W)`` images to verify an export on: ``data`` (images as ``predict`` takes
    them, resized here) or the bundle's example images."""
    pre = model.image_preprocessor
    if data is not None:
        from dltoolkit.data.images.predictor import read_images
        from dltoolkit.data.images.transform import load_image

        images = read_images(data, pre.config.channels)
        if not isinstance(images, list):  # files
            images = [load_image(p, pre.config.channels) for p in images["path"].head(256)]
        return pre.resized(images).numpy()
    examples = model.example_images()
    if examples is None:
        raise DataError(
            message(
                "No images to verify the export on",
                "a bundle without example images",
                "a bundle written by dltoolkit run (it keeps 16 test images) or images given as data",
                "Pass --data FOLDER (or data=... in Python) with a few images.",
            )
        )
    return examples.numpy()


def image_reference(model: ImagePredictor, x: np.ndarray) -> np.ndarray:
    """The bundle's outputs on uint8 images at the model's size: probabilities or original units."""
    out = model.output(model.image_preprocessor.transform(list(torch.from_numpy(x))))
    return out if model.classes is not None else model.target.inverse(out)
