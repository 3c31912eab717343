"""The private library internals dltoolkit relies on, in one place, each with a fallback that warns.

Lightning offers no public API for one thing dltoolkit needs:

- ``set_epoch(trainer, epoch)``: the epoch counters of ``fit_loop.epoch_progress``, so that a resumed
  or PBT-exploited trial continues its epoch count instead of starting again at 0.

(The training loop itself uses Lightning's public manual-optimisation API: ``manual_backward``,
``LightningOptimizer.step()``, which count ``trainer.global_step`` and arm DDP's reducer.)

It is guarded by a canary test (``tests/core/test_canaries.py``) that fails when the installed
version lacks it; at run time a missing hook logs a warning (logger ``dltoolkit.hooks``) once and the
fallback below runs. (Ray's ``ray.tune.tune._setup_signal_catching`` is owned by
:mod:`dltoolkit.tune._ray`, with its own canary.)
"""

from __future__ import annotations

import logging
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
