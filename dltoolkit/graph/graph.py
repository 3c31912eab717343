"""The computation graph: a DAG of named nodes built from the spec's ``graph`` section.

Building it infers every node's output shape from the data's input shape, counts parameters
and FLOPs per node (with torch's own ``FlopCounterMode``) and compiles the whole into one
``torch.nn.Module``. A graph that does not fit fails here, naming the node and both shapes.

Example:
    >>> from dltoolkit.spec import GraphSpec
    >>> g = Graph(GraphSpec.model_validate({"sequential": [{"op": "linear", "units": 8}, "relu"]}),
    ...           input_shape=(4,), n_outputs=3)
    >>> g.total_params
    67
"""

from __future__ import annotations

import inspect
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from dltoolkit.errors import DLToolkitError, GraphError, SpecError, closest, message
from dltoolkit.graph.layers import LAYERS, MERGES, Shape, ShapeMismatch
from dltoolkit.spec import GraphSpec, NodeSpec

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

INPUT = "input"
MAX_PARAMS_ENV = "DLTOOLKIT_MAX_PARAMS"  # the ceiling on a graph's parameters (checked before building)
MAX_PARAMS = 100_000_000  # its default: 400 MB of float32 weights (training holds ~4x that)


def max_params() -> int:
    """The largest parameter count a graph may have: ``$DLTOOLKIT_MAX_PARAMS`` or :data:`MAX_PARAMS`."""
    text = os.environ.get(MAX_PARAMS_ENV, "").replace("_", "")
    if not text:
        return MAX_PARAMS
    try:
        return int(float(text))
    except ValueError:
        raise SpecError(
            message(f"Invalid {MAX_PARAMS_ENV}", text, "a parameter count such as 200000000 or 2e8")
        ) from None


_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")


@dataclass
class NodeInfo:
    """What building one node found: its wiring, shapes and costs (per sample).

    ``flops`` is counted when first asked for (torch's FlopCounterMode costs about a second the
    first time a process uses it; building a trial's graph does not need the count). ``note`` and
    ``details`` are what the node's module says of itself (a backbone: its architecture, weights,
    frozen stages; in ``details`` also the stage names and the weights' recommended preprocessing).
    """

    name: str
    op: str
    inputs: list[str]
    in_shapes: list[Shape]
    out_shape: Shape
    params: int
    counted: int | Callable[[], int]  # the FLOPs, or how to count them
    attrs: dict[str, Any] = field(default_factory=dict)
    note: str = ""
    trainable: int | None = None  # parameters that train from the start (None: all of them)
    details: dict[str, Any] = field(
        default_factory=dict
    )  # a backbone's: arch, stages, weights' preprocessing

    @property
    def flops(self) -> int:
        if callable(self.counted):
            self.counted = int(self.counted())
        return self.counted


