"""The graph canvas: the network as an interactive picture, the graph builder's main view.

Click a node to select it (the editor beside shows it), drag from one node onto another to connect
them, press Delete (or Backspace) to remove the selected node. Each edge carries the tensor shape
that flows along it, each node its parameter count; nodes that do not reach the output (a dead
branch) are greyed. The canvas is an anywidget: its model is plain data computed here from a
:class:`~dltoolkit.graph.Graph` (``nodes``, ``edges``), and the browser only draws it (SVG) and
sends back what the user did; :class:`~dltoolkit.widgets.graph_panel.GraphPanel` acts on it through
the :class:`~dltoolkit.widgets.graph_builder.GraphBuilder`, so tests drive it without a browser.

Example:
    >>> canvas = GraphCanvas()
    >>> canvas.show(None)   # no graph yet: an empty canvas
    >>> canvas.nodes
    []
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anywidget
import traitlets

from dltoolkit.graph.draw import _layout

_ESM = r"""
const NS = "http://www.w3.org/2000/svg";
const W = 132, H = 44, DX = 170, DY = 92, PAD = 24;

function el(tag, attrs, parent) {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (parent) parent.appendChild(e);
  return e;
}

function render({ model, el: root }) {
  root.classList.add("dlt-graph-canvas");
  root.tabIndex = 0;  // focusable, so that Delete reaches it (and not the notebook)
  let drag = null;

  function draw() {
    root.replaceChildren();
    const nodes = model.get("nodes"), edges = model.get("edges"), selected = model.get("selected");
    if (!nodes.length) return;
    const xs = nodes.map(n => n.x), ys = nodes.map(n => n.y);
    const minX = Math.min(...xs), maxX = Math.max(...xs), maxY = Math.max(...ys);
    const width = (maxX - minX) * DX + W + 2 * PAD, height = maxY * DY + H + 2 * PAD;
    const px = n => (n.x - minX) * DX + PAD, py = n => n.y * DY + PAD;
    const svg = el("svg", { viewBox: `0 0 ${width} ${height}`, width: Math.min(width, 560),
                            class: "dlt-canvas-svg", role: "img" }, null);
    const defs = el("defs", {}, svg);
    const marker = el("marker", { id: "dlt-arrow", viewBox: "0 0 10 10", refX: 9, refY: 5,
                                  markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" }, defs);
    el("path", { d: "M 0 0 L 10 5 L 0 10 z", fill: "#555" }, marker);
    const byName = Object.fromEntries(nodes.map(n => [n.name, n]));
    for (const e of edges) {
      const a = byName[e.source], b = byName[e.target];
      if (!a || !b) continue;
      const x0 = px(a) + W / 2, y0 = py(a) + H, x1 = px(b) + W / 2, y1 = py(b);
      const g = el("g", { class: "dlt-canvas-edge" }, svg);
      el("line", { x1: x0, y1: y0, x2: x1, y2: y1 - 2, stroke: b.unused ? "#bbb" : "#555",
                   "stroke-width": 1.4, "marker-end": "url(#dlt-arrow)" }, g);
      const label = el("text", { x: (x0 + x1) / 2 + 6, y: (y0 + y1) / 2 + 4, "font-size": 12,
                                 fill: "#a33", class: "dlt-canvas-shape" }, g);
      label.textContent = e.shape;
    }
    for (const n of nodes) {
      const g = el("g", { class: "dlt-canvas-node" + (n.unused ? " dlt-canvas-unused" : "") +
                                 (n.name === selected ? " dlt-canvas-selected" : ""),
                          "data-name": n.name, transform: `translate(${px(n)},${py(n)})` }, svg);
      const fill = n.error ? "#fde7e9" : n.unused ? "#f1f1f1" : n.name === "input" ? "#eee" : "#e8f0fe";
      const stroke = n.name === selected ? "#1565c0" : n.error ? "#b00020" : n.unused ? "#aaa" : "#335";
      el("rect", { width: W, height: H, rx: 8, fill, stroke, "stroke-width": n.name === selected ? 3 : 1.2,
                   "stroke-dasharray": n.unused ? "4 3" : "" }, g);
      const title = el("text", { x: W / 2, y: 18, "text-anchor": "middle", "font-size": 13,
                                 "font-weight": 600, fill: n.unused ? "#888" : "#222" }, g);
      title.textContent = n.name;
      const sub = el("text", { x: W / 2, y: 35, "text-anchor": "middle", "font-size": 11,
                               fill: n.unused ? "#999" : "#555" }, g);
      sub.textContent = n.unused ? `${n.op} · unused` : n.op ? `${n.op} · ${n.params}` : n.shape;
      if (n.note) el("title", {}, g).textContent = n.note;  // a backbone: architecture, weights, frozen
      g.style.cursor = n.name === "input" ? "default" : "pointer";
      g.addEventListener("mousedown", ev => {
        drag = { name: n.name, x: ev.clientX, y: ev.clientY };
        ev.preventDefault();
        root.focus({ preventScroll: true });  // a scroll would move another node under the pointer
      });
      g.addEventListener("mouseup", ev => {
        const moved = drag && Math.hypot(ev.clientX - drag.x, ev.clientY - drag.y) > 6;
        const from = drag && drag.name;
        if (from && moved && from !== n.name && n.name !== "input") {
          model.send({ type: "connect", source: from, target: n.name });
        } else if (from === n.name && n.name !== "input") {
          model.set("selected", n.name);
          model.save_changes();
        }
        drag = null;
        ev.stopPropagation();
      });
    }
    svg.addEventListener("mouseup", () => { drag = null; });
    root.appendChild(svg);
  }

  root.addEventListener("keydown", ev => {
    const selected = model.get("selected");
    if ((ev.key === "Delete" || ev.key === "Backspace") && selected) {
      model.send({ type: "delete", name: selected });
    }
    ev.stopPropagation();  // keys typed here never reach JupyterLab's notebook shortcuts
  });
  model.on("change:nodes", draw);
  model.on("change:edges", draw);
  model.on("change:selected", draw);
  draw();
}
export default { render };
"""

_CSS = """
.dlt-graph-canvas { outline: none; max-width: 100%; overflow: auto; }
.dlt-graph-canvas:focus-visible { outline: 2px solid #90caf9; }
.dlt-graph-canvas .dlt-canvas-node:hover rect { stroke-width: 2.2; }
"""


class GraphCanvas(anywidget.AnyWidget):
    """The interactive graph picture (see the module's docstring).

    Attributes:
        nodes: ``[{name, op, params, shape, x, y, unused, error, note}]`` with layer ``y`` and slot
            ``x``; ``note`` is what a backbone says of itself (shown on hover), "" for other nodes.
        edges: ``[{source, target, shape}]``, each labelled with the shape that flows along it.
        selected: the selected node's name ("" for none); the browser sets it on a click.
        on_connect, on_delete: called with ``(source, target)`` / ``name`` when the user drags an
            edge or presses Delete.
    """

    _esm = _ESM
    _css = _CSS
    nodes: traitlets.List[dict[str, Any]] = traitlets.List([]).tag(sync=True)
    edges: traitlets.List[dict[str, Any]] = traitlets.List([]).tag(sync=True)
    selected = traitlets.Unicode("").tag(sync=True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.add_class("dlt-graph-canvas-widget")
        self.on_connect: list[Callable[[str, str], None]] = []
        self.on_delete: list[Callable[[str], None]] = []
        self.on_msg(self._message)

    def show(self, graph: Any, error_node: str | None = None) -> None:
        """Draw ``graph`` (a Graph, or None for nothing), marking ``error_node`` if given."""
        if graph is None:
            self.nodes, self.edges = [], []
            return
        pos = _layout(graph)
        xs = sorted({x for x, _ in pos.values()})
        dead = set(graph.unused)
        shapes = {"input": tuple(graph.input_shape)} | {n.name: tuple(n.out_shape) for n in graph.nodes}
        nodes = [{"name": "input", "op": "", "params": "", "shape": str(shapes["input"]),
                  "x": pos["input"][0] - xs[0], "y": 0, "unused": False, "error": False, "note": ""}]  # fmt: skip
        for n in graph.nodes:
            x, y = pos[n.name]
            nodes.append(
                {
                    "name": n.name,
                    "op": n.op if not n.note else f"{n.op} {n.note.split(' · ')[0]}",
                    "params": f"{n.params:,} params",
                    "shape": str(shapes[n.name]),
                    "x": x - xs[0],
                    "y": -y,
                    "unused": n.name in dead,
                    "error": n.name == error_node,
                    "note": n.note,
                }
            )
        edges = [
            {"source": src, "target": n.name, "shape": str(shapes[src])}
            for n in graph.nodes
            for src in n.inputs
        ]
        self.nodes, self.edges = nodes, edges

    def _message(self, _widget: Any, content: dict[str, Any], _buffers: Any) -> None:
        kind = content.get("type")
        if kind == "connect":
            for listener in list(self.on_connect):
                listener(str(content["source"]), str(content["target"]))
        elif kind == "delete":
            for deleted in list(self.on_delete):
                deleted(str(content["name"]))
