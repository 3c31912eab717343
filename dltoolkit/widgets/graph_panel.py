"""The graph builder panel: a thin view over :class:`GraphBuilder`.

Example:
    >>> from dltoolkit.recipes import load_recipe
    >>> panel = GraphPanel(GraphBuilder(SpecState(load_recipe("wine"))))
    >>> panel.select("hidden")
    >>> panel.attr_control("units").value
    32
"""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as w
import yaml

from dltoolkit.graph import LAYERS
from dltoolkit.graph.layers import MERGES
from dltoolkit.widgets._common import MessageBox, labelled, table_html, wrap
from dltoolkit.widgets._state import SpecState
from dltoolkit.widgets.graph_builder import TEMPLATES, Attribute, GraphBuilder, op_attributes
from dltoolkit.widgets.graph_canvas import GraphCanvas

_CONTROLS = {"int": w.IntText, "float": w.FloatText, "bool": w.Checkbox, "str": w.Text}


class GraphPanel(w.VBox):
    """Templates, the node list, the selected node's editor, the live summary table and picture."""

    def __init__(self, builder: GraphBuilder) -> None:
        super().__init__()
        self.add_class("dlt-graph-panel")
        self.builder = builder
        self.selected: str | None = None
        self._syncing = False
        self._editor_key: tuple | None = None
        self._fields: dict[str, Any] = {}
        self._shows: list[str] = [""]  # the node the editor's fields commit to ("": none yet)
        self.message = MessageBox()
        self.template = labelled(w.Dropdown(options=TEMPLATES, description="Template"), "dlt-template")
        self.apply_button = labelled(w.Button(description="Apply template"), "dlt-apply-template")
        self.undo_button = labelled(w.Button(description="Undo", icon="undo"), "dlt-undo")
        self.new_op = labelled(
            w.Dropdown(options=LAYERS.names(), value="linear", description="Op"), "dlt-new-op"
        )
        self.new_name = labelled(w.Text(placeholder="name (optional)"), "dlt-new-name")
        self.add_button = labelled(w.Button(description="Add node", icon="plus"), "dlt-add-node")
        self.node_list = labelled(w.VBox(), "dlt-node-list")
        self.editor = labelled(w.VBox(), "dlt-node-editor")
        self.summary = labelled(w.HTML(), "dlt-graph-summary")
        self.total = labelled(w.HTML(), "dlt-graph-total")
        self.canvas = GraphCanvas()  # the main view: click, drag to connect, Delete to remove
        self.canvas.observe(lambda c: self._pick(c["new"]), "selected")
        self.canvas.on_connect.append(self._connect)
        self.canvas.on_delete.append(lambda name: self._do(builder.remove_node, name))
        self.apply_button.on_click(lambda _: self._do(builder.apply_template, self.template.value))
        self.undo_button.on_click(lambda _: self._do(builder.undo))
        self.add_button.on_click(lambda _: self._add())
        self.children = [
            w.HBox([self.template, self.apply_button, self.undo_button]),
            w.HBox([self.new_op, self.new_name, self.add_button]),
            self.message,
            w.HBox(  # side by side where there is room, one above the other on a narrow page
                [w.VBox([self.canvas, self.total]), w.VBox([self.node_list, self.editor, self.summary])],
                layout=wrap(),
            ),
        ]
        builder.state.observe(lambda _spec: self.refresh())
        self.refresh()

    # ------------------------------------------------------------------ actions
    def _do(self, action, *args: Any) -> None:
        if self._syncing:  # the panel is showing the builder's values, not the user editing them
            return
        action(*args)
        if self.selected not in [n["name"] for n in self.builder.nodes]:
            self.selected = None
        self.refresh()

    def _add(self) -> None:
        before = {n["name"] for n in self.builder.nodes}
        self.builder.add_node(self.new_op.value, self.new_name.value.strip() or None)
        added = [n["name"] for n in self.builder.nodes if n["name"] not in before]
        self.selected = added[0] if added else self.selected
        self.refresh()

    def _rename(self, old: str, new: str) -> None:
        if self._syncing or not new or new == old:
            return
        follow = old == self.selected  # the editor stays on the renamed node (a refused name stays
        if follow:  # in the draft, shown with its error, until fixed or undone)
            self.selected = new
        if (
            not self.builder.rename(old, new)
            and follow
            and new not in [n["name"] for n in self.builder.nodes]
        ):
            self.selected = old
        self.refresh()

    def select(self, name: str) -> None:
        self.selected = name
        self.refresh()

    def _pick(self, name: str) -> None:
        """A click on the canvas selects that node in the editor."""
        if name and name != self.selected and name in [n["name"] for n in self.builder.nodes]:
            self.select(name)

    def _connect(self, source: str, target: str) -> None:
        """An edge dragged from ``source`` onto ``target``: a merge node (add, concat) takes one more
        input; any other node reads ``source`` instead of what it read before."""
        node = self.builder.node(target)
        if node["op"] in MERGES:
            names = [n["name"] for n in self.builder.nodes]
            before = node.get("inputs") or [(["input"] + names)[names.index(target)]]
            inputs = before if source in before else [*before, source]
        else:
            inputs = [source]
        self.selected = target
        self._do(self.builder.connect, target, inputs)

    # ------------------------------------------------------------------ drawing
    def refresh(self) -> None:
        b = self.builder
        dead = b.graph.unused if b.graph is not None else []
        if b.error:
            self.message.error(
                f"{b.error}\nThe live spec is still the last valid one; edit again or press Undo."
            )
        elif dead:
            self.message.info(
                f"Unused: {', '.join(dead)}: no path leads from it to the output, so it is not trained, "
                "not counted, and left out of a sweep's search. Connect it (drag from it onto a node) or "
                "remove it."
            )
        else:
            self.message.clear()
        names = [n["name"] for n in b.nodes]
        if self.selected not in names:
            self.selected = names[-1] if names else None
        self.node_list.children = [self._row(n) for n in b.nodes]
        self._draw_editor()
        table = b.summary()
        if table is not None:
            total = table.iloc[-1]
            self.total.value = (
                f'<b>Total: <span class="dlt-total-params">{int(total["params"]):,}</span> parameters, '
                f'<span class="dlt-total-flops">{int(total["flops"]):,}</span> FLOPs per sample</b>'
            )
            self.summary.value = table_html(table, "dlt-table dlt-summary-table")
        self.canvas.show(b.graph, b.error_node)
        self.canvas.selected = self.selected or ""

    def _draw_editor(self) -> None:
        """Build the editor when the op (so the fields) changes; otherwise update it in place, so a
        field being typed into keeps its focus, its caret and the page's scroll position."""
        if not self.selected:
            self.editor.children, self._editor_key = [], None
            return
        node = self.builder.node(self.selected)
        try:
            attributes = op_attributes(node["op"])
        except KeyError:
            attributes = []
        key = (node["op"], tuple(_kind(a, node.get(a.name, a.default)) for a in attributes))
        if key != self._editor_key:
            self.editor.children, self._editor_key = self._editor(attributes), key
        self._shows[0] = node["name"]
        self._syncing = True
        try:
            self._fields["name"].value = node["name"]
            self._fields["op"].value = node["op"]
            self._fields["inputs"].value = ", ".join(node.get("inputs") or [])
            space = self.builder.tunable()
            for attr in attributes:
                control, tune, domain = self._fields[attr.name]
                control.value = _shown(attr, node.get(attr.name, attr.default))
                entry = space.get(f"graph.nodes.{node['name']}.{attr.name}")
                tune.value = entry is not None
                if entry is not None:
                    domain.value = yaml.safe_dump(entry, default_flow_style=True).strip()
        finally:
            self._syncing = False

    def _row(self, node: dict) -> w.Widget:
        name = node["name"]
        pick = w.Button(description=name, button_style="info" if name == self.selected else "")
        pick.add_class("dlt-node-select")
        pick.on_click(lambda _: self.select(name))
        buttons = []
        for icon, cls, action in (
            ("arrow-up", "dlt-node-up", lambda: self.builder.move_node(name, -1)),
            ("arrow-down", "dlt-node-down", lambda: self.builder.move_node(name, 1)),
            ("trash", "dlt-node-remove", lambda: self.builder.remove_node(name)),
        ):
            button = labelled(w.Button(icon=icon, layout=w.Layout(width="36px")), cls)
            button.on_click(lambda _, act=action: self._do(act))
            buttons.append(button)
        error = self.builder.error if self.builder.error_node == name else ""
        note = w.HTML(
            f'<span class="dlt-node-error" style="color:#b00020">{html.escape(error)}</span>'
            if error
            else f'<span style="color:#666">{html.escape(node["op"])}</span>'
        )
        row = w.HBox([pick, *buttons, note])
        row.add_class("dlt-node-row")
        row.add_class(f"dlt-node-{name}")
        return row

    def _editor(self, attributes: list[Attribute]) -> list[w.Widget]:
        """The fields of the selected node; each acts on whichever node is selected when it fires.

        Text fields commit on Enter or when they lose focus (``continuous_update=False``): a
        commit per keystroke rebuilt the panel, lost the focus after one letter and sent the next
        keys to JupyterLab's shortcuts.
        """
        # the node these fields show; a field of an editor already replaced (typed into just before
        # the browser received the new one) still commits to the node it showed
        assert self.selected is not None  # _draw_editor builds an editor for the selected node only
        self._shows = shows = [self.selected]
        rename = labelled(w.Text(description="Name", continuous_update=False), "dlt-node-name")
        rename.observe(lambda c: self._rename(shows[0], c["new"].strip()), "value")
        op = labelled(w.Dropdown(options=LAYERS.names(), description="Op"), "dlt-node-op")
        op.observe(lambda c: self._do(self.builder.set_op, shows[0], c["new"]), "value")
        inputs = labelled(
            w.Text(description="Inputs", placeholder="previous node", continuous_update=False),
            "dlt-node-inputs",
        )
        inputs.observe(lambda c: self._do(self.builder.connect, shows[0], _names(c["new"])), "value")
        self._fields = {"name": rename, "op": op, "inputs": inputs}
        return [rename, op, inputs] + [self._attr_row(a, shows) for a in attributes]

    def _attr_row(self, attr: Attribute, shows: list[str]) -> w.Widget:
        node = self.builder.node(shows[0])
        control = _control(attr, node.get(attr.name, attr.default))
        control.observe(lambda c: self._set_attr(shows[0], attr, c["new"]), "value")
        tune = labelled(w.Checkbox(description="tune", indent=False), "dlt-tune")
        domain = labelled(
            w.Text(placeholder="{choice: [32, 64]}", layout=w.Layout(width="200px"), continuous_update=False),
            "dlt-tune-range",
        )

        def on_tune(_change: Any) -> None:
            if self._syncing:
                return
            name = shows[0]
            if not tune.value:
                self._do(self.builder.unmark_tunable, name, attr.name)
                return
            ranged = _range(domain.value, self.builder.node(name).get(attr.name, attr.default))
            self._do(self.builder.mark_tunable, name, attr.name, *ranged)

        tune.observe(on_tune, "value")
        domain.observe(lambda _c: on_tune(None) if tune.value else None, "value")
        self._fields[attr.name] = (control, tune, domain)
        row = w.HBox([control, tune, domain])
        row.add_class(f"dlt-attr-row-{attr.name}")
        return row

    def _set_attr(self, name: str, attr: Attribute, value: Any) -> None:
        if attr.kind == "yaml":
            text = str(value).strip()
            value = None if text == "" else yaml.safe_load(text)
        self._do(self.builder.set_attr, name, attr.name, value)

    def attr_control(self, attr: str) -> w.Widget:
        """The editor control of ``attr`` for the selected node (handy in tests)."""
        for row in self.editor.children:
            if f"dlt-attr-row-{attr}" in row._dom_classes:
                return row.children[0]
        raise KeyError(f"The selected node {self.selected!r} has no attribute {attr!r}")


