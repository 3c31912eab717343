"""Bundled datasets: small, offline, deterministic; each a function ``options -> DataFrame``.

Every dataset returns one frame whose target column is named ``"target"``. Options come from
``spec.data.options``; an unknown option is an error, never ignored.

Example:
    >>> frame = DATASETS.get("seed_linear")({})
    >>> list(frame.columns)
    ['x', 'target']
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from dltoolkit.errors import DataError, closest, message
from dltoolkit.registry import Registry

Loader = Callable[[dict[str, Any]], pd.DataFrame]

DATASETS: Registry[Loader] = Registry("dataset")


def _options(name: str, options: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """Merge ``options`` over ``defaults``; an unknown option raises DataError with a hint."""
    for key in options:
        if key not in defaults:
            hint = closest(key, defaults)
            fix = f"Did you mean {hint!r}?" if hint else "Remove it from data.options."
            expected = f"one of {sorted(defaults)}" if defaults else "no options"
            raise DataError(message(f"Unknown option for dataset {name!r}", key, expected, fix))
    return {**defaults, **options}


def _sklearn(name: str, loader: Callable[..., Any], options: dict[str, Any]) -> pd.DataFrame:
    _options(name, options, {})
    frame = loader(as_frame=True).frame
    return frame.reset_index(drop=True)


@DATASETS.register("digits")
def digits(options: dict[str, Any]) -> pd.DataFrame:
    """8x8 images of handwritten digits: 1797 rows, columns px0..px63 (0-16), target 0-9."""
    from sklearn.datasets import load_digits

    _options("digits", options, {})
    bunch = load_digits()
    frame = pd.DataFrame(bunch.data, columns=[f"px{i}" for i in range(64)])
    frame["target"] = bunch.target.astype(np.int64)
    return frame


@DATASETS.register("breast_cancer")
def breast_cancer(options: dict[str, Any]) -> pd.DataFrame:
    """Wisconsin breast cancer: 569 rows, 30 numeric features, binary target (0 malignant)."""
    from sklearn.datasets import load_breast_cancer

    return _sklearn("breast_cancer", load_breast_cancer, options)


@DATASETS.register("wine")
def wine(options: dict[str, Any]) -> pd.DataFrame:
    """Wine recognition: 178 rows, 13 numeric features, 3 classes."""
    from sklearn.datasets import load_wine

    return _sklearn("wine", load_wine, options)


@DATASETS.register("diabetes")
def diabetes(options: dict[str, Any]) -> pd.DataFrame:
    """Diabetes progression: 442 rows, 10 numeric features, a continuous target (regression)."""
    from sklearn.datasets import load_diabetes

    return _sklearn("diabetes", load_diabetes, options)


@DATASETS.register("iris")
def iris(options: dict[str, Any]) -> pd.DataFrame:
    """Iris flowers: 150 rows, 4 numeric features, 3 classes."""
    from sklearn.datasets import load_iris

    return _sklearn("iris", load_iris, options)


@DATASETS.register("seed_linear")
def seed_linear(options: dict[str, Any]) -> pd.DataFrame:
    """Four points on y = x + 1: (1, 2), (2, 3), (3, 4), (4, 5); columns ``x`` and ``target``."""
    _options("seed_linear", options, {})
    x = np.array([1.0, 2.0, 3.0, 4.0])
    return pd.DataFrame({"x": x, "target": x + 1.0})


_WAVE_BANDS = ((1.0, 2.0), (3.0, 4.5), (6.0, 8.0))  # cycles per sequence of each class


@DATASETS.register("waves")
def waves(options: dict[str, Any]) -> pd.DataFrame:
    """Sequence classification: noisy sine waves whose frequency band (3 bands) is the class.

    Options: ``n`` sequences (1500), ``length`` steps (32), ``noise`` std (0.3), ``seed`` (0).
    Columns t0..t{length-1}; target 0 (slow), 1 (medium), 2 (fast), balanced.
    """
    opts = _options("waves", options, {"n": 1500, "length": 32, "noise": 0.3, "seed": 0})
    n, length = int(opts["n"]), int(opts["length"])
    rng = np.random.default_rng(opts["seed"])
    target = np.arange(n) % len(_WAVE_BANDS)
    rng.shuffle(target)
    bands = np.array(_WAVE_BANDS)[target]
    cycles = rng.uniform(bands[:, 0], bands[:, 1])
    phase = rng.uniform(0.0, 2 * np.pi, n)
    amplitude = rng.uniform(0.7, 1.3, n)
    t = np.arange(length) / length
    x = amplitude[:, None] * np.sin(2 * np.pi * cycles[:, None] * t[None, :] + phase[:, None])
    x += rng.normal(0.0, float(opts["noise"]), x.shape)
    frame = pd.DataFrame(x.astype(np.float32), columns=[f"t{i}" for i in range(length)])
    frame["target"] = target.astype(np.int64)
    return frame


_SUBJECTS = ["the movie", "this film", "the food", "our trip", "the service", "the book", "the show",
             "that game", "the hotel", "the concert", "this album", "the meal"]  # fmt: skip
_POSITIVE = ["good", "great", "excellent", "wonderful", "pleasant", "fantastic", "lovely", "superb"]
_NEGATIVE = ["bad", "terrible", "awful", "boring", "poor", "horrible", "dull", "disappointing"]
_INTENSIFIERS = ["", "", "very", "really", "quite", "truly", "so"]
_NEGATIONS = ["not", "never", "hardly"]
_TEMPLATES = [
    "{subject} was {negation} {intensifier} {adjective}",
    "i think {subject} is {negation} {intensifier} {adjective}",
    "honestly {subject} was {negation} {intensifier} {adjective}",
    "{subject} is {negation} {intensifier} {adjective} overall",
    "we found {subject} {negation} {intensifier} {adjective}",
]


@DATASETS.register("sentences")
def sentences(options: dict[str, Any]) -> pd.DataFrame:
    """Text classification: short templated reviews; a negation ("not good") flips the label.

    Options: ``n`` sentences (2000), ``negation`` fraction of negated sentences (0.35), ``seed`` (0).
    Column ``text``; target ``"positive"`` or ``"negative"``.
    """
    opts = _options("sentences", options, {"n": 2000, "negation": 0.35, "seed": 0})
    rng = np.random.default_rng(opts["seed"])
    texts, labels = [], []
    for _ in range(int(opts["n"])):
        positive = bool(rng.random() < 0.5)
        negated = bool(rng.random() < float(opts["negation"]))
        words = _POSITIVE if positive else _NEGATIVE
        text = str(rng.choice(_TEMPLATES)).format(
            subject=rng.choice(_SUBJECTS),
            negation=rng.choice(_NEGATIONS) if negated else "",
            intensifier=rng.choice(_INTENSIFIERS),
            adjective=rng.choice(words),
        )
        texts.append(" ".join(text.split()))
        labels.append("positive" if positive != negated else "negative")
    return pd.DataFrame({"text": texts, "target": labels})
