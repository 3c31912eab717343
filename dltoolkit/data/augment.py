"""Training-time augmentation of a batch: random shift, horizontal flip, Gaussian noise.

Everything is vectorised over the batch (no Python loop over samples), so it is cheap enough
to apply to every training batch.

Example:
    >>> import torch
    >>> from dltoolkit.spec import AugmentSpec
    >>> augment = make_augment(AugmentSpec(shift=1, flip=True), (1, 8, 8))
    >>> augment(torch.zeros(4, 1, 8, 8)).shape
    torch.Size([4, 1, 8, 8])
    >>> make_augment(AugmentSpec(), (64,)) is None
    True
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from dltoolkit.errors import DataError, message
from dltoolkit.spec import AugmentSpec

Augment = Callable[..., torch.Tensor]


def make_augment(config: AugmentSpec, input_shape: tuple[int, ...]) -> Augment | None:
    """Build ``augment(batch, generator=None) -> batch`` for ``config``, or None when it does nothing.

    Args:
        config: The spec's ``preprocess.augment`` section.
        input_shape: The shape of one sample; shift and flip need at least 2 dimensions
            (``(H, W)`` or ``(C, H, W)``): set ``preprocess.shape`` for flat image features.

    Raises:
        DataError: shift or flip asked for with one-dimensional samples.
    """
    if not (config.shift or config.flip or config.noise):
        return None
    if (config.shift or config.flip) and len(input_shape) < 2:
        raise DataError(
            message(
                "Shift and flip need image-shaped samples",
                tuple(input_shape),
                "a shape such as (C, H, W) or (H, W)",
                "Set preprocess.shape, e.g. [1, 8, 8].",
            )
        )

    def augment(batch: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        if config.shift:
            batch = random_shift(batch, config.shift, generator)
        if config.flip:
            batch = random_flip(batch, generator)
        if config.noise:
            batch = add_noise(batch, config.noise, generator)
        return batch

    return augment


def random_shift(batch: torch.Tensor, shift: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Shift each sample by up to ``shift`` pixels in both directions (zero padding, then a crop)."""
    *lead, h, w = batch.shape
    n = batch.shape[0]
    flat = batch.reshape(n, -1, h, w)
    c = flat.shape[1]
    padded = F.pad(flat, (shift, shift, shift, shift))
    device = _gen_device(generator, batch)
    dy = torch.randint(0, 2 * shift + 1, (n,), generator=generator, device=device).to(batch.device)
    dx = torch.randint(0, 2 * shift + 1, (n,), generator=generator, device=device).to(batch.device)
    rows = (dy[:, None] + torch.arange(h, device=batch.device))[:, None, :, None]
    cols = (dx[:, None] + torch.arange(w, device=batch.device))[:, None, None, :]
    cropped = padded.gather(2, rows.expand(n, c, h, w + 2 * shift)).gather(3, cols.expand(n, c, h, w))
    return cropped.reshape(*lead, h, w)


def random_flip(batch: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Mirror each sample along its last dimension with probability 1/2."""
    n = batch.shape[0]
    flip = torch.rand(n, generator=generator, device=_gen_device(generator, batch)).to(batch.device) < 0.5
    mask = flip.reshape(n, *([1] * (batch.dim() - 1)))
    return torch.where(mask, batch.flip(-1), batch)


def add_noise(batch: torch.Tensor, std: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Add Gaussian noise of standard deviation ``std`` (floating-point inputs only)."""
    if not batch.is_floating_point():
        raise DataError(
            message(
                "Noise cannot be added to integer inputs",
                str(batch.dtype),
                "floating-point features",
                "Set preprocess.augment.noise: 0 for text.",
            )
        )
    device = _gen_device(generator, batch)
    noise = torch.randn(batch.shape, generator=generator, device=device, dtype=batch.dtype)
    return batch + std * noise.to(batch.device)


def _gen_device(generator: torch.Generator | None, batch: torch.Tensor) -> torch.device:
    """Draw random numbers where the generator lives (the batch's device when there is none)."""
    return generator.device if generator is not None else batch.device
