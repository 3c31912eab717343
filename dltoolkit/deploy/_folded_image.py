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

from typing import Any

import numpy as np
import torch
from torch import nn

from dltoolkit.bundle import Predictor, _to_output
from dltoolkit.errors import DataError, message


class FoldedImageModel(nn.Module):
    """An image model with its normalisation and output mapping: uint8 images in, outputs out."""

    def __init__(self, predictor: Predictor) -> None:
        super().__init__()
        pre, target = predictor.preprocessor, predictor.target
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


def image_examples(model: Predictor, data: Any = None) -> np.ndarray:
    """uint8 ``(n, C, H, W)`` images to verify an export on: ``data`` (images as ``predict`` takes
    them, resized here) or the bundle's example images."""
    pre = model.preprocessor
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


def image_reference(model: Predictor, x: np.ndarray) -> np.ndarray:
    """The bundle's outputs on uint8 images at the model's size: probabilities or original units."""
    out = model.output(model.preprocessor.transform(list(torch.from_numpy(x))))
    return out if model.classes is not None else model.target.inverse(out)
