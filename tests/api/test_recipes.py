"""Every bundled recipe trains to its target on its default split (figures in the issue)."""

import pytest

from dltoolkit.api import run
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


@pytest.fixture(autouse=True)
def sample_files_in_a_temporary_folder(tmp_path_factory, monkeypatch):
    """Sample table files (credit-parquet's shards) are written there, not under ~/.cache."""
    monkeypatch.setenv("DLTOOLKIT_DATA", str(tmp_path_factory.getbasetemp() / "dltoolkit-data"))


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
