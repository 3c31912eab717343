"""Batch augmentation: shapes kept, inputs changed, reproducible with a generator."""

from __future__ import annotations

import pytest
import torch

from dltoolkit.data import make_augment
from dltoolkit.data.augment import random_shift
from dltoolkit.errors import DataError
from dltoolkit.spec import AugmentSpec


def test_nothing_enabled_gives_none():
    assert make_augment(AugmentSpec(), (1, 8, 8)) is None


@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 6, 5), (8, 8)], ids=["chw", "rgb", "hw"])
@pytest.mark.parametrize(
    "config",
    [{"shift": 2}, {"flip": True}, {"noise": 0.1}, {"shift": 1, "flip": True, "noise": 0.05}],
    ids=["shift", "flip", "noise", "all"],
)
def test_shapes_kept_and_inputs_changed(shape, config):
    augment = make_augment(AugmentSpec(**config), shape)
    batch = torch.rand(64, *shape)
    out = augment(batch, generator=torch.Generator().manual_seed(0))
    assert out.shape == batch.shape and out.dtype == batch.dtype
    assert not torch.equal(out, batch)
    again = augment(batch, generator=torch.Generator().manual_seed(0))
    assert torch.equal(out, again)


def test_shift_moves_pixels_within_bounds():
    batch = torch.zeros(32, 1, 5, 5)
    batch[:, 0, 2, 2] = 1.0
    out = random_shift(batch, 1, torch.Generator().manual_seed(1))
    assert torch.all(out.sum(dim=(1, 2, 3)) == 1)  # a shift of 1 keeps the centre pixel in the image
    positions = out.reshape(32, -1).argmax(dim=1)
    assert len(positions.unique()) > 1  # different samples shifted differently


def test_noise_only_works_on_flat_features_and_shift_needs_images():
    assert make_augment(AugmentSpec(noise=0.1), (10,))(torch.zeros(4, 10)).abs().sum() > 0
    with pytest.raises(DataError, match=r"Shift and flip need image-shaped samples: received \(64,\)"):
        make_augment(AugmentSpec(shift=1), (64,))


def test_noise_on_token_ids_is_an_error():
    with pytest.raises(DataError, match="Noise cannot be added to integer inputs"):
        make_augment(AugmentSpec(noise=0.1), (8,))(torch.zeros(2, 8, dtype=torch.int64))
