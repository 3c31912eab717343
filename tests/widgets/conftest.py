"""Shared fixtures of the panel tests: a fresh spec state per test, one tiny trained run per session."""

from __future__ import annotations

import matplotlib
import pytest

from dltoolkit.recipes import load_recipe
from dltoolkit.widgets import SpecState

matplotlib.use("Agg")


@pytest.fixture
def wine_state() -> SpecState:
    return SpecState(load_recipe("wine").with_values({"train.epochs": 2}))


@pytest.fixture
def digits_state() -> SpecState:
    return SpecState(load_recipe("digits-mlp").with_values({"train.epochs": 2}))


@pytest.fixture(scope="session")
def wine_run(tmp_path_factory):
    """A 2-epoch wine run (its folder has model/, history.csv, metrics.json)."""
    from dltoolkit.api import run

    out = tmp_path_factory.mktemp("runs") / "wine"
    return run("wine", out=out, overrides={"train.epochs": 2}, plots=False)


@pytest.fixture(scope="session")
def regression_run(tmp_path_factory):
    from dltoolkit.api import run

    out = tmp_path_factory.mktemp("runs") / "diabetes"
    return run("diabetes", out=out, overrides={"train.epochs": 2}, plots=False)
