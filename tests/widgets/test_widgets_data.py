import numpy as np
import pandas as pd
import pytest

from dltoolkit.errors import DataError
from dltoolkit.widgets import DataController, DataPanel
from dltoolkit.widgets.data_panel import suggest_kind


@pytest.mark.parametrize(
    ("values", "kind"),
    [
        (["a", "b", "a"], "binary"),
        ([0, 1, 2, 3, 1], "multiclass"),
        ([0.5, 1.25, 3.0, 2.2], "regression"),
        (list(range(100)), "regression"),
        ([True, False, True], "binary"),
    ],
    ids=["text-2", "ints-4", "floats", "many-ints", "bools"],
)
def test_suggest_kind(values, kind):
    assert suggest_kind(pd.Series(values)) == kind


@pytest.fixture
def frame():
    rng = np.random.default_rng(0)
    df = pd.DataFrame(
        {
            "size": rng.normal(size=60),
            "color": rng.choice(["red", "blue"], 60),
            "price": rng.normal(10, 2, 60),
            "label": rng.choice(["yes", "no"], 60),
        }
    )
    df.loc[[1, 5, 9], "size"] = np.nan
    return df


def test_dataframe_from_namespace_sets_source_target_and_kind(wine_state, frame):
    panel = DataPanel(DataController(wine_state, namespace={"houses": frame}))
    panel.kind.value, panel.path.value = "dataframe", "houses"
    panel.load_button.click()
    spec = wine_state.spec
    assert spec.data.source == "frame" and wine_state.data is frame
    assert (spec.task.target, spec.task.kind) == ("label", "binary")  # named like a target, suggested kind
    assert panel.controller.guessed is None and "Pick the right one" not in panel.message.text
    panel.target.value = "price"
    assert (wine_state.spec.task.target, wine_state.spec.task.kind) == ("price", "regression")
    columns = panel.controller.column_table().set_index("column")
    assert columns.loc["size", "missing"] == 3 and columns.loc["color", "kind"] == "categorical"
    assert columns.loc["price", "kind"] == "target"
    assert "dlt-columns-table" in panel.columns.value and "dlt-preview-table" in panel.preview.value
    assert panel.preview.value.count("(missing)") == 3  # rows 1, 5 and 9 of the 20 previewed lack a size


def test_unknown_column_shows_a_message_not_a_traceback(wine_state):
    panel = DataPanel(DataController(wine_state))
    panel.target.value = "alcohl"
    assert panel.message.is_error and "Did you mean 'alcohol'?" in panel.message.text
    assert wine_state.spec.task.target == "target"


def test_unknown_dataframe_and_missing_csv(wine_state, frame, tmp_path):
    panel = DataPanel(DataController(wine_state, namespace={"houses": frame}))
    panel.kind.value, panel.path.value = "dataframe", "house"
    panel.load_button.click()
    assert "Did you mean 'houses'?" in panel.message.text
    panel.kind.value, panel.path.value = "csv", str(tmp_path / "missing.csv")
    panel.load_button.click()
    assert "CSV file not found" in panel.message.text


def test_csv_per_column_preprocessing_split_and_balance(wine_state, frame, tmp_path):
    path = tmp_path / "houses.csv"
    frame.to_csv(path, index=False)
    panel = DataPanel(DataController(wine_state))
    panel.kind.value, panel.path.value = "csv", str(path)
    panel.load_button.click()
    assert wine_state.spec.data.source == str(path) and "Loaded 60 rows" in panel.message.text
    panel.column.value, panel.impute.value, panel.scale.value = "size", "median", "minmax"
    panel.column_button.click()
    assert wine_state.spec.preprocess.columns["size"].impute == "median"
    assert panel.message.text == "Column 'size' now uses scale minmax, impute median."
    panel.test.value = 0.3
    assert wine_state.spec.data.split.test == 0.3
    panel.val.value = -0.1
    assert panel.message.is_error and "data.split.val" in panel.message.text
    balance = panel.controller.class_balance()
    assert balance["rows"].sum() == 60 and "dlt-balance-table" in panel.balance.value


def test_bundled_dataset_switch(wine_state):
    panel = DataPanel(DataController(wine_state))
    panel.kind.value, panel.dataset.value = "dataset", "diabetes"
    panel.load_button.click()
    assert wine_state.spec.data.source == "diabetes" and wine_state.spec.task.kind == "regression"
    assert panel.balance.value == "(regression)"
    with pytest.raises(DataError, match="Unknown column"):
        panel.controller.set_column("nope", scale="none")


def test_a_target_is_guessed_by_name_else_the_user_is_asked(wine_state, frame):
    from dltoolkit.widgets.data_panel import guess_target

    assert guess_target(frame) == ("label", True)
    assert guess_target(frame[["label", "size", "price"]]) == ("label", True)  # not the last column
    assert guess_target(frame.rename(columns={"label": "Species"})) == ("Species", True)
    assert guess_target(frame.rename(columns={"label": "house_class"})) == ("house_class", True)
    unnamed = frame.rename(columns={"label": "sold"})[["sold", "size", "color", "price"]]
    assert guess_target(unnamed) == ("price", False)
    panel = DataPanel(DataController(wine_state, namespace={"houses": unnamed}))
    panel.kind.value, panel.path.value = "dataframe", "houses"
    panel.load_button.click()
    assert wine_state.spec.task.target == "price" and panel.controller.guessed == "price"
    assert (
        "No column is named like a target" in panel.message.text
        and "Pick the right one" in panel.message.text
    )


def test_an_image_folder_is_previewed_as_thumbnails_per_class(tmp_path):
    from dltoolkit.data.images.samples import write_digits_folder
    from dltoolkit.recipes import load_recipe
    from dltoolkit.widgets import SpecState

    root = write_digits_folder(tmp_path / "digits", per_class=3, sizes=(8,))
    (root / "3").rename(root / "<i>three")  # a folder name is user data: shown escaped
    state = SpecState(load_recipe("digits-cnn"))
    panel = DataPanel(DataController(state))
    panel.kind.value, panel.path.value = "images", str(root)
    panel.load_button.click()
    assert not panel.message.is_error and "Found 30 images" in panel.message.text
    spec = state.spec
    assert spec.data.source == str(root) and spec.preprocess.shape is None  # digits-cnn's [1, 8, 8] dropped
    assert (spec.task.target, spec.task.kind) == ("target", "multiclass")
    preview = panel.preview.value
    assert preview.count("(3 images)") == 10 and preview.count("<img") == 30 + 3  # thumbnails, model inputs
    assert "&lt;i&gt;three" in preview and "<i>three" not in preview
    assert "No per-image augmentation" in preview
    state.update({"preprocess.augment.rotation": 15})
    panel.refresh()
    assert panel.preview.value.count("<img") == 30 + 3 * 5  # each shown image and 4 augmented draws
    summary = panel.controller.image_summary().set_index("")["value"]
    assert summary["classes"] == "10" and summary["model input"] == "3 x 32 x 32"
    assert panel.controller.class_balance()["rows"].tolist() == [3] * 10
