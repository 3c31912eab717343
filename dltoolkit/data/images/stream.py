"""Images decoded where they are used: in ``DataLoader`` worker processes, one batch at a time.

:class:`ImageFiles` is a map-style dataset of file paths whose items are decoded and transformed
in ``__getitem__``, so with ``num_workers > 0`` the driver only ever holds the batches in flight
(the loader's ``prefetch_factor`` per worker). :func:`first_pass` reads every file of a source
once, before training: it finds unreadable files (one error listing them), counts the image
modes, sums the training images' channel moments for the normalisation, and, for a source under
the in-memory budget, keeps the decoded images.

Example:
    >>> files = ImageFiles(["a.png"], torch.tensor([0]), pre)   # doctest: +SKIP
    >>> next(iter(loader(files, 32, workers=2)))[0].shape       # doctest: +SKIP
    torch.Size([1, 3, 32, 32])
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from dltoolkit.data.images.transform import ChannelMoments, ImagePreprocessor, decode, load_image, vision
from dltoolkit.errors import DataError, message
from dltoolkit.spec import AugmentSpec

PASS_BATCH = 128  # images per batch of the first pass


def worker_count(workers: int | None) -> int:
    """``data.workers``, or by default one fewer than the CPUs (at least 1, at most 4)."""
    if workers is not None:
        return workers
    return min(4, max(1, (os.cpu_count() or 2) - 1))


class ImageFiles(Dataset):
    """Image files as model inputs, decoded and transformed one by one in ``__getitem__``.

    Args:
        paths: The image files.
        targets: One encoded target per file (class index or scaled value), or None: items are then
            the inputs alone.
        preprocessor: The fitted image preprocessing (its statistics normalise the inputs).
        augment: The training augmentations; None for the deterministic (evaluation) transform.
        stage: ``"model"`` (model inputs) or ``"scaled"`` (unnormalised [0, 1] images at the model's
            size, what the statistics are fitted on; items are then ``(image, index, mode)``, and an
            unreadable file gives ``mode`` ``""`` instead of an error).
    """

    def __init__(
        self,
        paths: Sequence[str],
        targets: torch.Tensor | None,
        preprocessor: ImagePreprocessor,
        augment: AugmentSpec | None = None,
        stage: str = "model",
    ) -> None:
        self.paths = [str(p) for p in paths]
        self.targets, self.preprocessor, self.augment, self.stage = targets, preprocessor, augment, stage
        self._transform = None  # built in the process that uses it (a worker), never pickled

    def __len__(self) -> int:
        return len(self.paths)

    def __getstate__(self) -> dict[str, Any]:
        return self.__dict__ | {"_transform": None}

    def transform(self) -> Any:
        if self._transform is None:
            pre = self.preprocessor
            if self.stage == "scaled":
                self._transform = pre.scaled()
            elif self.augment is not None:
                self._transform = pre.train_transform(self.augment)
            else:
                self._transform = pre.eval_transform()
        return self._transform

    def __getitem__(self, index: int) -> Any:
        if self.stage == "scaled":
            return self._scaled(index)
        x = self.transform()(load_image(self.paths[index], self.preprocessor.config.channels))
        return x if self.targets is None else (x, self.targets[index])

    def _scaled(self, index: int) -> tuple[torch.Tensor, int, str]:
        try:
            image, mode = decode(self.paths[index], self.preprocessor.config.channels)
        except DataError:
            return torch.zeros(self.preprocessor.input_shape), index, ""
        return self.transform()(image), index, mode


def loader(
    dataset: Dataset,
    batch_size: int,
    *,
    workers: int | None = None,
    shuffle: bool = False,
    seed: int = 0,
    persistent: bool = False,
) -> DataLoader:
    """A DataLoader decoding in ``worker_count(workers)`` processes; shuffled with a seeded generator.

    The generator also seeds the workers' random augmentations, so a seed gives the same epochs.
    """
    n = worker_count(workers)
    if n:
        vision()  # imported once here: forked workers inherit it instead of each importing it
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        generator=torch.Generator().manual_seed(seed),
        num_workers=n,
        persistent_workers=persistent and n > 0,
    )


@dataclass
class Pass:
    """What :func:`first_pass` found: the training moments, the image modes, the images if kept."""

    moments: ChannelMoments
    modes: Counter
    images: torch.Tensor | None  # (n, C, H, W) float32 in [0, 1] when kept, else None


def first_pass(
    paths: Sequence[str], train: np.ndarray, pre: ImagePreprocessor, keep: bool, workers: int | None
) -> Pass:
    """Read every file once (in DataLoader workers): check it, count modes, fit on ``train`` positions.

    Raises:
        DataError: files that cannot be decoded (how many, the first ones), before any training.
    """
    is_train = np.zeros(len(paths), dtype=bool)
    is_train[train] = True
    moments = ChannelMoments(pre.config.channels)
    modes: Counter = Counter()
    bad: list[str] = []
    kept = torch.empty((len(paths), *pre.input_shape)) if keep else None
    for x, index, mode in loader(ImageFiles(paths, None, pre, stage="scaled"), PASS_BATCH, workers=workers):
        ok = torch.tensor([m != "" for m in mode])
        bad += [paths[i] for i in index[~ok].tolist()]
        modes.update(m for m in mode if m)
        chosen = torch.from_numpy(is_train[index.numpy()]) & ok
        if chosen.any():
            moments.add(x[chosen])
        if kept is not None:
            kept[index] = x
    if bad:
        raise DataError(
            message(
                f"{len(bad)} of {len(paths)} image file(s) cannot be decoded",
                bad[:5],
                "image files Pillow can read (PNG, JPEG, WebP, BMP, GIF, TIFF)",
                "Replace or remove them; nothing was trained.",
            )
        )
    return Pass(moments, modes, kept)


def normalize(images: torch.Tensor, pre: ImagePreprocessor) -> torch.Tensor:
    """[0, 1] images normalised as ``v2.Normalize(mean_, std_)`` does, in place."""
    mean = torch.tensor(pre.mean_, dtype=images.dtype)[:, None, None]
    std = torch.tensor(pre.std_, dtype=images.dtype)[:, None, None]
    return images.sub_(mean).div_(std)


def outputs(model: torch.nn.Module, dataset: Dataset, batch_size: int, workers: int | None) -> torch.Tensor:
    """``model`` over a dataset of inputs (or ``(input, target)`` pairs), decoded in worker processes."""
    outs = []
    with torch.inference_mode():
        for batch in loader(dataset, batch_size, workers=workers):
            x = batch[0] if isinstance(batch, list | tuple) else batch
            outs.append(model(x))
    return torch.cat(outs) if outs else torch.zeros(0)
