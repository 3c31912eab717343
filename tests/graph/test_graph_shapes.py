import pytest
import torch
from torch import nn

from dltoolkit.errors import GraphError, SpecError, UnknownNameError
from dltoolkit.graph import LAYERS, Graph
from dltoolkit.spec import GraphSpec


def graph(nodes, shape=(8,), n_outputs=3, dtype=torch.float32, **ctx):
    return Graph(GraphSpec.model_validate({"nodes": nodes}), shape, dtype, n_outputs, ctx)


REQUIRED = {
    "linear",
    "conv1d",
    "conv2d",
    "maxpool1d",
    "maxpool2d",
    "avgpool1d",
    "avgpool2d",
    "global_avg_pool",
    "global_max_pool",
    "batchnorm",
    "layernorm",
    "dropout",
    "relu",
    "gelu",
    "tanh",
    "sigmoid",
    "leaky_relu",
    "silu",
    "softmax",
    "flatten",
    "reshape",
    "embedding",
    "lstm",
    "gru",
    "transformer_encoder",
    "attention",
    "add",
    "concat",
}


def test_registry_has_every_required_layer():
    assert REQUIRED <= set(LAYERS.names())


CASES = [
    ([{"name": "l", "op": "linear", "units": 5}], (8,), (5,)),
    (
        [{"name": "r", "op": "reshape", "shape": [2, 4]}, {"name": "c", "op": "conv1d", "channels": 6}],
        (8,),
        (6, 4),
    ),
    ([{"name": "c", "op": "conv2d", "channels": 4, "kernel_size": 3, "stride": 2}], (1, 8, 8), (4, 4, 4)),
    ([{"name": "p", "op": "maxpool2d"}], (3, 8, 8), (3, 4, 4)),
    ([{"name": "p", "op": "avgpool1d"}], (3, 8), (3, 4)),
    ([{"name": "g", "op": "global_avg_pool"}], (3, 8, 8), (3,)),
    ([{"name": "g", "op": "global_max_pool", "axis": "sequence"}], (10, 6), (6,)),
    ([{"name": "b", "op": "batchnorm"}, {"name": "n", "op": "layernorm"}], (3, 8, 8), (3, 8, 8)),
    ([{"name": "f", "op": "flatten"}], (3, 4, 4), (48,)),
    (
        [{"name": "s", "op": "lstm", "units": 7, "return_sequences": True, "bidirectional": True}],
        (5, 2),
        (5, 14),
    ),
    ([{"name": "s", "op": "gru", "units": 7}], (5, 2), (7,)),
    ([{"name": "a", "op": "attention", "heads": 2}], (5, 4), (5, 4)),
    ([{"name": "t", "op": "transformer_encoder", "heads": 2, "ff": 16}], (5, 4), (5, 4)),
    (
        [{"name": "x", "op": "softmax"}, {"name": "y", "op": "leaky_relu"}, {"name": "z", "op": "silu"}],
        (4,),
        (4,),
    ),
]


@pytest.mark.parametrize(("nodes", "shape", "expected"), CASES, ids=[c[0][-1]["op"] for c in CASES])
def test_shape_inference_matches_the_compiled_module(nodes, shape, expected):
    g = graph(nodes, shape, n_outputs=None)
    assert g.output_shape == expected
    out = g.compile()(torch.randn(3, *shape))
    assert tuple(out.shape) == (3, *expected)


def test_embedding_takes_token_ids_and_vocab_from_the_data():
    g = graph(
        [
            {"name": "e", "op": "embedding", "dim": 6, "positional": True},
            {"name": "p", "op": "global_avg_pool", "axis": "sequence"},
        ],
        (12,),
        2,
        torch.int64,
        vocab_size=50,
    )
    assert g.nodes[0].out_shape == (12, 6)
    assert g.nodes[0].params == 50 * 6 + 12 * 6
    assert g.compile()(torch.randint(0, 50, (4, 12))).shape == (4, 2)


def test_residual_dag_with_add_and_concat():
    nodes = [
        {"name": "a", "op": "linear", "units": 16},
        {"name": "b", "op": "relu"},
        {"name": "c", "op": "linear", "units": 16},
        {"name": "res", "op": "add", "inputs": ["a", "c"]},
        {"name": "cat", "op": "concat", "inputs": ["res", "input"]},
    ]
    g = graph(nodes)
    assert g.nodes[-2].out_shape == (24,)  # concat of 16 and 8, before the head
    assert g.compile()(torch.randn(2, 8)).shape == (2, 3)


def test_repeat_stacks_a_block():
    g = graph([{"name": "h", "op": "linear", "units": 8, "repeat": 3}])
    assert g.nodes[0].params == 3 * (8 * 8 + 8)


def test_params_and_flops_against_pytorch():
    g = graph([{"name": "h", "op": "linear", "units": 16}, {"name": "c", "op": "relu"}])
    ref = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
    assert g.total_params == sum(p.numel() for p in ref.parameters())
    assert g.total_flops == 2 * (8 * 16 + 16 * 3)  # one multiply-add = 2 FLOPs, per sample
    summary = g.summary()
    assert list(summary["node"]) == ["h", "c", "head", "total"]
    assert summary.iloc[-1]["params"] == g.total_params


