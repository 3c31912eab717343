"""Deploy a trained model: ensembles, export with the preprocessing folded in, and an HTTP server.

The names below load lazily (as in ``dltoolkit/__init__.py``), so that the command line's
``--help`` and ``import dltoolkit.deploy.cli`` import neither torch nor FastAPI.

Example:
    >>> from dltoolkit.deploy import export
    >>> export("runs/wine/model", "onnx", out="wine.onnx")   # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import Any

# eager (and light): the function ``export`` must win over the submodule of the same name
from dltoolkit.deploy.export import ExportError, export

__all__ = [
    "Ensemble",
    "ExportError",
    "create_app",
    "evaluate_ensemble",
    "export",
    "greedy_selection",
    "load_ensemble",
    "raw_split",
    "save_ensemble",
]

_HOME = {"create_app": "serve"}


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module 'dltoolkit.deploy' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"dltoolkit.deploy.{_HOME.get(name, 'ensemble')}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
