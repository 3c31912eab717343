import pytest

from dltoolkit.widgets import GraphBuilder, GraphPanel
from dltoolkit.widgets.graph_builder import op_attributes


def _params(panel: GraphPanel) -> int:
    return int(panel.builder.summary().iloc[-1]["params"])


def test_attributes_come_from_the_layer_signature():
    attrs = {a.name: a for a in op_attributes("conv2d")}
    assert attrs["channels"].required and attrs["channels"].kind == "int"
    assert attrs["kernel_size"].default == 3 and attrs["padding"].kind == "yaml"
    assert op_attributes("relu") == []


def test_width_edit_updates_spec_table_total_and_picture(digits_state):
    panel = GraphPanel(GraphBuilder(digits_state))
    panel.select("hidden")
    before, picture = _params(panel), panel.picture.value
    panel.attr_control("units").value = 16
    assert digits_state.spec.graph.nodes[0].units == 16
    assert _params(panel) == 64 * 16 + 16 + 16 * 10 + 10 < before
    assert "1,210" in panel.total.value and panel.picture.value != picture
    assert "dlt-summary-table" in panel.summary.value


def test_broken_edit_keeps_last_valid_spec_and_undo(digits_state):
    panel = GraphPanel(GraphBuilder(digits_state))
    panel.new_op.value = "conv2d"
    panel.add_button.click()  # a conv on flat (64,) features does not fit
    valid = digits_state.spec
    assert [n.name for n in valid.graph.nodes] == ["hidden", "act", "drop"]
    assert panel.builder.error_node == "conv2d_1" and "does not fit" in panel.builder.error
    row = next(r for r in panel.node_list.children if "dlt-node-conv2d_1" in r._dom_classes)
    assert "dlt-node-error" in row.children[-1].value  # the error sits next to the node
    assert panel.message.is_error and "Traceback" not in panel.message.text
    panel.undo_button.click()
    assert [n["name"] for n in panel.builder.nodes] == [
        "hidden",
        "act",
        "drop",
    ] and not panel.message.is_error
    assert digits_state.spec is valid


def test_add_remove_reorder_connect(digits_state):
    b = GraphBuilder(digits_state)
    assert b.add_node("linear", name="extra", after="act", units=8)
    assert [n.name for n in digits_state.spec.graph.nodes] == ["hidden", "act", "extra", "drop"]
    assert b.move_node("extra", 1)
    assert [n.name for n in digits_state.spec.graph.nodes][-1] == "extra"
    assert b.add_node("linear", name="side", units=8)
    assert b.connect("side", ["act"])  # a branch from act: unused 'extra' is fine
    assert digits_state.spec.graph.nodes[-1].inputs == ["act"]
    assert b.remove_node("side") and b.remove_node("extra")
    assert b.set_op("drop", "gelu") and digits_state.spec.graph.nodes[-1].op == "gelu"
    assert "p" not in digits_state.spec.graph.nodes[-1].attrs
    assert not b.connect("hidden", ["nowhere"]) and "nowhere" in b.error
    b.undo()
    assert b.rename("hidden", "wide") and digits_state.spec.graph.nodes[0].name == "wide"


def test_renaming_a_node_carries_its_tunable_entries(digits_state):
    b = GraphBuilder(digits_state)
    assert b.mark_tunable("hidden", "units", "choice", [16, 32])
    assert b.mark_tunable("drop", "p", "uniform", [0.0, 0.5])
    # typed letter by letter in the panel: "" is refused (a draft), then "w", "wi", ...
    assert not b.rename("hidden", "")
    for typed in ("w", "wi", "wide"):
        assert b.rename(b.nodes[0]["name"], typed), b.error
    assert set(b.tunable()) == {"graph.nodes.wide.units", "graph.nodes.drop.p"}
    assert digits_state.spec.search.space["graph.nodes.wide.units"] == {"choice": [16, 32]}
    assert digits_state.spec.graph.nodes[1].inputs in (None, ["wide"])


