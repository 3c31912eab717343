import json

import pytest

from dltoolkit.errors import SpecError
from dltoolkit.spec import Spec, get_path, parse_value, set_path


def test_yaml_and_json_round_trip(tiny_spec_dict):
    spec = Spec.from_dict(tiny_spec_dict)
    assert Spec.from_yaml(spec.to_yaml()) == spec
    assert Spec.from_dict(json.loads(spec.to_json())) == spec


def test_save_and_load_are_atomic_files(tmp_path, tiny_spec_dict):
    spec = Spec.from_dict(tiny_spec_dict)
    path = spec.save(tmp_path / "spec.yaml")
    assert Spec.load(path) == spec
    assert [p.name for p in tmp_path.iterdir()] == ["spec.yaml"]  # no temp file left behind


def test_sequential_shorthand_names_nodes():
    spec = Spec.from_dict(
        {
            "task": {"kind": "regression"},
            "data": {"source": "diabetes"},
            "graph": {"sequential": [{"op": "linear", "units": 4}, "relu"]},
        }
    )
    assert [n.name for n in spec.graph.nodes] == ["linear_1", "relu_2"]
    assert spec.graph.nodes[0].attrs == {"units": 4}


@pytest.mark.parametrize(
    ("patch", "match"),
    [
        (
            {"task": {"kind": "multiclass", "targt": "y"}},
            r"Unknown option 'task.targt'.*Did you mean 'target'",
        ),
        ({"train": {"optimizer": {"lr": -0.1}}}, r"train.optimizer.lr.*received -0.1.*greater than 0"),
        ({"train": {"batch_size": 0}}, r"train.batch_size.*received 0.*greater than or equal to 1"),
        ({"task": {"kind": "clustering"}}, r"task.kind.*received 'clustering'"),
        ({"trian": {}}, r"Unknown option 'trian'.*Did you mean 'train'"),
    ],
    ids=["unknown-option", "negative-lr", "zero-batch", "bad-kind", "unknown-section"],
)
def test_invalid_values_are_named(tiny_spec_dict, patch, match):
    data = {**tiny_spec_dict, **patch}
    with pytest.raises(SpecError, match=match):
        Spec.from_dict(data)


def test_with_values_addresses_graph_nodes_by_name(tiny_spec_dict):
    spec = Spec.from_dict(tiny_spec_dict).with_values(
        {"graph.nodes.hidden.units": 32, "train.optimizer.lr": 0.1}
    )
    assert spec.graph.nodes[0].attrs["units"] == 32
    assert spec.get_value("graph.nodes.hidden.units") == 32
    assert spec.train.optimizer.lr == 0.1


def test_with_values_revalidates(tiny_spec_dict):
    with pytest.raises(SpecError, match="train.epochs"):
        Spec.from_dict(tiny_spec_dict).with_values({"train.epochs": 0})


def test_unknown_paths_suggest_the_closest(tiny_spec_dict):
    data = Spec.from_dict(tiny_spec_dict).to_dict()
    with pytest.raises(SpecError, match="No node named 'hiden'.*Did you mean 'hidden'"):
        set_path(data, "graph.nodes.hiden.units", 3)
    with pytest.raises(SpecError, match="Unknown key 'optimiser'.*Did you mean 'optimizer'"):
        get_path(data, "train.optimiser.lr")


def test_parse_value_reads_yaml_scalars():
    assert parse_value("0.5") == 0.5
    assert parse_value("[1, 2]") == [1, 2]
    assert parse_value("adamw") == "adamw"
    assert parse_value("true") is True


def test_monitor_defaults_follow_the_task(tiny_spec_dict):
    assert Spec.from_dict(tiny_spec_dict).task.monitor_metric() == ("val_loss", "min")
    acc = {**tiny_spec_dict, "task": {"kind": "multiclass", "target": "y", "monitor": "val_acc"}}
    assert Spec.from_dict(acc).task.monitor_metric() == ("val_acc", "max")


def test_relative_csv_source_resolves_against_the_spec_files_folder(tmp_path, monkeypatch):
    import numpy as np
    import pandas as pd

    from dltoolkit.api import check, resolve_spec

    folder = tmp_path / "project"
    (folder / "data").mkdir(parents=True)
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=40), "target": np.repeat(["a", "b"], 20)})
    frame.to_csv(folder / "data" / "table.csv", index=False)
    text = Spec.from_dict(
        {
            "task": {"kind": "binary"},
            "data": {"source": "data/table.csv"},
            "graph": {"nodes": [{"name": "h", "op": "linear", "units": 2}]},
        }
    ).to_yaml()
    (folder / "spec.yaml").write_text(text)
    monkeypatch.chdir(tmp_path)  # not the spec's folder
    spec = Spec.load(folder / "spec.yaml")
    assert spec.data.source == str((folder / "data" / "table.csv").resolve())
    assert check(resolve_spec("project/spec.yaml")).data.X_train.shape[1] == 1
    # absolute paths and bundled names stay as written
    (folder / "abs.yaml").write_text(text.replace("data/table.csv", str(folder / "data" / "table.csv")))
    assert Spec.load(folder / "abs.yaml").data.source == str(folder / "data" / "table.csv")
    (folder / "wine.yaml").write_text(text.replace("data/table.csv", "wine"))
    assert Spec.load(folder / "wine.yaml").data.source == "wine"
