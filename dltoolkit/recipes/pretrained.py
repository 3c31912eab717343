"""Backbone weights the package makes itself: a recipe trained once, its backbone saved as a file.

No pretrained weights can be downloaded (dltoolkit never downloads). For a real transfer-learning
example, a backbone's ``weights: recipe:<name>`` names a bundled recipe whose graph has a backbone
node: on first use the recipe is run (``dltoolkit.run``) and that node's weights (a torchvision state
dict, classifier removed) are saved into ``cache_dir()/weights/<name>.pt`` (``<name>-smoke.pt`` in
smoke mode, so a smoke run never stands in for a full one). Later uses read the file.

Example:
    >>> weights_file("shapes-resnet18").name   # doctest: +SKIP
    'shapes-resnet18.pt'
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch

PREFIX = "recipe:"  # a backbone's weights value naming a recipe to pretrain with


def weights_file(recipe: str) -> Path:
    """The backbone weights of ``recipe``'s trained model, trained and saved on first use.

    Raises:
        UnknownNameError: no recipe of that name.
        SpecError: the recipe's graph has no backbone node.
    """
    from dltoolkit.api import SMOKE_ENV
    from dltoolkit.data.images.samples import cache_dir
    from dltoolkit.recipes import recipe_path

    recipe_path(recipe)  # an unknown name: the list of recipes and the closest one
    smoke = "-smoke" if os.environ.get(SMOKE_ENV) else ""
    path = cache_dir() / "weights" / f"{recipe}{smoke}.pt"
    if not path.is_file():
        _pretrain(recipe, path)
    return path


def _pretrain(recipe: str, path: Path) -> None:
    from dltoolkit._files import atomic_path
    from dltoolkit.api import run
    from dltoolkit.errors import SpecError, message
    from dltoolkit.graph.backbones import backbones

    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".pretrain-") as out:
        model = run(recipe, out=Path(out) / "run", plots=False).predictor.model
    found = backbones(model)
    if len(found) != 1:
        raise SpecError(
            message(
                "A recipe named in a backbone's weights must train exactly one backbone node",
                f"{recipe}: {len(found)} backbone nodes",
                "a recipe whose graph has one node of op backbone",
                f"Name another recipe in weights: {PREFIX}<recipe>, or a weights file.",
            )
        )
    with atomic_path(path) as tmp:
        torch.save(found[0].body.state_dict(), tmp)
