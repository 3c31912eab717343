"""Canaries: the private library internals dltoolkit relies on still exist in the installed versions.

Each test fails loudly, naming the hook, when an upgrade of Ray, Lightning or PyTorch removes or
renames one (see ``dltoolkit/_hooks.py`` and ``dltoolkit/tune/_ray.py``); the fallbacks that would run
instead log a warning, which the last tests check.
"""

from __future__ import annotations

import inspect
import logging
import socket
import types

import pytest
import pytorch_lightning as pl
import torch

from dltoolkit import _hooks


def test_ray_tune_run_still_makes_its_stop_event_with_setup_signal_catching():
    import ray.tune.tune as tune_module  # the test extra installs Ray: a missing Ray fails here

    make = getattr(tune_module, "_setup_signal_catching", None)
    assert callable(make), "ray.tune.tune._setup_signal_catching is gone: Sweep.stop() falls back to stop_all"
    assert not inspect.signature(make).parameters
    # tune.run looks the maker up by name at call time, which is what lets dltoolkit wrap it
    assert "_setup_signal_catching()" in inspect.getsource(tune_module.run)


class _RawSteps(pl.LightningModule):
    """Manual optimisation stepping the raw optimizer, as TaskModule does."""

    def __init__(self) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.layer = torch.nn.Linear(2, 1)

    def on_train_start(self) -> None:
        self.counter = _hooks.step_progress(self.trainer)
        self.raw = self.optimizers(use_pl_optimizer=False)

    def training_step(self, batch, batch_idx):
        (x,) = batch
        self.raw.zero_grad()
        self.layer(x).pow(2).mean().backward()
        self.counter.increment_ready()
        self.raw.step()
        self.counter.increment_completed()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _trainer(**kwargs) -> pl.Trainer:
    return pl.Trainer(
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        **kwargs,
    )


def test_lightning_manual_step_progress_still_drives_global_step(caplog):
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(12, 2)), batch_size=4)
    trainer = _trainer(max_epochs=2)
    with caplog.at_level(logging.WARNING, logger="dltoolkit.hooks"):
        trainer.fit(_RawSteps(), data)
    assert not [r for r in caplog.records if r.name == "dltoolkit.hooks"], (
        "fit_loop.epoch_loop.manual_optimization.optim_step_progress is gone"
    )
    assert trainer.global_step == 6  # 3 batches x 2 epochs, counted through the private counter


def test_lightning_epoch_progress_counters_still_set_the_epoch():
    trainer = _trainer(max_epochs=5)
    assert _hooks.set_epoch(trainer, 3), "fit_loop.epoch_progress (current/total trackers) is gone"
    assert trainer.current_epoch == 3


def test_lightning_still_scans_callback_entry_points_through_its_registry(monkeypatch):
    from lightning_fabric.utilities import registry

    assert _hooks.cache_entry_points(), "lightning_fabric.utilities.registry.entry_points is gone"
    assert getattr(registry.entry_points, "dltoolkit_cached", False)
    groups = []
    cached = registry.entry_points

    def seen(**kwargs):
        groups.append(kwargs.get("group"))
        return cached(**kwargs)

    monkeypatch.setattr(registry, "entry_points", seen)
    _trainer(max_epochs=1)
    _trainer(max_epochs=1)
    assert groups == ["pytorch_lightning.callbacks_factory"] * 2, "a Trainer no longer asks the registry"
    assert cached(group="pytorch_lightning.callbacks_factory") is cached(
        group="pytorch_lightning.callbacks_factory"
    )  # scanned once


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def one_process_group():
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{_free_port()}", rank=0, world_size=1)
    yield
    dist.destroy_process_group()


@pytest.mark.parametrize("path", ["lightning", "fallback"])
def test_prepare_for_backward_arms_ddp_for_a_raw_backward(path, one_process_group):
    from torch.nn.parallel import DistributedDataParallel

    if path == "lightning":
        from pytorch_lightning.overrides.distributed import prepare_for_backward  # the canary proper

        assert list(inspect.signature(prepare_for_backward).parameters) == ["model", "output"]
    torch.manual_seed(0)
    model = DistributedDataParallel(torch.nn.Linear(3, 1))
    x = torch.randn(4, 3)
    for _ in range(2):  # the second step needs the reducer re-armed
        model.zero_grad()
        _hooks.prepare_for_backward(model) if path == "lightning" else _hooks._prepare(model)
        model.module(x).sum().backward()  # the raw module, as TaskModule's forward does
    assert torch.allclose(model.module.weight.grad, x.sum(0, keepdim=True))


def test_a_missing_hook_logs_a_warning_once_and_falls_back(caplog, monkeypatch):
    monkeypatch.setattr(_hooks, "_warned", set())
    bare = types.SimpleNamespace(fit_loop=types.SimpleNamespace())  # a Lightning without the counters
    with caplog.at_level(logging.WARNING, logger="dltoolkit.hooks"):
        counter = _hooks.step_progress(bare)
        counter.increment_ready()
        _hooks.step_progress(bare)
        assert _hooks.set_epoch(bare, 2) is False
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2
    assert "optim_step_progress" in messages[0] and "global_step stays 0" in messages[0]
    assert "epoch_progress" in messages[1] and "from 0" in messages[1]


def test_the_ray_stop_fallback_warns_once(monkeypatch, caplog):
    import ray.tune.tune as tune_module

    from dltoolkit.tune import _ray

    monkeypatch.delattr(tune_module, "_setup_signal_catching")
    monkeypatch.setattr(_ray, "_WARNED", set())
    with caplog.at_level("WARNING", logger="dltoolkit.hooks"):
        _ray.catch_interrupts()
        _ray.catch_interrupts()
    warned = [r for r in caplog.records if "_setup_signal_catching" in r.getMessage()]
    assert len(warned) == 1 and "stop_all" in warned[0].getMessage()
