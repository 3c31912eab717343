"""The graph builder's logic, free of widgets: templates, node edits on a draft, tunable attributes.

Every edit is applied to a draft list of nodes and checked by building the graph against the data's
real input shape. A valid draft becomes the live spec; a broken one keeps its error (and the node it
names) while the live spec stays the last valid one, and :meth:`GraphBuilder.undo` drops it.

Example:
    >>> from dltoolkit.recipes import load_recipe
    >>> builder = GraphBuilder(SpecState(load_recipe("wine")))
    >>> builder.set_attr("hidden", "units", 8)
    True
    >>> builder.state.spec.graph.nodes[0].units, builder.graph.total_params > 0
    (8, True)
"""

from __future__ import annotations

import inspect
import math
import re
from dataclasses import dataclass
from typing import Any

from dltoolkit.errors import DLToolkitError, SpecError, message
from dltoolkit.graph import LAYERS
from dltoolkit.spec import Spec
from dltoolkit.widgets._common import explain
from dltoolkit.widgets._prepared import build_graph, prepared
from dltoolkit.widgets._state import SpecState

TEMPLATES = ("MLP", "CNN", "RNN", "Transformer")
_NODE = re.compile(r"[Nn]ode '([^']+)'")


@dataclass
class Attribute:
    """One attribute of an op, read from its builder's signature."""

    name: str
    kind: str  # int, float, bool, str or yaml (anything else, typed as YAML)
    default: Any
    required: bool


def op_attributes(op: str) -> list[Attribute]:
    """The attributes ``op`` accepts, from ``inspect.signature`` of its layer builder."""
    params = inspect.signature(LAYERS.get(op)).parameters
    out = []
    for name, p in params.items():
        if name in ("in_shapes", "ctx") or name.startswith("_"):
            continue
        note = p.annotation if isinstance(p.annotation, str) else getattr(p.annotation, "__name__", "")
        required = p.default is inspect.Parameter.empty
        default = None if required else p.default
        kind = note if note in ("int", "float", "bool", "str") else "yaml"
        if note == "" and type(default) in (int, float, bool, str):  # unannotated: go by the default
            kind = type(default).__name__
        out.append(Attribute(name, kind, default, required))
    return out


def template_nodes(name: str, spec: Spec, data: Any = None) -> tuple[list[dict], dict[str, Any]]:
    """The nodes of a template and the preprocessing it needs (``preprocess.shape``) for this data."""
    if name not in TEMPLATES:
        raise SpecError(message("Unknown template", name, f"one of {list(TEMPLATES)}"))
    text = spec.preprocess.text is not None
    flat = spec.with_values({"preprocess.shape": None})
    n = math.prod(prepared(flat, data).input_shape)
    if name == "MLP":
        nodes: list[dict[str, Any]] = [
            {"name": "hidden", "op": "linear", "units": 64},
            {"name": "act", "op": "relu"},
            {"name": "drop", "op": "dropout", "p": 0.1},
        ]
        if text:
            pool: dict[str, Any] = {"name": "pool", "op": "global_avg_pool", "axis": "sequence"}
            nodes = [{"name": "embed", "op": "embedding", "dim": 16}, pool] + nodes
        return nodes, {"preprocess.shape": None}
    if name == "CNN":
        side = math.isqrt(n)
        if side * side != n or text:
            raise SpecError(
                message("The CNN template needs square images", f"{n} features", "a square number of pixels")
            )
        nodes = [
            {"name": "conv1", "op": "conv2d", "channels": 16, "kernel_size": 3},
            {"name": "act1", "op": "relu"},
            {"name": "pool", "op": "maxpool2d", "kernel_size": 2},
            {"name": "flat", "op": "flatten"},
        ]
        return nodes, {"preprocess.shape": [1, side, side]}
    if text:
        first: list[dict[str, Any]] = [
            {"name": "embed", "op": "embedding", "dim": 32, "positional": name == "Transformer"}
        ]
        shape = None
    else:
        first = [{"name": "proj", "op": "linear", "units": 16}] if name == "Transformer" else []
        shape = [n, 1]
    if name == "RNN":
        return first + [{"name": "rnn", "op": "gru", "units": 32}], {"preprocess.shape": shape}
    rest: list[dict[str, Any]] = [
        {"name": "encoder", "op": "transformer_encoder", "heads": 4, "ff": 64, "dropout": 0.1},
        {"name": "pool", "op": "global_avg_pool", "axis": "sequence"},
    ]
    return first + rest, {"preprocess.shape": shape}