def test_recurrent_and_attention_flops_are_counted():
    assert graph([{"name": "s", "op": "lstm", "units": 4}], (5, 2)).nodes[0].flops == 5 * 2 * 4 * 4 * (2 + 4)
    assert (
        graph([{"name": "t", "op": "transformer_encoder", "heads": 2, "ff": 8}], (5, 4), None).total_flops > 0
    )


def test_compile_gives_fresh_weights():
    g = graph([{"name": "h", "op": "linear", "units": 4}])
    a, b = g.compile(), g.compile()
    assert not torch.equal(a.layers["h"].weight, b.layers["h"].weight)


def test_mismatched_shapes_name_the_node_and_both_shapes():
    with pytest.raises(GraphError, match=r"Node 'r' \(add\).*\(16,\) from 'a', \(8,\) from 'input'"):
        graph(
            [{"name": "a", "op": "linear", "units": 16}, {"name": "r", "op": "add", "inputs": ["a", "input"]}]
        )


def test_rank_mismatch_names_the_node_and_fix():
    with pytest.raises(GraphError, match=r"Node 'c' \(conv2d\).*\(8,\) from 'input'.*expects.*reshape"):
        graph([{"name": "c", "op": "conv2d", "channels": 4}])


def test_head_needs_flat_features():
    with pytest.raises(
        GraphError, match=r"output node 'c' has shape \(4, 8, 8\).*flatten or global_avg_pool"
    ):
        graph([{"name": "c", "op": "conv2d", "channels": 4}], (1, 8, 8))


@pytest.mark.parametrize(
    ("nodes", "error", "match"),
    [
        (
            [{"name": "h", "op": "linaer", "units": 3}],
            UnknownNameError,
            "Unknown layer.*Did you mean 'linear'",
        ),
        (
            [{"name": "h", "op": "linear", "unit": 3}],
            SpecError,
            "Unknown attribute.*'unit'.*Did you mean 'units'",
        ),
        ([{"name": "h", "op": "linear"}], SpecError, "missing required attribute.*units"),
        ([{"name": "h", "op": "relu", "inputs": ["hx"]}], GraphError, "does not exist.*'hx'"),
        ([{"name": "input", "op": "relu"}], SpecError, "Invalid node name"),
        ([{"name": "a", "op": "relu"}, {"name": "a", "op": "relu"}], SpecError, "Duplicate node name"),
        ([], GraphError, "no nodes"),
        ([{"name": "r", "op": "reshape", "shape": [3, 3]}], GraphError, r"cannot reshape \(8,\)"),
        (
            [{"name": "r", "op": "reshape", "shape": [2, 4]}, {"name": "a", "op": "attention", "heads": 3}],
            GraphError,
            "divisible by heads",
        ),
    ],
    ids=[
        "unknown-op",
        "unknown-attr",
        "missing-attr",
        "unknown-input",
        "reserved-name",
        "duplicate",
        "empty",
        "bad-reshape",
        "heads",
    ],
)
def test_bad_graphs(nodes, error, match):
    with pytest.raises(error, match=match):
        graph(nodes)


def test_draw_returns_a_figure_with_shapes(tmp_path):
    g = graph(
        [
            {"name": "a", "op": "linear", "units": 16},
            {"name": "r", "op": "relu"},
            {"name": "s", "op": "add", "inputs": ["a", "r"]},
        ]
    )
    fig = g.draw()
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert "(16,)" in texts and "(8,)" in texts and any("add" in t for t in texts)
    fig.savefig(tmp_path / "g.png")
    assert (tmp_path / "g.png").stat().st_size > 1000
    assert "parameters" in g._repr_html_()


def test_unused_nodes_are_reported_and_left_out_of_totals_and_the_model():
    nodes = [
        {"name": "h", "op": "linear", "units": 16},
        {"name": "side", "op": "linear", "units": 32, "inputs": ["input"]},  # feeds nothing
        {"name": "c", "op": "relu", "inputs": ["h"]},
    ]
    g = graph(nodes)
    assert g.unused == ["side"]
    ref = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
    assert g.total_params == sum(p.numel() for p in ref.parameters())  # side's 288 are not counted
    summary = g.summary().set_index("node")
    assert summary.loc["side", "note"] == "unused" and summary.loc["side", "params"] == 8 * 32 + 32
    assert "1 unused" in summary.loc["total", "note"]
    model = g.compile()
    assert "side" not in model.layers and sum(p.numel() for p in model.parameters()) == g.total_params
    assert model(torch.randn(4, 8)).shape == (4, 3)
    assert graph(nodes[:1] + nodes[2:]).unused == []


def test_parameter_ceiling_is_checked_before_building_and_can_be_raised(monkeypatch):
    from dltoolkit.graph.graph import MAX_PARAMS_ENV

    spec = GraphSpec.model_validate({"sequential": [{"op": "linear", "units": 16}]})
    monkeypatch.setenv(MAX_PARAMS_ENV, "50")
    with pytest.raises(SpecError, match=r"received '80 parameters.*expected at most 50 parameters"):
        Graph(spec, input_shape=(4,))
    monkeypatch.setenv(MAX_PARAMS_ENV, "1e3")
    assert Graph(spec, input_shape=(4,)).total_params == 80