class GraphModule(nn.Module):
    """The compiled graph: runs the nodes in order, feeding each its inputs by name."""

    def __init__(
        self,
        layers: dict[str, nn.Module],
        wiring: list[tuple[str, list[str]]],
        output: str,
        head: nn.Module | None,
    ) -> None:
        super().__init__()
        self.layers = nn.ModuleDict(layers)
        self.wiring = wiring
        self.output = output
        self.head = head
        self.sequential = all(
            inputs == [prev]
            for (_, inputs), prev in zip(wiring, [INPUT] + [n for n, _ in wiring], strict=False)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.sequential and self.output == self.wiring[-1][0]:
            for layer in self.layers.values():
                x = layer(x)
            out = x
        else:
            values = {INPUT: x}
            for name, inputs in self.wiring:
                values[name] = self.layers[name](*[values[i] for i in inputs])
            out = values[self.output]
        return out if self.head is None else self.head(out)


def _shapes_text(names: list[str], shapes: list[Shape]) -> str:
    return ", ".join(f"{tuple(s)} from {n!r}" for s, n in zip(shapes, names, strict=True))


def _recurrent_flops(module: nn.Module, shape: Shape) -> int:
    """FLOPs of LSTM/GRU layers per sample, which FlopCounterMode has no formula for on CPU."""
    total = 0
    for rnn in module.modules():
        if isinstance(rnn, nn.LSTM | nn.GRU):
            gates = 4 if isinstance(rnn, nn.LSTM) else 3
            dirs = 2 if rnn.bidirectional else 1
            size_in = rnn.input_size
            for _ in range(rnn.num_layers):
                total += dirs * shape[0] * 2 * gates * rnn.hidden_size * (size_in + rnn.hidden_size)
                size_in = rnn.hidden_size * dirs
    return total


class Graph:
    """A validated, shape-inferred computation graph.

    Args:
        spec: the spec's graph section.
        input_shape: one sample's shape (no batch axis).
        input_dtype: float32 for features, int64 for token ids.
        n_outputs: size of the task head appended when ``spec.head`` is true.
        ctx: facts from the data builders may need (``vocab_size``).
    """

    def __init__(
        self,
        spec: GraphSpec,
        input_shape: Shape,
        input_dtype: torch.dtype = torch.float32,
        n_outputs: int | None = None,
        ctx: dict[str, Any] | None = None,
    ) -> None:
        self.spec = spec
        self.input_shape = tuple(int(s) for s in input_shape)
        self.input_dtype = input_dtype
        self.n_outputs = n_outputs
        self.ctx = dict(ctx or {})
        self.nodes: list[NodeInfo] = []
        self._layers: dict[str, nn.Module] = {}
        self._head: nn.Module | None = None
        self._build()

    # ------------------------------------------------------------------ building
    def _build(self) -> None:
        if not self.spec.nodes:
            raise GraphError(
                "The graph has no nodes: add at least one node to graph.nodes (e.g. a linear layer)."
            )
        shapes: dict[str, Shape] = {INPUT: self.input_shape}
        dtypes: dict[str, torch.dtype] = {INPUT: self.input_dtype}
        prev = INPUT
        for node in self.spec.nodes:
            self._check_name(node, shapes)
            inputs = node.inputs or [prev]
            for name in inputs:
                if name not in shapes:
                    self._unknown_input(node, name, shapes)
            module, out_shape, flops = self._build_node(
                node, inputs, [shapes[i] for i in inputs], [dtypes[i] for i in inputs]
            )
            params = sum(p.numel() for p in module.parameters())
            self.nodes.append(
                NodeInfo(
                    node.name,
                    node.op,
                    inputs,
                    [shapes[i] for i in inputs],
                    out_shape,
                    params,
                    flops,
                    node.attrs,
                    str(getattr(module, "note", "")),
                    sum(p.numel() for p in module.parameters() if p.requires_grad),
                    getattr(module, "details", dict)(),  # a backbone's details
                )
            )
            self._layers[node.name] = module
            shapes[node.name], dtypes[node.name] = out_shape, torch.float32
            prev = node.name
        self.output = self.spec.output or prev
        if self.output not in shapes or self.output == INPUT:
            self._unknown_input(None, self.output, shapes)
        self._build_head(shapes[self.output])

    def _check_name(self, node: NodeSpec, seen: dict[str, Shape]) -> None:
        if not _NAME.match(node.name) or node.name == INPUT:
            raise SpecError(
                message(
                    "Invalid node name",
                    node.name,
                    "letters, digits, '_' or '-', starting with a letter, and not 'input'",
                )
            )
        if node.name in seen:
            raise SpecError(
                message("Duplicate node name", node.name, "unique node names", "Rename one of them.")
            )

    def _unknown_input(self, node: NodeSpec | None, name: str, shapes: dict[str, Shape]) -> None:
        hint = closest(name, list(shapes))
        where = f"Node {node.name!r} names an input" if node else "graph.output names a node"
        raise GraphError(
            message(
                f"{where} that does not exist (nodes must come after their inputs)",
                name,
                f"one of {list(shapes)}",
                f"Did you mean {hint!r}?" if hint else None,
            )
        )

    def _build_node(
        self, node: NodeSpec, inputs: list[str], in_shapes: list[Shape], dtypes: list[torch.dtype]
    ) -> tuple[nn.Module, Shape, Callable[[], int]]:
        builder = LAYERS.get(node.op)
        attrs = self._check_attrs(node, builder)
        if node.repeat > 1 and node.op in MERGES:
            raise SpecError(
                message(f"Node {node.name!r} repeats a merge op", node.repeat, "repeat: 1 for add/concat")
            )
        parts, shapes, runs = [], in_shapes, []
        total = sum(n.params for n in self.nodes)
        for i in range(node.repeat):
            names = inputs if i == 0 else [f"{node.name} (repeat {i})"]
            total += self._check_size(node, builder, attrs, shapes, total)
            try:
                module = builder(in_shapes=[tuple(s) for s in shapes], ctx=self.ctx, **attrs)
                out_shape = self._run(module, shapes, dtypes)
            except ShapeMismatch as e:
                raise GraphError(
                    f"Node {node.name!r} ({node.op}) does not fit its input "
                    f"{_shapes_text(names, shapes)}: {e}."
                ) from None
            except DLToolkitError as e:  # a bad attribute value, a missing weights file...
                raise type(e)(f"Node {node.name!r} ({node.op}): {e}") from None
            except (RuntimeError, ValueError, TypeError, IndexError) as e:
                raise GraphError(
                    f"Node {node.name!r} ({node.op}) failed on input {_shapes_text(names, shapes)}: "
                    f"{e}. Check its attributes {attrs} against the input shape."
                ) from e
            parts.append(module)
            runs.append((module, shapes, dtypes))
            shapes, dtypes = [out_shape], [torch.float32]

        def count() -> int:
            return sum(self._count(module, shapes, dtypes) for module, shapes, dtypes in runs)

        return (parts[0] if len(parts) == 1 else nn.Sequential(*parts)), shapes[0], count

    def _check_size(
        self,
        node: NodeSpec,
        builder: Callable[..., nn.Module],
        attrs: dict[str, Any],
        shapes: list[Shape],
        total: int,
    ) -> int:
        """Parameters of one (repeat of a) node, counted on the meta device before any memory is
        allocated; more than :func:`max_params` in the whole graph is a SpecError."""
        try:
            with torch.device("meta"):
                module = builder(in_shapes=[tuple(s) for s in shapes], ctx=self.ctx, **attrs)
        except Exception:  # the real build reports what is wrong, naming the node
            return 0
        params = sum(p.numel() for p in module.parameters())
        limit = max_params()
        if total + params > limit:
            raise SpecError(
                message(
                    f"Node {node.name!r} ({node.op}) makes the model too large to build",
                    f"{params:,} parameters in this node, {total + params:,} in the graph so far "
                    f"({(total + params) * 4 / 1e9:.1f} GB of float32 weights)",
                    f"at most {limit:,} parameters",
                    f"Lower its attributes {attrs}, or, with the memory for it, raise the ceiling "
                    f"with the environment variable {MAX_PARAMS_ENV}=<count>.",
                )
            )
        return params

    def _check_attrs(self, node: NodeSpec, builder: Callable[..., nn.Module]) -> dict[str, Any]:
        params = inspect.signature(builder).parameters
        allowed = [p for p in params if p not in ("in_shapes", "ctx")]
        attrs = node.attrs
        for key in attrs:
            if key not in allowed:
                hint = closest(key, allowed)
                raise SpecError(
                    message(
                        f"Unknown attribute of node {node.name!r} ({node.op})",
                        key,
                        f"one of {allowed}",
                        f"Did you mean {hint!r}?" if hint else None,
                    )
                )
        missing = [p for p in allowed if params[p].default is inspect.Parameter.empty and p not in attrs]
        if missing:
            raise SpecError(
                f"Node {node.name!r} ({node.op}) is missing required attribute(s) {missing}: "
                f"add them, e.g. {{name: {node.name}, op: {node.op}, {missing[0]}: ...}}."
            )
        return attrs

    @staticmethod
    def _run(module: nn.Module, shapes: list[Shape], dtypes: list[torch.dtype]) -> Shape:
        """One sample's output shape (the module run on a batch of two zeros)."""
        xs = [torch.zeros((2, *s), dtype=d) for s, d in zip(shapes, dtypes, strict=True)]
        module.eval()
        try:
            with torch.no_grad():
                out = module(*xs)
        finally:
            module.train()
        return tuple(out.shape[1:])

    @staticmethod
    def _count(module: nn.Module, shapes: list[Shape], dtypes: list[torch.dtype]) -> int:
        """FLOPs per sample of one module: torch's FlopCounterMode (plus recurrent layers' own)."""
        xs = [torch.zeros((2, *s), dtype=d) for s, d in zip(shapes, dtypes, strict=True)]
        was_training = module.training
        module.eval()
        fastpath = torch.backends.mha.get_fastpath_enabled()
        torch.backends.mha.set_fastpath_enabled(False)  # the fused kernel hides its matmuls from the counter
        try:
            with torch.no_grad(), FlopCounterMode(display=False) as counter:
                module(*xs)
        finally:
            torch.backends.mha.set_fastpath_enabled(fastpath)
            module.train(was_training)
        return counter.get_total_flops() // 2 + _recurrent_flops(module, shapes[0])

    def _build_head(self, shape: Shape) -> None:
        if not (self.spec.head and self.n_outputs):
            return
        if len(shape) != 1:
            raise GraphError(
                f"The graph's output node {self.output!r} has shape {shape}, but the task head "
                f"needs (features,): add a flatten or global_avg_pool node at the end."
            )
        self._head = nn.Linear(shape[0], self.n_outputs)
        self.nodes.append(
            NodeInfo(
                "head",
                "linear",
                [self.output],
                [shape],
                (self.n_outputs,),
                shape[0] * self.n_outputs + self.n_outputs,
                2 * shape[0] * self.n_outputs,  # multiply-adds count 2 FLOPs, as FlopCounterMode does
                {"units": self.n_outputs},
            )
        )

    # ------------------------------------------------------------------ results
    @property
    def output_shape(self) -> Shape:
        return self.nodes[-1].out_shape if self._head is not None else self._by_name(self.output).out_shape

    def _by_name(self, name: str) -> NodeInfo:
        return next(n for n in self.nodes if n.name == name)

    @property
    def unused(self) -> list[str]:
        """Nodes whose output never reaches the graph's output (a dead branch): they are left out of
        the compiled model, the parameter and FLOP totals, and trained by nobody."""
        needed, wanted = set(), [self.output]
        inputs = {n.name: n.inputs for n in self.nodes if n.name != "head" or self._head is None}
        while wanted:
            name = wanted.pop()
            if name not in needed and name in inputs:
                needed.add(name)
                wanted.extend(inputs[name])
        return [n for n in inputs if n not in needed]

    def _used(self) -> list[NodeInfo]:
        dead = set(self.unused)
        return [n for n in self.nodes if n.name not in dead or (n.name == "head" and self._head is not None)]

    @property
    def total_params(self) -> int:
        """Parameters of the nodes that feed the output (an unused node's are not counted)."""
        return sum(n.params for n in self._used())

    @property
    def trainable_params(self) -> int:
        """Parameters of the used nodes that train from the first epoch (a frozen backbone's do not)."""
        return sum(n.params if n.trainable is None else n.trainable for n in self._used())

    @property
    def total_flops(self) -> int:
        """Multiply-accumulates counted as 2 FLOPs, per sample, from torch's FlopCounterMode."""
        return sum(n.flops for n in self._used())

    def compile(self) -> GraphModule:
        """A fresh ``nn.Module`` (new weights each call) for this graph, without unused nodes."""
        clone = Graph(self.spec, self.input_shape, self.input_dtype, self.n_outputs, self.ctx)
        dead = set(clone.unused)
        wiring = [
            (n.name, n.inputs)
            for n in clone.nodes
            if (n.name != "head" or clone._head is None) and n.name not in dead
        ]
        layers = {name: layer for name, layer in clone._layers.items() if name not in dead}
        return GraphModule(layers, wiring, clone.output, clone._head)

    def summary(self) -> pd.DataFrame:
        """A pandas table: one row per node (shapes, parameters, those that train from the start,
        FLOPs, a note: unused, or what a backbone is) and a total row (the nodes that feed the output)."""
        import pandas as pd

        dead = set(self.unused)
        rows = [
            {
                "node": n.name,
                "op": n.op,
                "inputs": ", ".join(n.inputs),
                "output_shape": str(n.out_shape),
                "params": n.params,
                "trainable": n.params if n.trainable is None else n.trainable,
                "flops": n.flops,
                "note": "; ".join(t for t in ("unused" if n.name in dead else "", n.note) if t),
            }
            for n in self.nodes
        ]
        rows.append(
            {
                "node": "total",
                "op": "",
                "inputs": "",
                "output_shape": str(self.output_shape),
                "params": self.total_params,
                "trainable": self.trainable_params,
                "flops": self.total_flops,
                "note": f"{len(dead)} unused node(s) not counted" if dead else "",
            }
        )
        return pd.DataFrame(rows)

    def draw(self, ax: Axes | None = None) -> Figure:
        """Draw the DAG with shapes on its edges; returns the matplotlib Figure."""
        from dltoolkit.graph.draw import draw_graph

        return draw_graph(self, ax=ax)

    def _repr_html_(self) -> str:
        from dltoolkit._html import table as html_table

        table = html_table(self.summary())
        return (
            f"<b>Graph</b>: {len(self.nodes)} nodes, {self.total_params:,} parameters, "
            f"{self.total_flops:,} FLOPs per sample{table}"
        )
