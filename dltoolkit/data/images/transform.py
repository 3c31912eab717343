"""From an image file (or a decoded array) to the model's input, with ``torchvision.transforms.v2``.

The deterministic part, what training, validation, test, predict and serve all apply:
decode (Pillow, as torchvision's ImageFolder does), convert to ``channels``, resize (``resize``
then a center crop of ``size``, or straight to ``size``), scale to [0, 1], normalise per channel.
The training transform replaces the resize by a random resized crop when ``augment.crop_scale``
is set and adds the per-image random augmentations of :class:`~dltoolkit.spec.AugmentSpec`.

:class:`ImagePreprocessor` follows the contract of :class:`~dltoolkit.data.preprocess.Preprocessor`
(arguments stored, fitted attributes ending in ``_``, JSON state), so a bundle carries it.

Example:
    >>> from dltoolkit.spec import ImageSpec
    >>> pre = ImagePreprocessor(ImageSpec(channels=1, size=8)).fit_statistics([0.5], [0.25])
    >>> pre.input_shape
    (1, 8, 8)
"""

from __future__ import annotations

import math
from typing import Any, Self

import numpy as np
import torch

from dltoolkit.errors import DataError, message
from dltoolkit.spec import AugmentSpec, ImageSpec, Spec

STATE_VERSION = 1
INPUT_NAME = "image"  # the one input "column" of an image model
_MODES = {1: "L", 3: "RGB"}


def vision():
    """``torchvision.transforms.v2``, imported beside a CPU torch (see dltoolkit._vision)."""
    from dltoolkit._extras import require
    from dltoolkit._vision import torchvision

    require("vision", "Image sources and transforms")
    torchvision()
    from torchvision.transforms import v2

    return v2


def load_image(source: Any, channels: int) -> torch.Tensor:
    """Decode an image file (a path or a binary file object) into uint8 ``(channels, H, W)``.

    Any mode on disk (grayscale, RGB, RGBA, palette, 16-bit) is converted with Pillow, as
    torchvision's ImageFolder loader does. A file Pillow cannot decode is a DataError naming it.
    """
    return decode(source, channels)[0]


