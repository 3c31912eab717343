"""Predictions of an image model from image files, a folder, a manifest or decoded arrays.

``Predictor(...)`` over an :class:`~dltoolkit.data.images.transform.ImagePreprocessor` is an
:class:`ImagePredictor`: the bundle's ``predict`` and ``predict_proba`` take

* a path to an image file, to a folder (every image file under it, sorted), or to a CSV/Parquet
  manifest with a column of paths (relative to the manifest); a list of paths; a DataFrame with
  a ``path`` column;
* decoded images: a numpy array ``(H, W)``, ``(H, W, C)`` or a batch ``(n, H, W, C)``; a torch
  tensor ``(C, H, W)`` or ``(n, C, H, W)``; a PIL image; or a list of these, of any sizes
  (uint8 as 0-255, floats as [0, 1]).

Files are decoded in DataLoader worker processes batch by batch (in this process for fewer than
:data:`IN_PROCESS` files, where starting workers would cost more than decoding); arrays are
transformed here. Either way the deterministic transform of training is applied.

Example:
    >>> model = load("runs/digits-folder/model")             # doctest: +SKIP
    >>> model.predict("new-scans/")                           # doctest: +SKIP
    array(['3', '7', ...], dtype=object)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from dltoolkit.bundle import Predictor
from dltoolkit.data._rows import Column
from dltoolkit.data.images.source import MANIFEST_EXTENSIONS, PATH, PATH_NAMES, images_under, is_image_file
from dltoolkit.data.images.stream import ImageFiles, outputs
from dltoolkit.data.images.transform import INPUT_NAME, ImagePreprocessor, as_image, load_image
from dltoolkit.errors import DataError, message

EXAMPLES_FILE = "examples.pt"  # a bundle's example images: uint8 (n, C, H, W) at the model's size
EXAMPLE_IMAGES = 16
IN_PROCESS = 64  # fewer files than this are decoded in this process


class ImagePredictor(Predictor):
    """A trained image model with its deterministic transform (see the module's doc)."""

    @property
    def image_preprocessor(self) -> ImagePreprocessor:
        """:attr:`preprocessor`, typed as the image transform it is here (Predictor types the tabular one)."""
        pre = self.preprocessor
        assert isinstance(pre, ImagePreprocessor)  # Predictor(...) is an ImagePredictor only over one
        return pre

    @property
    def input_schema(self) -> list[Column]:
        return [Column(INPUT_NAME, "image", False)]

    def check_inputs(self, X: Any) -> tuple[pd.DataFrame | list[torch.Tensor], list[str]]:
        """Files as a DataFrame with a ``path`` column, or decoded images as a list of uint8 tensors.

        Raises:
            DataError: a missing file or folder, a folder without images, or an unusable array.
        """
        return read_images(X, self.image_preprocessor.config.channels), []

    # a Dataset for many files, which this class's output() takes (Predictor.transform: a tensor only)
    def transform(self, X: Any) -> torch.Tensor | Dataset:  # type: ignore[override]
        """Model inputs: a float32 batch, or for many files a dataset decoded lazily in workers."""
        images, _ = self.check_inputs(X)
        pre = self.image_preprocessor
        if isinstance(images, pd.DataFrame):
            files = ImageFiles(images[PATH].tolist(), None, pre)
            if len(files) >= IN_PROCESS:
                return files
            images = [files[i] for i in range(len(files))]
            return torch.stack(images)
        return pre.transform(images)

    def output(self, x: torch.Tensor | Dataset, batch_size: int = 256) -> np.ndarray:
        """Probabilities (n, C) or scaled values (n,) from inputs or a dataset of them (streamed)."""
        if isinstance(x, torch.Tensor):
            return super().output(x)
        model = _Outputs(self.model, self.spec.task.kind)
        return outputs(model, x, batch_size, self.spec.data.workers).numpy()

    def example_input(self, n: int = 3) -> torch.Tensor:
        """``n`` black images at the model's size (uint8 ``(n, C, H, W)``), handy to check the wiring."""
        return torch.zeros((n, *self.preprocessor.input_shape), dtype=torch.uint8)

    def example_images(self) -> torch.Tensor | None:
        """Up to :data:`EXAMPLE_IMAGES` test images, uint8 at the model's size (what export verifies on)."""
        if not isinstance(self.examples, pd.DataFrame):
            return self.examples  # already images (a loaded bundle's), or None
        pre = self.image_preprocessor
        channels = pre.config.channels
        paths = self.examples[PATH].head(EXAMPLE_IMAGES)
        return pre.resized([load_image(p, channels) for p in paths]) if len(paths) else None

    def write_examples(self, folder: Path) -> None:
        images = self.example_images()
        if images is not None:
            torch.save(images.contiguous(), folder / EXAMPLES_FILE)


class _Outputs(torch.nn.Module):
    """The model followed by the output mapping of :meth:`Predictor.output`."""

    def __init__(self, model: torch.nn.Module, kind: str) -> None:
        super().__init__()
        self.model, self.kind = model, kind

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from dltoolkit.bundle import _to_output

        return _to_output(self.model(x), self.kind)


def read_example_images(folder: Path) -> torch.Tensor | None:
    """A bundle's example images (None when it has none), read with ``weights_only=True``."""
    file = folder / EXAMPLES_FILE
    if not file.is_file():
        return None
    from dltoolkit.bundle import BundleError

    try:
        images = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as e:
        raise BundleError(
            message(f"Damaged bundle file {str(file)!r}", f"{type(e).__name__}: {e}",
                    "the example images dltoolkit wrote", "Write the bundle again or delete the file.")
        ) from None  # fmt: skip
    return images


# ---------------------------------------------------------------------- reading inputs
def read_images(X: Any, channels: int) -> pd.DataFrame | list[torch.Tensor]:
    """Files as a DataFrame with a ``path`` column, or decoded images as uint8 ``(channels, H, W)`` tensors."""
    if isinstance(X, str | os.PathLike):
        return _files(_paths_at(Path(X).expanduser()))
    if isinstance(X, pd.DataFrame):
        return _files(_manifest_paths(X, Path.cwd(), "the DataFrame"))
    if isinstance(X, np.ndarray | torch.Tensor):
        return [as_image(x, channels) for x in _split_batch(X)]
    if _is_pil(X):
        return [as_image(np.asarray(X), channels)]
    if isinstance(X, list | tuple) and X:
        if all(isinstance(x, str | os.PathLike) for x in X):
            return _files([Path(x).expanduser() for x in X])
        return [as_image(np.asarray(x) if _is_pil(x) else x, channels) for x in X]
    raise DataError(
        message(
            "Cannot predict on this input",
            f"{type(X).__name__}{' (empty)' if isinstance(X, list | tuple) else ''}",
            "image paths, a folder, a manifest, a DataFrame with a path column, or decoded image arrays",
        )
    )


def _paths_at(path: Path) -> list[Path]:
    if path.is_dir():
        found = images_under(path)
        if not found:
            raise DataError(
                message("No image files in the folder", str(path), "a folder with image files (any depth)",
                        "Check the path.")
            )  # fmt: skip
        return found
    if path.suffix.lower() in MANIFEST_EXTENSIONS and path.is_file():
        frame = pd.read_csv(path) if path.suffix.lower() == ".csv" else pd.read_parquet(path)
        return _manifest_paths(frame, path.parent, repr(path.name))
    return [path]


def _manifest_paths(frame: pd.DataFrame, folder: Path, what: str) -> list[Path]:
    lower = {str(c).lower(): c for c in frame.columns}
    column = next((lower[n] for n in PATH_NAMES if n in lower), None)
    if column is None:
        raise DataError(
            message(f"No column of image paths in {what}", [str(c) for c in frame.columns],
                    f"a column named one of {list(PATH_NAMES)}")
        )  # fmt: skip
    return [folder / Path(str(p)).expanduser() for p in frame[column]]


def _files(paths: list[Path]) -> pd.DataFrame:
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise DataError(
            message(f"{len(missing)} image file(s) not found", missing[:5], "existing image files",
                    f"Check the paths (working directory: {Path.cwd()}).")
        )  # fmt: skip
    odd = [str(p) for p in paths if not is_image_file(p)]
    if odd:
        raise DataError(
            message(f"{len(odd)} file(s) without an image extension", odd[:5],
                    "files ending in .png, .jpg, .jpeg, .webp (or .bmp, .gif, .tif)", "Rename or leave them out.")
        )  # fmt: skip
    if not paths:
        raise DataError(message("No images to predict", 0, "at least one image"))
    return pd.DataFrame({PATH: [str(p) for p in paths]})


def _split_batch(X: np.ndarray | torch.Tensor) -> list[Any]:
    """One image or a batch: numpy (H, W) / (H, W, C) / (n, H, W, C); torch (C, H, W) / (n, C, H, W)."""
    if isinstance(X, torch.Tensor):
        return list(X) if X.ndim == 4 else [X]
    if X.ndim == 4 or (X.ndim == 3 and X.shape[-1] not in (1, 3, 4)):
        return list(X)  # (n, H, W, C), or (n, H, W) grayscale
    return [X]


def _is_pil(x: Any) -> bool:
    return type(x).__module__.startswith("PIL.")
