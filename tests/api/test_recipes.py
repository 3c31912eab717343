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
}


# The image recipes train on image sets the package writes; at full size (a resnet18 pretrained on shapes, then
# fine-tuned on digits) they take 10+ minutes on 2 CPU cores, so their accuracy is measured by
# benchmarks/image_accuracy.py (against a plain torchvision loop on the same split) and CI runs them end to end
# in smoke mode (30 images a class, 2 epochs; the pretraining too).
IMAGE_RECIPES = {"digits-folder", "shapes-resnet18", "digits-resnet18"}


@pytest.fixture(scope="module", autouse=True)
def cache(tmp_path_factory):
    """Image sets, sample tables and recipe-made weights go to a folder of the test session, not ~/.cache."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(CACHE_ENV, str(tmp_path_factory.mktemp("cache")))
        yield


def test_every_recipe_is_valid_and_has_a_target():
    assert set(recipe_names()) == set(TARGETS) | IMAGE_RECIPES | {"seed-linear"}


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


def test_image_recipes_run_end_to_end_in_smoke_mode(tmp_path, monkeypatch):
    from dltoolkit.api import SMOKE_ENV
    from dltoolkit.datasets import cache_dir

    monkeypatch.setenv(SMOKE_ENV, "1")
    for name in ("digits-folder", "digits-resnet18"):  # digits-resnet18 pretrains shapes-resnet18 first
        result = run(name, out=tmp_path / name, plots=False)
        assert 0.0 <= result.metrics["accuracy"] <= 1.0
        assert result.predictor.spec.data.source == "digits_folder"
    assert (cache_dir() / "weights" / "shapes-resnet18-smoke.pt").is_file()  # made once, by the first use
