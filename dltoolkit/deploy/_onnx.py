"""ONNX export: the folded torch graph, with the categorical encoding in ONNX-ML ops in front of it.

A numeric model is exported by ``torch.onnx.export`` alone: input ``features``, output ``output``.
For a model with categorical columns the folded network is exported with two inputs (the numeric
``features`` and the float32 one-hot / ordinal codes ``encoded``) and composed
(:func:`onnx.compose.merge_models`) behind a small graph that computes the codes from one string
input per categorical column: ``ai.onnx.ml.LabelEncoder`` maps each string to its category's
index (the empty string to the imputed category's, anything else unknown to -1), then ``Equal``
against ``0..C-1`` gives the one-hot block (all zeros for -1) or ``Cast`` the ordinal code; the
blocks are concatenated. The file carries a description of its inputs and output in the model's
``doc_string`` and in the metadata property ``dltoolkit`` (JSON).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import TensorProto, compose, helper, numpy_helper
from torch import nn

from dltoolkit.deploy._folded import example_inputs
from dltoolkit.deploy._inputs import Block, InputLayout, labels
from dltoolkit.deploy.export import INPUT_NAME, OUTPUT_NAME, ExportError

ENCODED = "encoded"  # the inner input of the folded network that the ONNX-ML part feeds
ML_DOMAIN, ML_OPSET = "ai.onnx.ml", 3  # LabelEncoder-2: keys_strings -> values_int64
PREFIX = "net/"  # the exported network's own names, kept apart from the column names


def write_onnx(
    module: nn.Module, layout: InputLayout, rows: Any, path: Path, description: dict[str, Any]
) -> Callable[[Any], np.ndarray]:
    """Export ``module`` for ``layout`` into ``path``; return a function running the file on rows."""
    if layout.numeric_only:
        program = _torch_export(module, example_inputs(layout, rows), [INPUT_NAME])
        program.model.doc_string = summary(description)
        program.model.metadata_props["dltoolkit"] = json.dumps(description)
        program.save(str(path))
    else:
        program = _torch_export(module, example_inputs(layout, rows), [INPUT_NAME, ENCODED])
        model = _with_encoders(program.model_proto, layout)
        model.doc_string = summary(description)
        onnx.helper.set_model_props(model, {"dltoolkit": json.dumps(description)})
        onnx.save_model(model, str(path))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return lambda frame: session.run(None, feeds(layout, frame))[0]


def feeds(layout: InputLayout, rows: Any) -> dict[str, np.ndarray]:
    """The ONNX Runtime inputs for raw rows: ``features`` (float32, NaN where missing), then one
    string array per categorical column (``""`` where missing)."""
    out = {INPUT_NAME: layout.features(rows)} if layout.numeric else {}
    for column in layout.categorical:
        out[column] = np.array(labels(rows[column]), dtype=object)
    return out


def summary(description: dict[str, Any]) -> str:
    """One paragraph saying what to feed and what comes out (the file's ``doc_string``)."""
    parts = []
    for i in description["inputs"]:
        what = f"columns {i['columns']}" if "columns" in i else f"column {i['name']!r}"
        parts.append(f"{i['name']!r}: {i['dtype']} {i['shape']}, {what}, missing: {i['missing']}")
    out = description["output"]
    return (
        "dltoolkit export. Inputs: " + "; ".join(parts) + f". Output {out['name']!r}: {out['dtype']} "
        f"{out['shape']}, {out['meaning']}" + (f" {out['classes']}" if "classes" in out else "") + "."
    )


def _torch_export(module: nn.Module, example: tuple, names: list[str]) -> Any:
    batch = torch.export.Dim("batch")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.onnx.export(
                module,
                example,
                dynamo=True,
                input_names=names,
                output_names=[OUTPUT_NAME],
                dynamic_shapes=tuple({0: batch} for _ in names),
                verbose=False,
            )
    except Exception as e:  # the exporter's own errors are many and undocumented
        raise ExportError(f"The ONNX exporter failed: {type(e).__name__}: {e}") from e


def _with_encoders(network: onnx.ModelProto, layout: InputLayout) -> onnx.ModelProto:
    """``network`` (inputs ``features``, ``encoded``) behind the ONNX-ML graph computing ``encoded``."""
    opset = {o.domain: o.version for o in network.opset_import}.get("", 18)
    front = _model(_encoder_graph(layout), opset, network.ir_version, {ML_DOMAIN: ML_OPSET})
    io_map = [("front/features", INPUT_NAME), ("front/encoded", ENCODED)]
    model = compose.merge_models(front, network, io_map=io_map, prefix2=PREFIX)
    result, inner = network.graph.output[0], PREFIX + OUTPUT_NAME  # renamed to ``output`` again:
    back = helper.make_graph(
        [helper.make_node("Identity", [inner], [OUTPUT_NAME])],
        "back",
        [_renamed(result, inner)],
        [_renamed(result, OUTPUT_NAME)],
    )
    back = _model(back, opset, network.ir_version)
    model = compose.merge_models(model, back, io_map=[(inner, inner)], producer_name="dltoolkit")
    imports = {(o.domain, o.version): o for o in model.opset_import}  # merge_models repeats them
    del model.opset_import[:]
    model.opset_import.extend(imports.values())
    return model


def _encoder_graph(layout: InputLayout) -> onnx.GraphProto:
    """String columns in; ``front/features`` (the numeric input, passed on) and ``front/encoded`` out."""
    axes = numpy_helper.from_array(np.array([1], dtype=np.int64), "front/axes")
    nodes, inits = [], [axes]
    for j, block in enumerate(layout.blocks):
        nodes += _block_nodes(j, block, axes.name, inits)
    nodes.append(
        helper.make_node(
            "Concat", [f"front/{j}/block" for j in range(len(layout.blocks))], ["front/encoded"], axis=1
        )
    )
    strings = [helper.make_tensor_value_info(c, TensorProto.STRING, ["batch"]) for c in layout.categorical]
    numbers = [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["batch", len(layout.numeric)])]
    if layout.numeric:
        nodes.append(helper.make_node("Identity", [INPUT_NAME], ["front/features"]))
    else:  # no numeric column: the network's ``features`` input is an empty (batch, 0) tensor
        inits.append(numpy_helper.from_array(np.array([0], dtype=np.int64), "front/zero"))
        nodes.append(
            helper.make_node(
                "Slice", ["front/encoded", "front/zero", "front/zero", axes.name], ["front/features"]
            )
        )
    width = sum(b.width for b in layout.blocks)
    outputs = [
        helper.make_tensor_value_info("front/features", TensorProto.FLOAT, ["batch", len(layout.numeric)]),
        helper.make_tensor_value_info("front/encoded", TensorProto.FLOAT, ["batch", width]),
    ]
    inputs = (numbers if layout.numeric else []) + strings
    return helper.make_graph(nodes, "front", inputs, outputs, initializer=inits)