@pytest.mark.parametrize("template", ["MLP", "CNN", "RNN", "Transformer"])
def test_templates_build_for_digits(digits_state, template):
    b = GraphBuilder(digits_state)
    assert b.apply_template(template), b.error
    assert b.graph.total_params > 0
    shape = digits_state.spec.preprocess.shape
    assert shape == {"MLP": None, "CNN": [1, 8, 8], "RNN": [64, 1], "Transformer": [64, 1]}[template]


def test_cnn_template_refuses_non_square_data(wine_state):
    b = GraphBuilder(wine_state)
    assert not b.apply_template("CNN") and "square" in b.error


def test_tunable_attribute_writes_the_search_space(digits_state):
    panel = GraphPanel(GraphBuilder(digits_state))
    panel.select("drop")
    row = next(r for r in panel.editor.children if "dlt-attr-row-p" in r._dom_classes)
    _control, tune, rng = row.children
    rng.value = "{uniform: [0.0, 0.5]}"
    tune.value = True
    assert digits_state.spec.search.space["graph.nodes.drop.p"] == {"uniform": [0.0, 0.5]}
    row = next(r for r in panel.editor.children if "dlt-attr-row-p" in r._dom_classes)
    row.children[2].value = "{loguniform: [0, 1]}"
    assert panel.message.is_error and "positive low" in panel.message.text
    assert digits_state.spec.search.space["graph.nodes.drop.p"] == {"uniform": [0.0, 0.5]}
    panel.builder.unmark_tunable("drop", "p")
    assert "graph.nodes.drop.p" not in digits_state.spec.search.space
    panel.builder.remove_node("hidden")  # its search entry goes with it
    assert "graph.nodes.hidden.units" not in digits_state.spec.search.space


def test_graph_follows_data_changes_from_other_panels(digits_state):
    b = GraphBuilder(digits_state)
    digits_state.update({"preprocess.shape": [1, 8, 8]})  # the MLP no longer fits a 3-d input
    assert b.graph is None or b.error


def test_editor_text_fields_commit_on_enter_and_stay_in_place(digits_state):
    """Name, Inputs and tune-range fields commit on Enter or blur (not per keystroke), and a commit
    updates the editor in place: the widget the user typed into survives, so it keeps its focus."""
    panel = GraphPanel(GraphBuilder(digits_state))
    panel.select("hidden")
    fields = panel._fields
    text_fields = [
        fields["name"],
        fields["inputs"],
        *(f for row in panel.editor.children[3:] for f in row.children),
    ]
    assert all(not f.continuous_update for f in text_fields if hasattr(f, "continuous_update"))
    editor = list(panel.editor.children)
    fields["name"].value = "wide"  # what the browser sends on Enter
    assert [n.name for n in digits_state.spec.graph.nodes] == ["wide", "act", "drop"]
    assert panel.selected == "wide" and list(panel.editor.children) == editor  # same widgets
    assert fields["name"].value == "wide" and not panel.message.is_error
    panel.select("drop")  # another node with another op: the editor is built for it
    assert panel._fields["name"].value == "drop" and list(panel.editor.children) != editor
    panel._fields["inputs"].value = "wide"
    assert digits_state.spec.graph.nodes[-1].inputs == ["wide"] and panel.selected == "drop"
    panel.select("act")
    panel._fields["name"].value = "drop"  # taken: an error; the live spec keeps the last valid graph
    assert panel.message.is_error and "Duplicate node name" in panel.message.text
    assert [n.name for n in digits_state.spec.graph.nodes] == ["wide", "act", "drop"]
    panel.undo_button.click()
    assert not panel.message.is_error and [n["name"] for n in panel.builder.nodes] == ["wide", "act", "drop"]


def test_a_replaced_editor_commits_to_the_node_it_showed(digits_state):
    """Typed into just before the browser got the next node's editor, a field still acts on the
    node it showed (not on whichever node is selected when its commit arrives)."""
    panel = GraphPanel(GraphBuilder(digits_state))
    panel.select("hidden")
    stale = panel._fields["name"]
    panel.select("drop")  # another op: a new editor replaces the one above
    assert panel._fields["name"] is not stale
    stale.value = "wide"  # its blur commit arrives now
    assert [n.name for n in digits_state.spec.graph.nodes] == ["wide", "act", "drop"]
    assert panel.selected == "drop" and panel._fields["name"].value == "drop"