def decode(source: Any, channels: int) -> tuple[torch.Tensor, str]:
    """:func:`load_image` and the image's mode on disk (Pillow's name: ``L``, ``RGB``, ``RGBA``...)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(source) as image:
            mode = image.mode
            array = np.array(image.convert(_MODES[channels]), dtype=np.uint8)
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as e:
        name = getattr(source, "name", source)
        raise DataError(
            message(
                "Cannot decode an image",
                f"{name}: {type(e).__name__}: {e}",
                "a readable PNG, JPEG, WebP (or BMP, GIF, TIFF) file",
                "Replace or remove the file (it may be truncated or not an image).",
            )
        ) from None
    tensor = torch.from_numpy(array)
    return (tensor[None] if tensor.ndim == 2 else tensor.permute(2, 0, 1).contiguous()), mode


def as_image(array: Any, channels: int) -> torch.Tensor:
    """One decoded image (numpy ``(H, W)`` / ``(H, W, C)``, torch ``(C, H, W)``) as uint8 ``(channels, H, W)``.

    uint8 values are taken as 0-255, floating-point ones as [0, 1]. RGB is made grayscale with the
    ITU-R 601 weights Pillow uses; grayscale is repeated to RGB; an alpha channel is dropped.
    """
    is_torch = isinstance(array, torch.Tensor)
    x = array.detach().cpu() if is_torch else torch.from_numpy(np.asarray(array).copy())
    if x.ndim == 2:
        x = x[None]
    elif x.ndim == 3 and not is_torch:
        x = x.permute(2, 0, 1)
    if x.ndim != 3 or x.shape[0] not in (1, 2, 3, 4) or min(x.shape[1:]) < 1:
        raise DataError(
            message(
                "Not an image array",
                tuple(array.shape),
                "numpy (H, W) or (H, W, C), or torch (C, H, W), with C in 1, 3 or 4",
            )
        )
    if x.is_floating_point():
        x = (x.clamp(0, 1) * 255).round()
    x = x.to(torch.uint8)
    x = x[:1] if x.shape[0] == 2 else x[:3] if x.shape[0] == 4 else x  # drop alpha
    if channels == 1 and x.shape[0] == 3:
        weights = torch.tensor([299, 587, 114], dtype=torch.int32)[:, None, None]
        x = ((x.to(torch.int32) * weights).sum(0, keepdim=True) + 500) // 1000
        x = x.to(torch.uint8)
    elif channels == 3 and x.shape[0] == 1:
        x = x.expand(3, -1, -1)
    return x.contiguous()


class ImagePreprocessor:
    """The deterministic image transform of a model, with the per-channel statistics it normalises by.

    Args:
        config: The spec's ``preprocess.image`` section.

    Fitted attributes: ``mean_`` and ``std_`` (per channel, [0, 1] units), ``fitted_on_`` (images
    the statistics came from; 0 when the spec gave them).
    """

    kind = "image"
    vocab_ = None
    warnings_: list[str] = []
    streamed_: bool  # set by prepare_images: the images are decoded batch by batch, not kept in memory

    def __init__(self, config: ImageSpec | None = None) -> None:
        self.config = config if config is not None else ImageSpec()
        self.feature_columns_ = [INPUT_NAME]
        self.output_names_ = [INPUT_NAME]

    @classmethod
    def from_spec(cls, spec: Spec) -> ImagePreprocessor:
        return cls(spec.preprocess.image or ImageSpec())

    # ------------------------------------------------------------------ fitting
    def fit_statistics(self, mean: list[float], std: list[float], images: int = 0) -> Self:
        """Set the normalisation (constant channels get std 1, so nothing is divided by 0)."""
        self.mean_ = [float(m) for m in mean]
        self.std_ = [float(s) if s > 1e-6 else 1.0 for s in std]
        self.fitted_on_ = int(images)
        return self

    @property
    def given(self) -> bool:
        """True when the spec gives mean and std (nothing to fit)."""
        return self.config.mean is not None

    # ------------------------------------------------------------------ transforms
    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (self.config.channels, *self.config.size)

    @property
    def input_dtype(self) -> torch.dtype:
        return torch.float32

    def geometry(self) -> Any:
        """The deterministic resize (and center crop) of uint8 images to ``size``."""
        v2 = vision()
        size = list(self.config.size)
        if self.config.resize is None:
            return v2.Resize(size, antialias=True)
        return v2.Compose([v2.Resize(self.config.resize, antialias=True), v2.CenterCrop(size)])

    def scaled(self) -> Any:
        """uint8 image -> float32 in [0, 1] at the model's size (what the statistics are fitted on)."""
        v2 = vision()
        return v2.Compose([self.geometry(), v2.ToDtype(torch.float32, scale=True)])

    def eval_transform(self) -> Any:
        """uint8 image -> the model's input: the deterministic part, saved in the bundle."""
        v2 = vision()
        return v2.Compose([self.scaled(), v2.Normalize(self.mean_, self.std_)])

    def train_transform(self, augment: AugmentSpec) -> Any:
        """uint8 image -> a randomly augmented model input (the per-image augmentations of ``augment``)."""
        v2 = vision()
        size = list(self.config.size)
        steps = [
            v2.RandomResizedCrop(size, scale=tuple(augment.crop_scale), antialias=True)
            if augment.crop_scale
            else self.geometry()
        ]
        if augment.vflip:
            steps.append(v2.RandomVerticalFlip())
        if augment.rotation:
            steps.append(v2.RandomRotation(augment.rotation))
        if augment.color_jitter:
            j = augment.color_jitter
            steps.append(
                v2.ColorJitter(brightness=j, contrast=j, saturation=j if self.config.channels == 3 else 0)
            )
        if augment.policy == "trivial":
            steps.append(v2.TrivialAugmentWide())
        elif augment.policy == "rand":
            steps.append(v2.RandAugment())
        steps += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(self.mean_, self.std_)]
        return v2.Compose(steps)

    def transform(self, images: list[torch.Tensor]) -> torch.Tensor:
        """Decoded uint8 images (any sizes) -> a float32 batch ``(n, C, H, W)`` of model inputs."""
        self._require_fitted()
        if not images:
            return torch.zeros((0, *self.input_shape))
        step = self.eval_transform()
        return torch.stack([step(as_image(x, self.config.channels)) for x in images])

    def resized(self, images: list[torch.Tensor]) -> torch.Tensor:
        """Decoded uint8 images -> uint8 ``(n, C, H, W)`` at the model's size (what export takes)."""
        step = self.geometry()
        return torch.stack([step(as_image(x, self.config.channels)) for x in images])

    # ------------------------------------------------------------------ state
    def to_state(self) -> dict[str, Any]:
        self._require_fitted()
        return {
            "version": STATE_VERSION,
            "kind": self.kind,
            "config": self.config.model_dump(mode="json"),
            "mean": self.mean_,
            "std": self.std_,
            "fitted_on": self.fitted_on_,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> ImagePreprocessor:
        if (
            not isinstance(state, dict)
            or state.get("kind") != cls.kind
            or state.get("version") != STATE_VERSION
        ):
            got = {k: state.get(k) for k in ("kind", "version")} if isinstance(state, dict) else state
            raise DataError(
                message(
                    "Unsupported image preprocessing state", got, f"kind 'image', version {STATE_VERSION}"
                )
            )
        pre = cls(ImageSpec.model_validate(state["config"]))
        return pre.fit_statistics(state["mean"], state["std"], state.get("fitted_on", 0))

    def _require_fitted(self) -> None:
        if not hasattr(self, "mean_"):
            raise DataError(
                message("The image preprocessing is not fitted", None, "mean and std per channel",
                        "Fit it on the training images (prepare does) or restore it with from_state().")
            )  # fmt: skip

    def __repr__(self) -> str:
        stats = f", mean={[round(m, 4) for m in self.mean_]}" if hasattr(self, "mean_") else ""
        return f"ImagePreprocessor(shape={self.input_shape}{stats})"


class ChannelMoments:
    """Per-channel sums of a stream of float image batches; ``mean`` and population ``std`` at the end.

    Sums are float64, so the result equals a direct computation over all the pixels at once.
    """

    def __init__(self, channels: int) -> None:
        self.total = torch.zeros(channels, dtype=torch.float64)
        self.squares = torch.zeros(channels, dtype=torch.float64)
        self.pixels, self.images = 0, 0

    def add(self, batch: torch.Tensor) -> None:
        x = batch.to(torch.float64)
        self.total += x.sum(dim=(0, 2, 3))
        self.squares += (x * x).sum(dim=(0, 2, 3))
        self.pixels += x.shape[0] * x.shape[2] * x.shape[3]
        self.images += x.shape[0]

    def result(self) -> tuple[list[float], list[float]]:
        mean = self.total / max(1, self.pixels)
        var = (self.squares / max(1, self.pixels) - mean * mean).clamp_min(0.0)
        return mean.tolist(), [math.sqrt(v) for v in var.tolist()]


def is_image_preprocessor(pre: Any) -> bool:
    return getattr(pre, "kind", None) == ImagePreprocessor.kind
