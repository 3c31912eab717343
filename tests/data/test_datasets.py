"""The bundled datasets load offline with the documented shapes."""

from __future__ import annotations

import numpy as np
import pytest

from dltoolkit.data import DATASETS
from dltoolkit.errors import DataError, UnknownNameError

SHAPES = {
    "digits": ((1797, 65), 10),
    "breast_cancer": ((569, 31), 2),
    "wine": ((178, 14), 3),
    "diabetes": ((442, 11), None),
    "iris": ((150, 5), 3),
    "seed_linear": ((4, 2), None),
    "waves": ((1500, 33), 3),
    "sentences": ((2000, 2), 2),
}


def test_registry_lists_every_dataset():
    assert DATASETS.names() == sorted(SHAPES)


@pytest.mark.parametrize("name", sorted(SHAPES), ids=str)
def test_dataset_shape(name):
    frame = DATASETS.get(name)({})
    shape, n_classes = SHAPES[name]
    assert frame.shape == shape
    assert "target" in frame.columns
    assert not frame.isna().any().any()
    if n_classes is not None:
        assert frame["target"].nunique() == n_classes


def test_digits_columns_and_seed_linear_values():
    assert list(DATASETS.get("digits")({}).columns[:2]) == ["px0", "px1"]
    frame = DATASETS.get("seed_linear")({})
    np.testing.assert_allclose(frame["target"], frame["x"] + 1)
    assert frame["x"].tolist() == [1, 2, 3, 4]


def test_generated_datasets_take_options_and_are_deterministic():
    waves = DATASETS.get("waves")({"n": 30, "length": 16, "seed": 3})
    assert waves.shape == (30, 17) and sorted(waves["target"].unique()) == [0, 1, 2]
    assert waves.equals(DATASETS.get("waves")({"n": 30, "length": 16, "seed": 3}))
    sentences = DATASETS.get("sentences")({"n": 50})
    assert set(sentences["target"]) == {"positive", "negative"}
    assert sentences.equals(DATASETS.get("sentences")({"n": 50}))


def test_sentences_negation_flips_the_label():
    frame = DATASETS.get("sentences")({"n": 400})
    negated = frame["text"].str.contains(r"\b(?:not|never|hardly)\b")
    good = frame["text"].str.contains(r"\bgood\b")
    assert (frame.loc[negated & good, "target"] == "negative").all()
    assert (frame.loc[~negated & good, "target"] == "positive").all()


def test_unknown_option_is_an_error():
    with pytest.raises(DataError, match=r"Unknown option for dataset 'waves'.*'nosie'.*Did you mean 'noise'"):
        DATASETS.get("waves")({"nosie": 0.1})


def test_unknown_dataset_suggests_the_closest():
    with pytest.raises(UnknownNameError, match=r"Unknown dataset.*'irsi'.*Did you mean 'iris'"):
        DATASETS.get("irsi")
