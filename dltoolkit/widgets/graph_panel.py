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
from dltoolkit.widgets._common import MessageBox, image, labelled, table_html
from dltoolkit.widgets._state import SpecState
from dltoolkit.widgets.graph_builder import TEMPLATES, Attribute, GraphBuilder, op_attributes

_CONTROLS = {"int": w.IntText, "float": w.FloatText, "bool": w.Checkbox, "str": w.Text}


class GraphPanel(w.VBox):
    """Templates, the node list, the selected node's editor, the live summary table and picture."""

    def __init__(self, builder: GraphBuilder) -> None:
        super().__init__()
        self.add_class("dlt-graph-panel")
        self.builder = builder
        self.selected: str | None = None
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
        self.picture = image("dlt-graph-picture")
        self.apply_button.on_click(lambda _: self._do(builder.apply_template, self.template.value))
        self.undo_button.on_click(lambda _: self._do(builder.undo))
        self.add_button.on_click(lambda _: self._add())
        self.children = [
            w.HBox([self.template, self.apply_button, self.undo_button]),
            w.HBox([self.new_op, self.new_name, self.add_button]),
            self.message,
            w.HBox([w.VBox([self.node_list, self.editor]), w.VBox([self.total, self.summary, self.picture])]),
        ]
        builder.state.observe(lambda _spec: self.refresh())
        self.refresh()

    # ------------------------------------------------------------------ actions
    def _do(self, action, *args: Any) -> None:
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

    def select(self, name: str) -> None:
        self.selected = name
        self.refresh()

    # ------------------------------------------------------------------ drawing
    def refresh(self) -> None:
        b = self.builder
        if b.error:
            self.message.error(
                f"{b.error}\nThe live spec is still the last valid one; edit again or press Undo."
            )
        else:
            self.message.clear()
        names = [n["name"] for n in b.nodes]
        if self.selected not in names:
            self.selected = names[-1] if names else None
        self.node_list.children = [self._row(n) for n in b.nodes]
        self.editor.children = self._editor() if self.selected else []
        table = b.summary()
        if table is not None:
            total = table.iloc[-1]
            self.total.value = (
                f'<b>Total: <span class="dlt-total-params">{int(total["params"]):,}</span> parameters, '
                f'<span class="dlt-total-flops">{int(total["flops"]):,}</span> FLOPs per sample</b>'
            )
            self.summary.value = table_html(table, "dlt-table dlt-summary-table")
            self.picture.show(b.figure())

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

    def _editor(self) -> list[w.Widget]:
        node = self.builder.node(self.selected)
        name = node["name"]
        rename = labelled(w.Text(value=name, description="Name"), "dlt-node-name")
        rename.observe(lambda c: self._do(self.builder.rename, name, c["new"].strip()), "value")
        op = labelled(w.Dropdown(options=LAYERS.names(), value=node["op"], description="Op"), "dlt-node-op")
        op.observe(lambda c: self._do(self.builder.set_op, name, c["new"]), "value")
        inputs = labelled(
            w.Text(
                value=", ".join(node.get("inputs") or []), description="Inputs", placeholder="previous node"
            ),
            "dlt-node-inputs",
        )
        inputs.observe(lambda c: self._do(self.builder.connect, name, _names(c["new"])), "value")
        rows: list[w.Widget] = [rename, op, inputs]
        try:
            attributes = op_attributes(node["op"])
        except KeyError:
            attributes = []
        rows += [self._attr_row(node, a) for a in attributes]
        return rows

    def _attr_row(self, node: dict, attr: Attribute) -> w.Widget:
        name, value = node["name"], node.get(attr.name, attr.default)
        control = _control(attr, value)
        control.observe(lambda c: self._set_attr(name, attr, c["new"]), "value")
        space = self.builder.tunable().get(f"graph.nodes.{name}.{attr.name}")
        tune = labelled(w.Checkbox(value=space is not None, description="tune", indent=False), "dlt-tune")
        domain = labelled(
            w.Text(
                value=yaml.safe_dump(space, default_flow_style=True).strip() if space else "",
                placeholder="{choice: [32, 64]}",
                layout=w.Layout(width="200px"),
            ),
            "dlt-tune-range",
        )

        def on_tune(_change: Any) -> None:
            if not tune.value:
                self._do(self.builder.unmark_tunable, name, attr.name)
                return
            ranged = _range(domain.value, value)
            self._do(self.builder.mark_tunable, name, attr.name, *ranged)

        tune.observe(on_tune, "value")
        domain.observe(lambda _c: on_tune(None) if tune.value else None, "value")
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


def _control(attr: Attribute, value: Any) -> w.Widget:
    label = attr.name + (" *" if attr.required else "")
    factory = _CONTROLS.get(attr.kind)
    if factory is None or value is None or (attr.kind != "str" and isinstance(value, str)):
        shown = (
            ""
            if value is None
            else yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...")
        )
        control = w.Text(value=shown.strip(), description=label, continuous_update=False)
    elif factory is w.Text:
        control = w.Text(value=value, description=label, continuous_update=False)
    else:
        control = factory(value=value, description=label)
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
