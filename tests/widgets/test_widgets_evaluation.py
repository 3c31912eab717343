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
