"""Every bundled recipe trains to its target on its default split (figures in the issue)."""

import pytest

from dltoolkit.api import run
from dltoolkit.datasets import CACHE_ENV
from dltoolkit.recipes import load_recipe, recipe_names

TARGETS = {
    "digits-cnn": ("accuracy", 0.98),
    "digits-mlp": ("accuracy", 0.97),
    "breast-cancer": ("accuracy", 0.96),
    "wine": ("accuracy", 0.95),
    "diabetes": ("r2", 0.40),
    "waves-gru": ("accuracy", 0.95),
    "sentences-transformer": ("accuracy", 0.95),
    "credit-parquet": ("accuracy", 0.65),  # streamed Parquet shards; gradient boosting in memory: 0.68
    "digits-folder": ("accuracy", 0.95),  # measured 0.977 (full recipe, default split)
    # floors from benchmarks/image_accuracy.py at a reduced size (50 digits, 100 shapes a class, 6 and
    # 4 epochs: 0.73 and 0.54); the full recipes train on 3x the images for 2x the epochs
    "digits-resnet18": ("accuracy", 0.70),
    "shapes-resnet18": ("accuracy", 0.50),
}


@pytest.fixture(scope="module", autouse=True)
def cache(tmp_path_factory):
    """Image sets, sample tables and recipe-made weights go to a folder of the test session, not ~/.cache."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(CACHE_ENV, str(tmp_path_factory.mktemp("cache")))
        yield


def test_every_recipe_is_valid_and_has_a_target():
    assert set(recipe_names()) == set(TARGETS) | {"seed-linear"}


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_recipe_reaches_its_target(name, tmp_path):
    metric, floor = TARGETS[name]
    result = run(name, out=tmp_path, plots=False)
    assert result.metrics[metric] >= floor, f"{name}: {metric} {result.metrics[metric]:.4f} < {floor}"


def test_seed_linear_recovers_the_line(tmp_path):
    spec = load_recipe("seed-linear")
    model = run(spec, out=tmp_path, plots=False).predictor.model
    line = model.layers["line"]
    assert line.weight.item() == pytest.approx(1.0, abs=0.02)
    assert line.bias.item() == pytest.approx(1.0, abs=0.05)