def _block_nodes(j: int, block: Block, axes: str, inits: list) -> list[onnx.NodeProto]:
    """One column's strings -> index (LabelEncoder; missing: the imputed one; unknown: -1) -> codes."""
    keys, values = list(block.categories), list(range(len(block.categories)))
    if block.fill is not None:  # a missing value (the empty string) is the imputed category
        keys.append("")
        values.append(block.categories.index(block.fill))
    code, column, out = f"front/{j}/code", f"front/{j}/column", f"front/{j}/block"
    nodes = [
        helper.make_node(
            "LabelEncoder",
            [block.column],
            [code],
            domain=ML_DOMAIN,
            keys_strings=keys,
            values_int64s=values,
            default_int64=-1,
        ),  # fmt: skip
        helper.make_node("Unsqueeze", [code, axes], [column]),
    ]
    if not block.onehot:  # ordinal: the code itself
        return [*nodes, helper.make_node("Cast", [column], [out], to=TensorProto.FLOAT)]
    inits.append(
        numpy_helper.from_array(np.arange(block.width, dtype=np.int64)[None, :], f"front/{j}/arange")
    )
    return [
        *nodes,
        helper.make_node("Equal", [column, f"front/{j}/arange"], [f"front/{j}/hot"]),  # -1: all zeros
        helper.make_node("Cast", [f"front/{j}/hot"], [out], to=TensorProto.FLOAT),
    ]


def _renamed(value: onnx.ValueInfoProto, name: str) -> onnx.ValueInfoProto:
    out = onnx.ValueInfoProto()
    out.CopyFrom(value)
    out.name = name
    return out


def _model(
    graph: onnx.GraphProto, opset: int, ir_version: int, extra: dict[str, int] | None = None
) -> onnx.ModelProto:
    imports = [helper.make_opsetid("", opset)] + [helper.make_opsetid(d, v) for d, v in (extra or {}).items()]
    return helper.make_model(graph, opset_imports=imports, ir_version=ir_version)
