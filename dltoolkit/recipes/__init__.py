"""Bundled recipes: ready-made experiment specs shipped as YAML files in this folder.

Example:
    >>> "digits-mlp" in recipe_names()
    True
"""

from __future__ import annotations

from pathlib import Path

from dltoolkit.errors import unknown
from dltoolkit.spec import Spec

_HERE = Path(__file__).parent


def recipe_names() -> list[str]:
    """Names of the bundled recipes."""
    return sorted(p.stem for p in _HERE.glob("*.yaml"))


def recipe_path(name: str) -> Path:
    path = _HERE / f"{name}.yaml"
    if not path.is_file():
        raise unknown("recipe", name, recipe_names())
    return path


def load_recipe(name: str) -> Spec:
    """The spec of a bundled recipe; an unknown name lists the recipes and the closest one."""
    return Spec.load(recipe_path(name))


def describe() -> list[tuple[str, str]]:
    """(name, first sentence of the description) for every recipe."""
    out = []
    for name in recipe_names():
        text = " ".join(load_recipe(name).description.split())
        out.append((name, text.split(". ")[0].rstrip(".") + "."))
    return out
