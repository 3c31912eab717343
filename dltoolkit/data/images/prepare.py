"""An image source prepared for training: files split, statistics fitted, inputs in memory or streamed.

The split is drawn on the file list (stratified by class, or by target quantiles for regression)
with the same code as for tables; no image is decoded for it. Then :func:`first_pass` reads every
file once in DataLoader workers (an unreadable file is an error before training) and fits the
per-channel mean and std on the training split (unless ``preprocess.image`` gives them).

Two ways to feed training, chosen per source:

* **in memory**: when the decoded images of all splits (float32 at the model's size) fit in
  ``data.in_memory_mb`` and no per-image augmentation is set, the first pass keeps them, and
  training batches are sliced from tensors as for a table (the fastest path for small sources);
* **streamed**: otherwise ``X_train``, ``X_val`` and ``X_test`` are :class:`ImageFiles` datasets,
  decoded (and augmented, for training) in DataLoader worker processes batch by batch every epoch,
  so memory does not grow with the number of images.

Example:
    >>> data = prepare_images(spec)   # doctest: +SKIP
    >>> data.input_shape              # doctest: +SKIP
    (3, 32, 32)
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from dltoolkit.data.images.source import PATH, image_files
from dltoolkit.data.images.stream import ImageFiles, first_pass, normalize
from dltoolkit.data.images.transform import ImagePreprocessor
from dltoolkit.data.target import TargetEncoder, check_target
from dltoolkit.spec import Spec


def fits_in_memory(spec: Spec, n_images: int, pre: ImagePreprocessor) -> bool:
    """True when the source takes the in-memory path (see the module's doc)."""
    size = n_images * math.prod(pre.input_shape) * 4
    return size <= spec.data.in_memory_mb * 2**20 and not spec.preprocess.augment.per_image()


def prepare_images(spec: Spec):
    """The :class:`~dltoolkit.data.prepare.Prepared` data of an image source (see the module's doc)."""
    from dltoolkit.data.prepare import Prepared, check_class_names, split_positions

    files = image_files(spec)
    paths = files[PATH].to_numpy()
    y = check_target(files[spec.task.target], spec.task)
    train, val, test = split_positions(spec, y)
    target = TargetEncoder(spec.task.kind, spec.preprocess.target_scale).fit(y.iloc[train])
    check_class_names(spec, target)
    pre = ImagePreprocessor.from_spec(spec)
    keep = fits_in_memory(spec, len(paths), pre)
    found = first_pass(list(paths), train, pre, keep, spec.data.workers)
    config = pre.config
    if pre.given:
        assert config.mean is not None and config.std is not None  # what given means
        pre.fit_statistics(config.mean, config.std)
    else:
        pre.fit_statistics(*found.moments.result(), images=found.moments.images)
    pre.warnings_ = _mode_notes(found.modes, config.channels)
    pre.streamed_ = not keep
    encoded = {role: torch.from_numpy(target.transform(y.iloc[rows])) for role, rows in
               (("train", train), ("val", val), ("test", test))}  # fmt: skip
    inputs: dict[str, torch.Tensor | Dataset]
    if keep:
        assert found.images is not None  # first_pass keeps the images when told to
        images = normalize(found.images, pre)
        inputs = {role: images[rows] for role, rows in (("train", train), ("val", val), ("test", test))}
    else:
        augment = spec.preprocess.augment
        inputs = {
            "train": ImageFiles(
                paths[train], encoded["train"], pre, augment if augment.per_image() else None
            ),
            "val": ImageFiles(paths[val], encoded["val"], pre),
            "test": ImageFiles(paths[test], encoded["test"], pre),
        }
    raw_test = pd.DataFrame({PATH: paths[test]})
    return Prepared.of(spec, inputs, encoded, raw_test, y.iloc[test].to_numpy(), pre, target)


def _mode_notes(modes, channels: int) -> list[str]:
    """One sentence when the images on disk come in several modes (all were converted)."""
    if len(modes) < 2:
        return []
    counts = ", ".join(f"{mode}: {n}" for mode, n in sorted(modes.items()))
    into = "grayscale" if channels == 1 else "RGB"
    return [
        f"The images come in {len(modes)} modes ({counts}); all were converted to {into} "
        f"(preprocess.image.channels: {channels})."
    ]


def split_files(spec: Spec) -> dict[str, np.ndarray]:
    """The image paths of each split (``train``, ``val``, ``test``), without decoding anything."""
    from dltoolkit.data.prepare import split_positions

    files = image_files(spec)
    y = check_target(files[spec.task.target], spec.task)
    positions = split_positions(spec, y)
    paths = files[PATH].to_numpy()
    return {role: paths[rows] for role, rows in zip(("train", "val", "test"), positions, strict=True)}
