"""Hyperparameter sweeps: ``sweep(spec)`` and ``resume(folder)``, on the local engine (Optuna, trials in
threads of this process) or on Ray Tune; ``search.engine: auto`` picks (see :mod:`dltoolkit.tune.engines`).

Importing this package is light: Optuna, Ray, torch and Lightning are imported when a sweep starts.

Example:
    >>> from dltoolkit.tune import sweep                         # doctest: +SKIP
    >>> s = sweep("digits-mlp", samples=8, scheduler="asha")      # doctest: +SKIP
    >>> s.trials()                                               # doctest: +SKIP
"""

from dltoolkit.tune.launch import resume_sweep as resume
from dltoolkit.tune.launch import sweep
from dltoolkit.tune.sweep import Sweep

__all__ = ["Sweep", "release_workers", "resume", "sweep"]


def release_workers() -> int:
    """End the warm trial workers this Ray session keeps between sweeps (see dltoolkit.tune.workers)."""
    from dltoolkit.tune.workers import release_workers as release

    return release()
