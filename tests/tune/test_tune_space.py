"""Search-space parsing, path addressing and the pre-flight check (no Ray)."""

from __future__ import annotations

import random

import pytest

from dltoolkit.data import prepare
from dltoolkit.errors import SpecError, UnknownNameError
from dltoolkit.tune.engines import SCHEDULERS
from dltoolkit.tune.preflight import build_trial, preflight
from dltoolkit.tune.space import parse_space
from dltoolkit.tune.sweep import plan_for


@pytest.mark.parametrize(
    "entry, check",
    [
        ({"loguniform": [1e-4, 1e-1]}, lambda v: 1e-4 <= v <= 1e-1),
        ({"uniform": [0.0, 0.5]}, lambda v: 0.0 <= v <= 0.5),
        ({"randint": [1, 4]}, lambda v: v in (1, 2, 3)),
        ({"choice": ["relu", "gelu"]}, lambda v: v in ("relu", "gelu")),
        ({"grid": [16, 32]}, lambda v: v in (16, 32)),
    ],
    ids=["loguniform", "uniform", "randint", "choice", "grid"],
)
def test_domains_sample_in_range(entry, check):
    domain = parse_space({"train.optimizer.lr": entry})["train.optimizer.lr"]
    rng = random.Random(0)
    assert all(check(domain.sample(rng)) for _ in range(50))
    assert domain.to_ray() is not None


@pytest.mark.parametrize(
    "path, value, read",
    [
        ("train.optimizer.lr", 0.05, lambda s: s.train.optimizer.lr),
        ("train.batch_size", 64, lambda s: s.train.batch_size),
        ("train.schedule.name", "step", lambda s: s.train.schedule.name),
        ("graph.nodes.hidden.units", 32, lambda s: s.graph.nodes[0].attrs["units"]),
        ("graph.nodes.hidden.repeat", 3, lambda s: s.graph.nodes[0].repeat),
        ("graph.nodes.act.op", "gelu", lambda s: s.graph.nodes[1].op),
    ],
    ids=["lr", "batch", "schedule", "units", "repeat", "activation"],
)
def test_paths_address_training_and_graph_fields(make_spec, path, value, read):
    spec = make_spec()
    trial, graph = build_trial(spec, {path: value}, prepare(spec))
    assert read(trial) == value
    assert graph.total_params > 0


def test_repeat_count_changes_the_graph(make_spec):
    spec = make_spec({"graph.nodes.hidden.repeat": {"choice": [1, 3]}})
    data = prepare(spec)
    one = build_trial(spec, {"graph.nodes.hidden.repeat": 1}, data)[1]
    three = build_trial(spec, {"graph.nodes.hidden.repeat": 3}, data)[1]
    assert three.total_params == one.total_params + 2 * (8 * 8 + 8)


def test_preflight_reports_parameter_and_flop_ranges(make_spec):
    spec = make_spec(
        {"graph.nodes.hidden.units": {"choice": [4, 64]}, "train.optimizer.lr": {"loguniform": [1e-3, 1e-1]}}
    )
    report = preflight(spec, prepare(spec), parse_space(spec.search.space))
    # iris: 4 inputs, 3 classes -> 4*u+u + u*3+3 parameters
    assert report.params == (4 * 4 + 4 + 4 * 3 + 3, 4 * 64 + 64 + 64 * 3 + 3)
    assert report.flops[0] < report.flops[1]
    assert "parameters 35-515" in str(report)


@pytest.mark.parametrize(
    "space, match",
    [
        (
            {"graph.nodes.act.op": {"choice": ["relu", "relux"]}},
            r"graph.nodes.act.op='relux'.*Did you mean 'relu'",
        ),
        ({"graph.nodes.hiden.units": {"choice": [4]}}, r"No node named 'hiden'.*Did you mean 'hidden'"),
        ({"train.batch_size": {"choice": [16, 0]}}, r"train.batch_size=0"),
        ({"preprocess.augment.shift": {"choice": [0, 2]}}, r"preprocess.augment.shift=2"),
    ],
    ids=["unknown-op", "unknown-node", "invalid-value", "augment-on-flat-data"],
)
def test_preflight_names_the_configuration_that_cannot_be_built(make_spec, space, match):
    spec = make_spec(space)
    with pytest.raises(SpecError, match=match):
        preflight(spec, prepare(spec), parse_space(spec.search.space))


@pytest.mark.parametrize(
    "space, match",
    [
        (
            {"train.optimizer.lr": {"logunifrom": [1e-3, 1e-1]}},
            r"Unknown search domain.*Did you mean 'loguniform'",
        ),
        ({"train.optimizer.lr": {"loguniform": [0.0, 1e-1]}}, r"positive low end"),
        ({"train.optimizer.lr": {"uniform": [0.5, 0.1]}}, r"low < high"),
        ({"train.optimizer.lr": 0.1}, r"one domain with its arguments"),
        ({"data.split.seed": {"choice": [0, 1]}}, r"Cannot tune 'data.split.seed'"),
    ],
    ids=["unknown-domain", "log-of-zero", "reversed", "not-a-domain", "data-path"],
)
def test_bad_space_entries_are_rejected(space, match):
    with pytest.raises((SpecError, UnknownNameError), match=match):
        parse_space(space)


@pytest.mark.parametrize(
    "search, match",
    [
        ({"scheduler": "ashaa"}, r"Unknown scheduler.*Did you mean 'asha'"),
        ({"search": "optuan"}, r"Unknown searcher.*Did you mean 'optuna'"),
        ({"search": "optuna", "scheduler": "pbt"}, r"Population Based Training"),
        ({"metric": "val_accuracy"}, r"Unknown metric.*Did you mean 'val_acc'"),
        ({"grace_period": 5}, r"grace_period exceeds"),
    ],
    ids=["scheduler", "searcher", "pbt-optuna", "metric", "grace"],
)
def test_plan_rejects_bad_settings(make_spec, search, match):
    with pytest.raises((SpecError, UnknownNameError), match=match):
        plan_for(make_spec(**search))


def test_grid_domains_need_a_grid_capable_searcher(make_spec):
    spec = make_spec({"graph.nodes.hidden.units": {"grid": [4, 8]}}, search="optuna")
    with pytest.raises(SpecError, match="Grid domains cannot be used with the 'optuna' searcher"):
        plan_for(spec)


def test_grid_search_turns_choices_into_grids(make_spec):
    plan = plan_for(make_spec(search="grid"))
    assert plan.param_space()["graph.nodes.hidden.units"] == {"grid_search": [4, 8]}
    assert set(SCHEDULERS.names()) == {"fifo", "asha", "hyperband", "median", "pbt"}


def test_importing_the_package_does_not_import_ray():
    import subprocess
    import sys

    code = "import sys, dltoolkit, dltoolkit.tune, dltoolkit.tune.cli; print('ray' in sys.modules, 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
