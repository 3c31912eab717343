import pytest

from dltoolkit.errors import DLToolkitError
from dltoolkit.widgets import EvalController, EvalPanel


def test_run_and_folders_side_by_side(wine_run):
    panel = EvalPanel()
    panel.add(wine_run)
    panel.path.value = str(wine_run.out)
    panel.add_button.click()
    panel.path.value = str(wine_run.out / "model")
    panel.add_button.click()
    c = panel.controller
    assert not panel.message.is_error, panel.message.text
    assert c.names() == ["wine", "wine (2)", "wine (3)"]
    table = c.metrics_table()
    assert list(table.columns) == c.names() and table.loc["accuracy"].nunique() == 1
    assert set(c.figures("wine")) == {"learning_curves", "confusion_matrix", "roc", "precision_recall"}
    per_class = c.per_class("wine")
    assert list(per_class["class"]) == ["0", "1", "2"] and "precision" in per_class
    assert len(panel.columns.children) == 3
    pictures = [x for x in panel.columns.children[0].children if "dlt-eval-plot" in x._dom_classes]
    assert len(pictures) == 4 and all(p.value[:4] == b"\x89PNG" for p in pictures)
    assert "dlt-metrics-table" in panel.metrics.value


def test_regression_plots(regression_run):
    c = EvalController()
    c.add(regression_run)
    assert set(c.figures("diabetes")) == {"learning_curves", "predicted_vs_true", "residuals"}
    assert c.per_class("diabetes") is None


def test_bad_folder_is_a_message(tmp_path):
    panel = EvalPanel()
    panel.path.value = str(tmp_path / "nothing")
    panel.add_button.click()
    assert panel.message.is_error and "No such folder" in panel.message.text
    panel.path.value = str(tmp_path)
    panel.add_button.click()
    assert "Not a model bundle" in panel.message.text
    with pytest.raises(DLToolkitError, match="Cannot evaluate"):
        EvalController().add(42)


def test_runs_are_renamed_compared_and_removed(wine_run, tmp_path):
    from dltoolkit.api import run

    other = run(
        "wine",
        out=tmp_path / "wine-lr",
        overrides={"train.epochs": 2, "train.optimizer.lr": 0.05},
        plots=False,
    )
    panel = EvalPanel()
    panel.add(wine_run)
    panel.add(other)
    c = panel.controller
    names = [col.children[0].children[0] for col in panel.columns.children]  # each run's name field
    names[0].value = "baseline"  # what the browser sends on Enter
    assert c.names() == ["baseline", "wine-lr"] and not panel.message.is_error
    assert "baseline" in panel.metrics.value
    diff = c.diff("baseline", "wine-lr").set_index("setting")
    assert list(diff.index) == ["train.optimizer.lr"] and diff.loc["train.optimizer.lr", "wine-lr"] == "0.05"
    assert panel.diff_a.value == "baseline" and panel.diff_b.value == "wine-lr"
    assert "dlt-diff-table" in panel.diff.value and "train.optimizer.lr" in panel.diff.value
    names[1].value = "baseline"  # taken: a message, the name stays
    assert (
        panel.message.is_error and "Cannot use this name" in panel.message.text and c.names()[1] == "wine-lr"
    )
    remove = panel.columns.children[0].children[0].children[1]
    remove.click()
    assert c.names() == ["wine-lr"] and len(panel.columns.children) == 1 and panel.diff.value == ""


def test_data_panel_names_the_spec_after_the_data(wine_state, tmp_path):
    import pandas as pd

    from dltoolkit.widgets import DataController

    path = tmp_path / "houses.csv"
    pd.DataFrame({"size": [1.0, 2.0, 3.0, 4.0], "price": [1.0, 2.0, 3.0, 5.0]}).to_csv(path, index=False)
    DataController(wine_state).load("csv", str(path))
    assert wine_state.spec.name == "houses"  # runs of this data are no longer called "wine"


def test_explain_button_shows_importance_and_a_chosen_row(wine_run):
    panel = EvalPanel()
    panel.add(wine_run)
    column = panel.columns.children[0]
    button = next(x for x in column.children if "dlt-eval-explain-button" in x._dom_classes)
    box = next(x for x in column.children if "dlt-eval-explain" in x._dom_classes)
    button.click()
    assert not panel.message.is_error, panel.message.text
    explanation = panel.controller.get("wine").explanation
    assert (
        explanation.kind == "tabular" and explanation.importance.index[0] in wine_run.predictor.input_columns
    )
    pictures = [x for x in box.children if "dlt-eval-explain-plot" in x._dom_classes]
    assert [p.value[:4] for p in pictures] == [b"\x89PNG"] * 2  # importance, then the chosen row
    row = next(x for x in box.children if "dlt-eval-explain-row" in x._dom_classes)
    assert [value for _, value in row.options] == [0, 1, 2]
    before = pictures[1].value
    row.value = 2  # another test row: its own attributions
    assert pictures[1].value != before
