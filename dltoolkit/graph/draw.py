"""Draw a Graph as a layered picture: one box per node, edges labelled with tensor shapes."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from dltoolkit.graph.graph import Graph


def _layout(graph: Graph) -> dict[str, tuple[float, float]]:
    depth = {"input": 0}
    for node in graph.nodes:
        depth[node.name] = 1 + max(depth[i] for i in node.inputs)
    rows: dict[int, list[str]] = {}
    for name, d in depth.items():
        rows.setdefault(d, []).append(name)
    pos: dict[str, tuple[float, float]] = {}
    for d, names in rows.items():
        for i, name in enumerate(names):
            pos[name] = (i - (len(names) - 1) / 2, -d)
    return pos


def draw_graph(graph: Graph, ax: Axes | None = None) -> Figure:
    """Return a matplotlib Figure of ``graph`` (drawn into ``ax`` when given)."""
    from matplotlib.figure import Figure

    from dltoolkit.evaluate._figures import figure_of

    pos = _layout(graph)
    depth = 1 + max(-y for _, y in pos.values())
    if ax is None:
        fig = Figure(figsize=(6, 0.9 * depth + 0.6))
        ax = fig.add_subplot()
    fig = figure_of(ax)
    shapes = {"input": graph.input_shape} | {n.name: n.out_shape for n in graph.nodes}
    for node in graph.nodes:
        for src in node.inputs:
            (x0, y0), (x1, y1) = pos[src], pos[node.name]
            ax.annotate(
                "",
                xy=(x1, y1 + 0.22),
                xytext=(x0, y0 - 0.22),
                arrowprops={"arrowstyle": "->", "color": "#555"},
            )
            ax.text(
                (x0 + x1) / 2 + 0.05,
                (y0 + y1) / 2,
                str(tuple(shapes[src])),
                fontsize=7,
                color="#a33",
                va="center",
            )
    labels = {"input": ("input", "", "")} | {n.name: (n.name, n.op, n.note) for n in graph.nodes}
    for name, (x, y) in pos.items():
        title, op, note = labels[name]
        text = title if not op or op == title else f"{title}\n{op}"
        if note:  # a backbone: its architecture, weights and frozen stages
            text += "\n" + note.replace(" · ", "\n", 1)
        ax.text(
            x,
            y,
            text,
            ha="center",
            va="center",
            fontsize=8,
            bbox={"boxstyle": "round,pad=0.3", "fc": "#e8f0fe" if op else "#eee", "ec": "#335"},
        )
    out = graph.nodes[-1]
    ax.text(
        pos[out.name][0] + 0.05, pos[out.name][1] - 0.45, str(tuple(out.out_shape)), fontsize=7, color="#a33"
    )
    xs = [x for x, _ in pos.values()]
    ax.set_xlim(min(xs) - 1, max(xs) + 1)
    ax.set_ylim(-depth, 0.5)
    ax.axis("off")
    params = f"{graph.total_params:,} parameters"
    if graph.trainable_params != graph.total_params:
        params += f" ({graph.trainable_params:,} trainable)"
    ax.set_title(f"{params} · {graph.total_flops:,} FLOPs/sample", fontsize=9)
    return fig
