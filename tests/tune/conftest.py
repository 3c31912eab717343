"""Shared fixtures of the tune tests: a tiny sweep spec (on Ray unless told) and one local Ray per session.

Starting Ray costs seconds here, so every in-process sweep shares one Ray started by the
``ray_session`` fixture. Its workers write the per-epoch trace (``DLTOOLKIT_TUNE_TRACE``) into a
session folder, which the resume test reads.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402

from dltoolkit.spec import Spec  # noqa: E402
from dltoolkit.tune.trainable import TRACE_ENV  # noqa: E402


def tiny_spec(
    space: dict[str, Any] | None = None, train: dict[str, Any] | None = None, **search: Any
) -> Spec:
    """Iris, a one-hidden-layer MLP, 2 epochs per trial, a 2-value width choice by default.

    The sweep runs on Ray (``search.engine: ray``) unless ``engine`` says otherwise: the tests
    written for Ray keep testing Ray, not what ``auto`` would pick here.
    """
    return Spec.from_dict(
        {
            "name": "tiny",
            "task": {"kind": "multiclass"},
            "data": {"source": "iris"},
            "graph": {
                "nodes": [
                    {"name": "hidden", "op": "linear", "units": 8},
                    {"name": "act", "op": "relu"},
                ]
            },
            # no early stopping: a sweep test trains exactly the epochs it asks for
            "train": {"epochs": 2, "batch_size": 16, "optimizer": {"lr": 0.01}, "early_stopping": None}
            | (train or {}),
            "search": {
                "space": space or {"graph.nodes.hidden.units": {"choice": [4, 8]}},
                "samples": 2,
                "metric": "val_acc",
                "engine": "ray",
            }
            | search,
        }
    )


@pytest.fixture
def make_spec():
    return tiny_spec


@pytest.fixture(scope="session")
def trace_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("trace")


@pytest.fixture(scope="session")
def ray_session(trace_dir):
    """One local Ray for the whole session (2 CPUs, no dashboard), its workers tracing epochs."""
    import ray

    os.environ[TRACE_ENV] = str(trace_dir)
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    if started:
        ray.shutdown()
