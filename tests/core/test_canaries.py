"""Canaries: the private library internals dltoolkit relies on still exist in the installed versions.

Each test fails loudly, naming the hook, when an upgrade of Ray, Lightning or PyTorch removes or
renames one (see ``dltoolkit/_hooks.py`` and ``dltoolkit/tune/_ray.py``); the fallbacks that would run
instead log a warning, which the last tests check.
"""

from __future__ import annotations

import inspect
import logging
import types

import pytorch_lightning as pl

from dltoolkit import _hooks


def test_ray_tune_run_still_makes_its_stop_event_with_setup_signal_catching():
    import ray.tune.tune as tune_module  # the test extra installs Ray: a missing Ray fails here

    make = getattr(tune_module, "_setup_signal_catching", None)
    assert callable(make), "ray.tune.tune._setup_signal_catching is gone: Sweep.stop() falls back to stop_all"
    assert not inspect.signature(make).parameters
    # tune.run looks the maker up by name at call time, which is what lets dltoolkit wrap it
    assert "_setup_signal_catching()" in inspect.getsource(tune_module.run)


def test_tune_still_writes_its_experiment_state_in_save_to_dir_under_the_driver_staging_path():
    from ray.tune.execution.tune_controller import TuneController

    assert callable(getattr(TuneController, "save_to_dir", None)), "TuneController.save_to_dir is gone"
    assert isinstance(TuneController.experiment_state_file_name, property)
    source = inspect.getsource(TuneController.save_to_dir)
    # the file dltoolkit moves aside before each write (see dltoolkit.tune._ray.keep_previous_state)
    assert "experiment_driver_staging_path" in source and "self.experiment_state_file_name" in source
    assert TuneController.CKPT_FILE_TMPL == "experiment_state-{}.json"


def _trainer(**kwargs) -> pl.Trainer:
    return pl.Trainer(
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        **kwargs,
    )


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


def test_a_missing_hook_logs_a_warning_once_and_falls_back(caplog, monkeypatch):
    monkeypatch.setattr(_hooks, "_warned", set())
    bare = types.SimpleNamespace(fit_loop=types.SimpleNamespace())  # a Lightning without the counters
    with caplog.at_level(logging.WARNING, logger="dltoolkit.hooks"):
        assert _hooks.set_epoch(bare, 2) is False
        assert _hooks.set_epoch(bare, 3) is False
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 1
    assert "epoch_progress" in messages[0] and "from 0" in messages[0]


def test_lightning_optimizer_still_counts_a_step_through_its_before_and_after_callables():
    # dltoolkit._hooks.lean_step: TaskModule's 32-bit single-device steps rely on it for global_step
    import torch
    from pytorch_lightning import LightningModule

    counted: list[int] = []

    class Manual(LightningModule):
        def __init__(self):
            super().__init__()
            self.automatic_optimization = False
            self.layer = torch.nn.Linear(2, 1)

        def on_train_start(self):
            self.step = _hooks.lean_step(self.optimizers())

        def training_step(self, batch, batch_idx):
            assert self.step is not None, (
                "LightningOptimizer._on_before_step/_on_after_step/_optimizer are gone"
            )
            before = self.layer.weight.detach().clone()
            self.layer(batch[0]).sum().backward()
            self.step()
            assert not torch.equal(before, self.layer.weight), "the lean step did not step the optimizer"
            counted.append(self.trainer.global_step)

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.ones(3, 2)), batch_size=1)
    _trainer(max_epochs=1).fit(Manual(), data)
    assert counted == [1, 2, 3], (
        "LightningOptimizer's _on_before_step/_on_after_step no longer count global_step"
    )