def _kind(attr: Attribute, value: Any) -> str:
    """Which control shows ``value``: the attribute's own widget, or YAML text when it has none."""
    factory = _CONTROLS.get(attr.kind)
    if factory is None or value is None or (attr.kind != "str" and isinstance(value, str)):
        return "yaml"
    return attr.kind


def _shown(attr: Attribute, value: Any) -> Any:
    if _kind(attr, value) != "yaml":
        return value
    return (
        ""
        if value is None
        else yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()
    )


def _control(attr: Attribute, value: Any) -> w.Widget:
    label = attr.name + (" *" if attr.required else "")
    kind = _kind(attr, value)
    factory = w.Text if kind in ("yaml", "str") else _CONTROLS[kind]
    options = {"continuous_update": False} if factory is w.Text else {}
    control = factory(value=_shown(attr, value), description=label, **options)
    control.add_class(f"dlt-attr-{attr.name}")
    return control


def _names(text: str) -> list[str] | None:
    names = [part.strip() for part in text.split(",") if part.strip()]
    return names or None


def _range(text: str, value: Any) -> tuple[str, Any]:
    """Parse ``{domain: args}`` typed by the user; default to a choice around the current value."""
    parsed = yaml.safe_load(text) if text.strip() else None
    if parsed is None:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return "choice", [type(value)(value / 2) or value, value, type(value)(value * 2)]
        return "choice", [value]
    if isinstance(parsed, dict) and len(parsed) == 1:
        return next(iter(parsed.items()))
    return "choice", parsed


def graph_panel(state: SpecState) -> GraphPanel:
    """A graph builder panel over ``state``."""
    return GraphPanel(GraphBuilder(state))
