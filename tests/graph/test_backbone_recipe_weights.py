"""A backbone's ``weights: recipe:<name>``: the recipe is trained once (smoke-sized here), its backbone
saved into the cache, and later graphs load exactly those weights without training again."""

from __future__ import annotations

import pytest
import torch

from dltoolkit.api import SMOKE_ENV, check, resolve_spec
from dltoolkit.datasets import CACHE_ENV
from dltoolkit.errors import SpecError, UnknownNameError
from dltoolkit.graph.backbones import backbones
from dltoolkit.recipes.pretrained import weights_file


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setenv(SMOKE_ENV, "1")  # 30 shapes a class, 2 epochs
    return tmp_path / "cache"


def test_recipe_weights_are_trained_once_and_loaded(cache):
    path = weights_file("shapes-resnet18")
    assert path == cache / "weights" / "shapes-resnet18-smoke.pt"
    stamp = path.stat().st_mtime_ns
    saved = torch.load(path, weights_only=True)
    assert "layer4.1.bn2.running_var" in saved and "fc.weight" not in saved

    spec = resolve_spec("digits-resnet18")
    assert spec.graph.nodes[0].attrs["weights"] == "recipe:shapes-resnet18"
    backbone = backbones(check(spec).graph.compile())[0]
    assert backbone.weights == "recipe:shapes-resnet18"
    got = backbone.body.state_dict()
    assert all(torch.equal(got[k], v) for k, v in saved.items())
    assert not torch.equal(saved["conv1.weight"], torch.zeros_like(saved["conv1.weight"]))
    assert weights_file("shapes-resnet18").stat().st_mtime_ns == stamp, "trained again"


def test_a_recipe_without_a_backbone_is_a_clear_error_and_writes_no_file(cache):
    with pytest.raises(SpecError, match="exactly one backbone node.*seed-linear: 0 backbone nodes"):
        weights_file("seed-linear")
    assert not (cache / "weights" / "seed-linear-smoke.pt").exists()
    with pytest.raises(UnknownNameError, match="shapes-resnet18"):
        weights_file("shapes-resnet81")
