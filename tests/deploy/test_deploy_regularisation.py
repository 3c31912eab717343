"""Each regularisation option of the spec changes real (short) Lightning training.

Weight decay, dropout, label smoothing, early stopping, gradient clipping and augmentation are
plain spec values (``train.optimizer.weight_decay``, a ``dropout`` node, ``train.label_smoothing``,
``train.early_stopping``, ``train.grad_clip``, ``preprocess.augment``), reachable by panels and
sweeps through ``Spec.with_values``. Every test trains with ``dltoolkit.train.fit.fit``.
"""

from __future__ import annotations

import math

import pytest
import torch
from pytorch_lightning.callbacks import Callback

from dltoolkit.api import check, resolve_spec
from dltoolkit.train.fit import fit


class Probe(Callback):
    """Records the parameters at the start and end of training and the inputs the model sees."""

    def __init__(self) -> None:
        self.train_inputs: list[torch.Tensor] = []
        self.val_inputs: list[torch.Tensor] = []

    def on_train_start(self, trainer, module) -> None:
        self.start = _flat(module.model)

        def record(mod, args):
            (self.train_inputs if mod.training else self.val_inputs).append(args[0].detach().clone())

        self.hook = module.model.register_forward_pre_hook(record)

    def on_train_end(self, trainer, module) -> None:
        self.end = _flat(module.model)
        self.hook.remove()


def _flat(model: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten().clone() for p in model.parameters()])


def train(recipe: str, tmp_path, **overrides):
    """Fit ``recipe`` with ``overrides``; return (FitResult, Probe, Checked)."""
    spec = resolve_spec(recipe, {"train.epochs": 3, **overrides})
    checked = check(spec)
    probe = Probe()
    from dltoolkit.data import make_augment

    augment = make_augment(spec.preprocess.augment, checked.data.input_shape)
    result = fit(
        spec, checked.graph, checked.data, tmp_path / "work", augment=augment, extra_callbacks=[probe]
    )
    return result, probe, checked


SGD = {"train.optimizer.name": "sgd", "train.optimizer.momentum": 0.0, "train.optimizer.lr": 0.05}


def test_weight_decay_shrinks_the_weights(tmp_path):
    _, plain, _ = train("wine", tmp_path / "a", **SGD)
    _, decayed, _ = train("wine", tmp_path / "b", **SGD, **{"train.optimizer.weight_decay": 0.5})
    assert torch.equal(plain.start, decayed.start)  # same seed, same initial weights
    assert decayed.end.norm() < 0.9 * plain.end.norm()


def test_dropout_changes_the_training_loss(tmp_path):
    nodes = [
        {"name": "hidden", "op": "linear", "units": 32},
        {"name": "act", "op": "relu"},
        {"name": "drop", "op": "dropout", "p": 0.0},
    ]
    none, _, _ = train("wine", tmp_path / "a", **{"graph.nodes": nodes})
    half, _, _ = train("wine", tmp_path / "b", **{"graph.nodes": nodes, "graph.nodes.drop.p": 0.5})
    assert half.history["train_loss"].iloc[-1] > none.history["train_loss"].iloc[-1]
    assert not half.history["train_loss"].equals(none.history["train_loss"])


def _smoothed_entropy(eps: float, classes: int) -> float:
    """The smallest cross-entropy reachable against targets smoothed by ``eps``."""
    q_true, q_other = 1 - eps + eps / classes, eps / classes
    return -(q_true * math.log(q_true) + (classes - 1) * q_other * math.log(q_other))


def test_label_smoothing_raises_the_minimum_loss(tmp_path):
    fast = {"train.optimizer.lr": 0.01, "train.epochs": 5}
    sharp, _, _ = train("wine", tmp_path / "a", **fast)
    smooth, _, _ = train("wine", tmp_path / "b", **fast, **{"train.label_smoothing": 0.3})
    floor = _smoothed_entropy(0.3, 3)
    assert smooth.history["train_loss"].min() >= floor - 1e-6  # never below the smoothed minimum
    assert sharp.history["train_loss"].min() < floor  # the unsmoothed model gets below it


def test_early_stopping_stops_before_max_epochs(tmp_path):
    # validation accuracy on 27 rows cannot rise at every one of 15 epochs: patience 1 stops early
    acc = {"train.epochs": 15, "task.monitor": "val_acc"}
    full, _, _ = train("wine", tmp_path / "a", **acc)
    stopped, _, _ = train("wine", tmp_path / "b", **acc, **{"train.early_stopping": 1})
    assert len(full.history) == 15
    assert len(stopped.history) < 15


def test_grad_clip_bounds_the_update_size(tmp_path):
    # plain SGD: each step moves the weights by lr * |clipped gradient| <= lr * clip
    clip, lr = 1e-3, SGD["train.optimizer.lr"]
    _, free, checked = train("wine", tmp_path / "a", **SGD)
    _, clipped, _ = train("wine", tmp_path / "b", **SGD, **{"train.grad_clip": clip})
    steps = 3 * math.ceil(len(checked.data.X_train) / checked.spec.train.batch_size)
    bound = lr * clip * steps
    assert (clipped.end - clipped.start).norm() <= bound * (1 + 1e-4)
    assert (free.end - free.start).norm() > 10 * bound


DIGITS_IMAGES = {
    "preprocess.shape": [1, 8, 8],
    "graph.nodes": [{"name": "flat", "op": "flatten"}, {"name": "hidden", "op": "linear", "units": 16}],
    "train.epochs": 1,
}


@pytest.mark.parametrize(
    "augment", [{"noise": 0.3}, {"flip": True}, {"shift": 1}], ids=["noise", "flip", "shift"]
)
def test_augmentation_changes_the_training_batches_only(tmp_path, augment):
    _, plain, checked = train("digits-mlp", tmp_path / "a", **DIGITS_IMAGES)
    _, aug, _ = train("digits-mlp", tmp_path / "b", **DIGITS_IMAGES, **{"preprocess.augment": augment})
    first, first_aug = plain.train_inputs[0], aug.train_inputs[0]
    assert first.shape == first_aug.shape
    assert not torch.equal(first, first_aug)  # same shuffle, augmented pixels
    assert torch.equal(aug.val_inputs[0], checked.data.X_val)  # validation is never augmented