def replace(spec: Spec, section: str, key: str, value: Any) -> Spec:
    """A new spec with ``spec[section][key]`` replaced outright (not merged)."""
    data = spec.to_dict()
    data[section][key] = value
    return Spec.from_dict(data)


def check_domain(domain: str, args: Any) -> None:
    """Raise SpecError unless ``{domain: args}`` is a range the sweep can sample (tune's own parser)."""
    from dltoolkit.tune.space import parse_space

    parse_space({"graph.nodes.node.attr": {domain: args}})


class GraphBuilder:
    """Edits the graph of a :class:`SpecState` node by node, keeping the last valid spec live.

    Attributes:
        nodes: the draft, a list of node dicts (may be broken while ``error`` is set).
        graph: the Graph of the live spec (None when even that does not build).
        error: the message of the last broken edit, or "".
        error_node: the node that message names (or the node edited), or None.
    """

    def __init__(self, state: SpecState) -> None:
        self.state = state
        self.error = ""
        self.error_node: str | None = None
        self._committing = False
        self.nodes = self._spec_nodes()
        self.graph = None
        try:
            self.graph = build_graph(state.spec, state.data)
        except (DLToolkitError, ValueError, KeyError) as e:
            self.error = explain(e)
        state.observe(self._on_spec)

    # ------------------------------------------------------------------ reading
    def _spec_nodes(self) -> list[dict]:
        return [n.model_dump(exclude_defaults=True) | {"op": n.op} for n in self.state.spec.graph.nodes]

    def node(self, name: str) -> dict:
        for node in self.nodes:
            if node["name"] == name:
                return node
        names = [n["name"] for n in self.nodes]
        raise SpecError(message("No such node", name, f"one of {names}"))

    def summary(self):
        """The live graph's table: output shape, parameters and FLOPs per node and in total."""
        return self.graph.summary() if self.graph is not None else None

    def figure(self):
        return self.graph.draw() if self.graph is not None else None

    def tunable(self) -> dict[str, dict[str, Any]]:
        """The search space entries that address graph nodes."""
        return {k: v for k, v in self.state.spec.search.space.items() if k.startswith("graph.nodes.")}

    # ------------------------------------------------------------------ edits
    def apply_template(self, name: str) -> bool:
        try:
            nodes, values = template_nodes(name, self.state.spec, self.state.data)
        except (DLToolkitError, ValueError, KeyError) as e:
            return self._fail(e, None)
        return self._commit(nodes, None, values, keep_space=False)

    def add_node(self, op: str, name: str | None = None, after: str | None = None, **attrs: Any) -> bool:
        """Insert a node (after ``after``, default at the end) with required attributes filled in."""
        taken = {n["name"] for n in self.nodes}
        name = name or next(f"{op}_{i}" for i in range(1, 1000) if f"{op}_{i}" not in taken)
        try:
            defaults = {a.name: _placeholder(a) for a in op_attributes(op) if a.required}
        except DLToolkitError as e:
            return self._fail(e, name)
        node = {"name": name, "op": op} | defaults | attrs
        nodes = list(self.nodes)
        at = len(nodes) if after is None else [n["name"] for n in nodes].index(self.node(after)["name"]) + 1
        nodes.insert(at, node)
        return self._commit(nodes, name)

    def remove_node(self, name: str) -> bool:
        self.node(name)
        nodes = [n for n in self.nodes if n["name"] != name]
        for n in nodes:
            if name in (n.get("inputs") or []):
                n["inputs"] = [i for i in n["inputs"] if i != name] or None
        return self._commit(nodes, None)

    def move_node(self, name: str, delta: int) -> bool:
        nodes = list(self.nodes)
        i = nodes.index(self.node(name))
        j = max(0, min(len(nodes) - 1, i + delta))
        nodes.insert(j, nodes.pop(i))
        return self._commit(nodes, name)

    def connect(self, name: str, inputs: list[str] | None) -> bool:
        """Set a node's inputs (None: the previous node)."""
        return self._edit(name, lambda n: n.update(inputs=list(inputs) if inputs else None))

    def set_op(self, name: str, op: str) -> bool:
        """Change a node's op; attributes the new op does not take are dropped, required ones filled."""
        try:
            attrs = op_attributes(op)
        except DLToolkitError as e:
            return self._fail(e, name)

        def change(n: dict) -> None:
            keep = {a.name for a in attrs}
            for key in [k for k in n if k not in ("name", "op", "inputs", "repeat") and k not in keep]:
                del n[key]
            n["op"] = op
            n.update({a.name: _placeholder(a) for a in attrs if a.required and a.name not in n})

        return self._edit(name, change)

    def set_attr(self, name: str, attr: str, value: Any) -> bool:
        """Set one attribute (None removes it, falling back to the op's default)."""
        return self._edit(name, lambda n: n.pop(attr, None) if value is None else n.update({attr: value}))

    def rename(self, name: str, new: str) -> bool:
        """Rename a node: the nodes that read it and its search-space entries follow the new name."""
        try:
            at = self.nodes.index(self.node(name))
        except DLToolkitError as e:
            return self._fail(e, name)
        # the name the spec knows (a draft typed letter by letter may not have committed)
        live = [n.name for n in self.state.spec.graph.nodes]
        old = live[at] if len(live) == len(self.nodes) else name
        nodes = [dict(n) for n in self.nodes]
        nodes[at]["name"] = new
        for n in nodes:
            if n.get("inputs"):
                n["inputs"] = [new if i == name else i for i in n["inputs"]]
        return self._commit(nodes, new, renamed=(old, new))

    def mark_tunable(self, name: str, attr: str, domain: str, args: Any) -> bool:
        """Make ``graph.nodes.<name>.<attr>`` part of the search space with ``{domain: args}``."""
        try:
            self.node(name)
            check_domain(domain, args)
            space = dict(self.state.spec.search.space) | {f"graph.nodes.{name}.{attr}": {domain: args}}
            self.state.set(replace(self.state.spec, "search", "space", space))
        except (DLToolkitError, ValueError) as e:
            return self._fail(e, name)
        self.error, self.error_node = "", None
        return True

    def unmark_tunable(self, name: str, attr: str) -> None:
        space = {k: v for k, v in self.state.spec.search.space.items() if k != f"graph.nodes.{name}.{attr}"}
        self.state.set(replace(self.state.spec, "search", "space", space))

    def undo(self) -> Spec:
        """Drop a broken draft (back to the live spec), or else undo the last change of the spec."""
        if self.error and self.nodes != self._spec_nodes():
            self.nodes = self._spec_nodes()
            self.error, self.error_node = "", None
            return self.state.spec
        return self.state.undo()

    # ------------------------------------------------------------------ internals
    def _edit(self, name: str, change, focus: str | None = None) -> bool:
        try:
            node = dict(self.node(name))
        except DLToolkitError as e:
            return self._fail(e, name)
        change(node)
        nodes = [node if n["name"] == name else n for n in self.nodes]
        return self._commit(nodes, focus or node["name"])

    def _commit(
        self,
        nodes: list[dict],
        focus: str | None,
        values=None,
        keep_space: bool = True,
        renamed: tuple[str, str] | None = None,
    ) -> bool:
        self.nodes = nodes
        try:
            spec = replace(self.state.spec, "graph", "nodes", nodes)
            spec = spec.with_values(values) if values else spec
            if renamed:
                old, new = (f"graph.nodes.{n}." for n in renamed)
                space = {
                    (new + k[len(old) :] if k.startswith(old) else k): v for k, v in spec.search.space.items()
                }
                spec = replace(spec, "search", "space", space)
            spec = replace(spec, "search", "space", self._live_space(spec, graph=keep_space))
            graph = build_graph(spec, self.state.data)
        except (DLToolkitError, ValueError, KeyError) as e:
            return self._fail(e, focus)
        self.error, self.error_node = "", None
        self.graph = graph
        self._committing = True
        try:
            self.state.set(spec)
        finally:
            self._committing = False
        return True

    def _live_space(self, spec: Spec, graph: bool = True) -> dict:
        names = {n.name for n in spec.graph.nodes}
        return {
            k: v
            for k, v in spec.search.space.items()
            if not k.startswith("graph.nodes.") or (graph and k.split(".")[2] in names)
        }

    def _fail(self, error: BaseException, focus: str | None) -> bool:
        self.error = explain(error)
        named = _NODE.search(self.error)
        self.error_node = named.group(1) if named else focus
        return False

    def _on_spec(self, spec: Spec) -> None:
        """Another panel changed the spec: start again from it (the data may have changed shape)."""
        if self._committing:
            return
        self.nodes = self._spec_nodes()
        self.error, self.error_node = "", None
        try:
            self.graph = build_graph(spec, self.state.data)
        except (DLToolkitError, ValueError, KeyError) as e:
            self.graph, self.error = None, explain(e)


def _placeholder(attr: Attribute) -> Any:
    return {"int": 16, "float": 0.1, "bool": False, "str": ""}.get(attr.kind, [1])
