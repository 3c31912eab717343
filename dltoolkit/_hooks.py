"""The private library internals dltoolkit relies on, in one place, each with a fallback that warns.

Lightning offers no public API for three things dltoolkit needs:

- ``set_epoch(trainer, epoch)``: the epoch counters of ``fit_loop.epoch_progress``, so that a resumed
  or PBT-exploited trial continues its epoch count instead of starting again at 0.
- ``cache_entry_points()``: every ``pl.Trainer(...)`` asks ``importlib.metadata.entry_points`` (through
  ``lightning_fabric.utilities.registry``) for callback factories, which reads the metadata of every
  installed distribution again: about 50 ms per Trainer here, paid by each trial of a sweep. The
  scan is made once per entry-point group and process instead (the factories are still called for
  every Trainer); a package installed while the process runs is seen after a restart.

- ``lean_step(optimizer)``: an optimizer step that Lightning counts in ``trainer.global_step`` (which
  checkpointing and early stopping read) without ``LightningOptimizer.step()``'s dispatch through the
  strategy, the precision plugin and the hooks. The training loop takes it only where that dispatch does
  nothing (32-bit precision on one device, no callback hooking the backward pass or the optimizer step;
  see ``TaskModule._lean_step``): for a small model it is about a tenth of each step. Everywhere else
  the loop uses Lightning's public manual-optimisation API (``manual_backward``,
  ``LightningOptimizer.step()``), which runs mixed precision's scaling, the hooks and DDP's reducer.

Each is guarded by a canary test (``tests/core/test_canaries.py``) that fails when the installed
version lacks it; at run time a missing hook logs a warning (logger ``dltoolkit.hooks``) once and the
fallback below runs. (Ray's ``ray.tune.tune._setup_signal_catching`` is owned by
:mod:`dltoolkit.tune._ray`, with its own canary.)
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger("dltoolkit.hooks")
_warned: set[str] = set()


def _fallback(hook: str, consequence: str) -> None:
    if hook not in _warned:
        _warned.add(hook)
        log.warning(
            "The installed version lacks %s, which dltoolkit uses; %s Install a version in the range "
            "pyproject.toml declares, or report this.",
            hook,
            consequence,
        )


def set_epoch(trainer: Any, epoch: int) -> bool:
    """Make Lightning count ``epoch`` finished epochs (False: could not; training restarts at 0)."""
    try:
        progress = trainer.fit_loop.epoch_progress
        trackers = (progress.current, progress.total)
        for tracker in trackers:
            tracker.ready = tracker.started = tracker.processed = tracker.completed = epoch
        return True
    except AttributeError:
        _fallback(
            "pytorch_lightning's fit_loop.epoch_progress counters",
            f"a resumed trial trains its epochs again from 0 instead of continuing after epoch {epoch}.",
        )
        return False


def cache_entry_points() -> bool:
    """Make Lightning's per-Trainer entry-point scan once per group and process (False: could not)."""
    try:
        from lightning_fabric.utilities import registry

        scan = registry.entry_points
    except (ImportError, AttributeError):
        _fallback(
            "lightning_fabric.utilities.registry.entry_points",
            "each Trainer scans the installed packages again (slower trial starts, same training).",
        )
        return False
    if getattr(scan, "dltoolkit_cached", False):
        return True
    once = functools.lru_cache(maxsize=None)(lambda group: scan(group=group))

    def entry_points(**kwargs: Any) -> Any:
        return once(kwargs["group"]) if set(kwargs) == {"group"} else scan(**kwargs)

    entry_points.dltoolkit_cached = True  # type: ignore[attr-defined]
    registry.entry_points = entry_points
    return True


def lean_step(optimizer: Any) -> Callable[[], None] | None:
    """``optimizer.step()`` of a LightningOptimizer under manual optimisation, counted as Lightning
    counts it (its ``_on_before_step`` / ``_on_after_step``, which the manual loop sets for each batch,
    advance ``trainer.global_step``) but without the dispatch through the strategy and precision plugin.
    None (with a warning once): the installed Lightning lacks them; call ``optimizer.step()``."""
    if not all(hasattr(optimizer, name) for name in ("_on_before_step", "_on_after_step", "_optimizer")):
        _fallback(
            "pytorch_lightning's LightningOptimizer._on_before_step/_on_after_step",
            "every optimizer step goes through LightningOptimizer.step() (the same training, slower for small models).",
        )
        return None
    raw = optimizer._optimizer

    def step() -> None:
        optimizer._on_before_step()  # read per call: the manual loop sets them for each batch
        raw.step()
        optimizer._on_after_step()

    return step
