import math

import pytest
import torch
from pytorch_lightning.callbacks import Callback

from dltoolkit.api import check
from dltoolkit.errors import TrainingError
from dltoolkit.spec import Spec
from dltoolkit.train.fit import TensorBatches, fit


@pytest.fixture
def checked(tiny_frame, tiny_spec_dict):
    return check(Spec.from_dict(tiny_spec_dict), tiny_frame)


def test_history_has_one_row_per_epoch_with_train_and_val_metrics(checked, tmp_path):
    result = fit(checked.spec, checked.graph, checked.data, tmp_path)
    h = result.history
    assert list(h["epoch"]) == [1, 2, 3]
    assert {"train_loss", "train_acc", "val_loss", "val_acc", "val_f1", "lr"} <= set(h.columns)
    assert h["train_loss"].iloc[-1] < h["train_loss"].iloc[0]
    assert result.checkpoint is not None and result.checkpoint.is_file()
    assert result.monitor == "val_loss"
    assert result.best_score == pytest.approx(h["val_loss"].min())
    assert h.loc[h["epoch"] == result.best_epoch, "val_loss"].item() == pytest.approx(result.best_score)


def test_listeners_get_each_epoch(checked, tmp_path):
    rows = []
    fit(checked.spec, checked.graph, checked.data, tmp_path, listeners=[rows.append])
    assert [r["epoch"] for r in rows] == [1, 2, 3] and "val_loss" in rows[0]


def test_training_is_deterministic(checked, tmp_path):
    a = fit(checked.spec, checked.graph, checked.data, tmp_path / "a").history
    b = fit(checked.spec, checked.graph, checked.data, tmp_path / "b").history
    assert a.equals(b)


def test_matches_a_plain_pytorch_loop(checked, tmp_path):
    """One epoch of dltoolkit training equals the textbook SGD loop on the same batches."""
    spec = checked.spec.with_values(
        {
            "train.optimizer.name": "sgd",
            "train.optimizer.momentum": 0.0,
            "train.epochs": 1,
            "train.steps_per_execution": 3,
        }
    )
    trained = fit(spec, checked.graph, checked.data, tmp_path).model
    torch.manual_seed(spec.train.seed)
    model = checked.graph.compile()
    opt = torch.optim.SGD(model.parameters(), lr=spec.train.optimizer.lr)
    data = checked.data
    for x, y in TensorBatches(
        data.X_train, data.y_train, spec.train.batch_size, shuffle=True, seed=spec.train.seed
    ):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    for name, value in model.state_dict().items():
        torch.testing.assert_close(trained.state_dict()[name], value, msg=name)


class _PoisonAtEpoch(Callback):
    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_train_epoch_start(self, trainer, module):
        if trainer.current_epoch == self.epoch:
            with torch.no_grad():
                next(module.parameters()).fill_(float("nan"))


def test_nan_loss_stops_with_epoch_and_step_and_keeps_best_checkpoint(checked, tmp_path):
    with pytest.raises(
        TrainingError,
        match=r"loss became nan at epoch 2, step 1 .*best checkpoint so far is kept: "
        r".*best\.ckpt",
    ) as e:
        fit(checked.spec, checked.graph, checked.data, tmp_path, extra_callbacks=[_PoisonAtEpoch(1)])
    assert (tmp_path / "checkpoints" / "best.ckpt").is_file()
    assert "lr" in str(e.value)


def test_early_stopping_stops_before_max_epochs(checked, tmp_path):
    spec = checked.spec.with_values(
        {"train.epochs": 40, "train.early_stopping": 1, "train.optimizer.lr": 1e-6, "task.monitor": "val_acc"}
    )
    assert len(fit(spec, checked.graph, checked.data, tmp_path).history) < 40


def test_tensor_batches_cover_every_row_and_reshuffle():
    x, y = torch.arange(10).float().unsqueeze(1), torch.arange(10)
    batches = TensorBatches(x, y, 4, shuffle=True, seed=1)
    first, second = [b[1] for b in batches], [b[1] for b in batches]
    assert len(batches) == 3 and [len(b) for b in first] == [4, 4, 2]
    assert sorted(torch.cat(first).tolist()) == list(range(10))
    assert not torch.equal(torch.cat(first), torch.cat(second))
    assert [b[1].tolist() for b in TensorBatches(x, y, 4)][0] == [0, 1, 2, 3]


class _StepHooks(Callback):
    """Counts Lightning's per-optimizer-step hooks and keeps trainer.global_step at the end."""

    def __init__(self) -> None:
        self.calls = {"on_before_backward": 0, "on_after_backward": 0, "on_before_optimizer_step": 0}
        self.global_step = -1

    def on_before_backward(self, trainer, module, loss):
        self.calls["on_before_backward"] += 1

    def on_after_backward(self, trainer, module):
        self.calls["on_after_backward"] += 1

    def on_before_optimizer_step(self, trainer, module, optimizer):
        self.calls["on_before_optimizer_step"] += 1

    def on_train_end(self, trainer, module):
        self.global_step = trainer.global_step


def test_every_optimizer_step_goes_through_lightnings_public_hooks(checked, tmp_path):
    """manual_backward and LightningOptimizer.step(): the hooks that precision plugins, DDP and
    user callbacks rely on run once per mini-batch, and global_step counts the optimizer steps."""
    spec = checked.spec.with_values({"train.steps_per_execution": 3})
    hooks = _StepHooks()
    fit(spec, checked.graph, checked.data, tmp_path, extra_callbacks=[hooks])
    steps = spec.train.epochs * math.ceil(len(checked.data.X_train) / spec.train.batch_size)
    assert hooks.calls == dict.fromkeys(hooks.calls, steps)
    assert hooks.global_step == steps


class _Weights(Callback):
    def on_train_start(self, trainer, module):
        self.start = torch.cat([p.detach().flatten().clone() for p in module.model.parameters()])

    def on_train_end(self, trainer, module):
        self.end = torch.cat([p.detach().flatten().clone() for p in module.model.parameters()])


def test_grad_clip_bounds_every_step(checked, tmp_path):
    """SGD with lr 1: each step moves the weights by the clipped gradient, of norm <= grad_clip."""
    clip = 1e-3
    spec = checked.spec.with_values(
        {
            "train.optimizer.name": "sgd",
            "train.optimizer.lr": 1.0,
            "train.optimizer.momentum": 0.0,
            "train.grad_clip": clip,
            "train.epochs": 1,
        }
    )
    weights = _Weights()
    fit(spec, checked.graph, checked.data, tmp_path, extra_callbacks=[weights])
    steps = math.ceil(len(checked.data.X_train) / spec.train.batch_size)
    moved = (weights.end - weights.start).norm().item()
    assert 0 < moved <= steps * clip * (1 + 1e-4)
