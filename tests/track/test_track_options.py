"""The ``track`` section and ``--track``: where tracking goes, checked before any work (no MLflow)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dltoolkit.cli import build_parser
from dltoolkit.errors import SpecError
from dltoolkit.recipes import load_recipe
from dltoolkit.track.target import mlflow_uri, tensorboard_dir

OUT = Path("/data/runs/wine-1")


@pytest.mark.parametrize(
    ("value", "uri"),
    [
        (None, None),
        (False, None),
        (True, "sqlite:////data/runs/mlflow.db"),
        ("http://127.0.0.1:5000/", "http://127.0.0.1:5000"),
        ("sqlite:///rel/store.db", "sqlite:///rel/store.db"),
        ("/data/store", "sqlite:////data/store/mlflow.db"),
        ("/data/x.db", "sqlite:////data/x.db"),
        ("databricks", "databricks"),
    ],
    ids=["unset", "false", "true", "server", "sqlite-uri", "folder", "db-file", "databricks"],
)
def test_track_mlflow_values_name_a_store(value, uri):
    assert mlflow_uri(value, OUT) == uri


def test_tensorboard_folders_are_per_run():
    assert tensorboard_dir(True, OUT) == Path("/data/runs/tensorboard/wine-1")
    assert tensorboard_dir("/tb", OUT) == Path("/tb/wine-1")
    assert tensorboard_dir(None, OUT) is None


def test_the_track_section_rejects_unknown_keys_with_a_hint():
    spec = load_recipe("wine")
    assert not spec.track.enabled
    assert spec.with_values({"track.mlflow": "http://h:5000"}).track.enabled
    with pytest.raises(SpecError, match=r"Unknown option 'track.mlfow'.*Did you mean 'mlflow'"):
        type(spec).from_dict(spec.to_dict() | {"track": {"mlfow": True}})


@pytest.mark.parametrize("verb", ["run", "tune"])
def test_track_option_overrides_the_spec(verb):
    from dltoolkit.cli import _track

    args = build_parser().parse_args([verb, "wine", "--track", "http://127.0.0.1:5000"])
    assert _track(args.track) == {"track.mlflow": "http://127.0.0.1:5000"}
    assert _track("true") == {"track.mlflow": True} and _track(None) == {}
