"""dltoolkit: from a dataset to a tuned, evaluated, exported model, in one experiment spec.

The public names load lazily, so ``import dltoolkit`` stays light: it imports neither Ray,
JupyterLab nor matplotlib (nor Lightning) until a name that needs them is used.

Example:
    >>> import dltoolkit
    >>> spec = dltoolkit.recipe("seed-linear")
    >>> spec.train.optimizer.name
    'sgd'
"""

from __future__ import annotations

import importlib
from typing import Any

from dltoolkit import _vision
from dltoolkit.errors import DLToolkitError
from dltoolkit.spec import Spec

_vision.install()  # PyPI's torchvision beside a CPU torch: see dltoolkit._vision

__version__ = "0.1.0"

__all__ = [
    "DLToolkitError",
    "Graph",
    "Spec",
    "check",
    "explain",
    "export",
    "list_recipes",
    "load",
    "load_ipython_extension",
    "lr_find",
    "recipe",
    "run",
    "studio",
    "sweep",
]

_LAZY: dict[str, str | tuple[str, str]] = {
    "Graph": "dltoolkit.graph",
    "check": "dltoolkit.api",
    "run": "dltoolkit.api",
    "load": "dltoolkit.bundle",
    "list_recipes": ("dltoolkit.recipes", "recipe_names"),
    "recipe": ("dltoolkit.recipes", "load_recipe"),
    "sweep": "dltoolkit.tune",
    "export": "dltoolkit.deploy",
    "explain": ("dltoolkit.interpret", "explain"),
    "lr_find": "dltoolkit.train.lr_find",
    "studio": "dltoolkit.widgets",
    "load_ipython_extension": "dltoolkit.extension",
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'dltoolkit' has no attribute {name!r}")
    target = _LAZY[name]
    module, attr = target if isinstance(target, tuple) else (target, name)
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
