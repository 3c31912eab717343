"""Displays draw what they computed, into a new figure or a given ax, with no pyplot state."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from dltoolkit.errors import DataError
from dltoolkit.evaluate import (
    ConfusionMatrixDisplay,
    LearningCurveDisplay,
    PrecisionRecallDisplay,
    PredictedVsTrueDisplay,
    ResidualsDisplay,
    RocCurveDisplay,
    save_plots,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def no_pyplot_figures():
    """Every test here must leave pyplot's figure list as it found it."""
    before = len(plt.get_fignums())
    yield
    assert len(plt.get_fignums()) == before


def _display(name, make_classification, make_regression, history):
    y, proba = make_classification("multiclass")
    yr, pred = make_regression()
    return {
        "learning": lambda: LearningCurveDisplay.from_history(history),
        "confusion": lambda: ConfusionMatrixDisplay.from_predictions(y, proba.argmax(1), ["a", "b", "c"]),
        "roc": lambda: RocCurveDisplay.from_predictions(y, proba, ["a", "b", "c"]),
        "pr": lambda: PrecisionRecallDisplay.from_predictions(y, proba, ["a", "b", "c"]),
        "pred_vs_true": lambda: PredictedVsTrueDisplay.from_predictions(yr, pred),
        "residuals": lambda: ResidualsDisplay.from_predictions(yr, pred),
    }[name]()


NAMES = ["learning", "confusion", "roc", "pr", "pred_vs_true", "residuals"]


@pytest.mark.parametrize("name", NAMES, ids=NAMES)
def test_plot_into_given_ax(name, make_classification, make_regression, history):
    fig = Figure()
    ax = fig.add_subplot()
    out = _display(name, make_classification, make_regression, history).plot(ax=ax)
    assert out is fig
    assert ax.lines or ax.images or ax.collections


def test_learning_curves(history):
    display = LearningCurveDisplay.from_history(history)
    assert list(display.losses) == ["train_loss", "val_loss"]
    assert list(display.metrics) == ["train_acc", "val_acc"]  # lr and epoch are not metrics
    assert len(display.metrics["val_acc"][0]) == 4  # the NaN epoch is dropped
    fig = display.plot()
    assert isinstance(fig, Figure) and [len(ax.lines) for ax in fig.axes] == [2, 2]
    assert fig.axes[0].get_shared_x_axes().joined(fig.axes[0], fig.axes[1])


def test_learning_curves_accept_missing_columns():
    fig = LearningCurveDisplay.from_history(pd.DataFrame({"train_loss": [1.0, 0.5]})).plot()
    assert len(fig.axes) == 1 and len(fig.axes[0].lines) == 1
    assert LearningCurveDisplay.from_history(pd.DataFrame()).plot() is not None


def test_learning_curves_into_two_axes(history):
    fig = Figure()
    axes = fig.subplots(1, 2)
    LearningCurveDisplay.from_history(history).plot(ax=axes)
    assert [len(ax.lines) for ax in axes] == [2, 2]


def test_learning_curves_reject_non_frame():
    with pytest.raises(DataError, match="history is not a DataFrame: received 'dict'"):
        LearningCurveDisplay.from_history({"epoch": [0]})


@pytest.mark.parametrize("normalize", [None, "true"], ids=["counts", "normalised"])
def test_confusion_matrix(make_classification, normalize):
    y, proba = make_classification("multiclass")
    display = ConfusionMatrixDisplay.from_predictions(y, proba, ["a", "b", "c"], normalize=normalize)
    fig = display.plot()
    assert len(fig.axes[0].images) == 1 and len(fig.axes) == 2  # matrix and colorbar
    assert display.confusion_matrix.shape == (3, 3)
    if normalize == "true":
        assert np.allclose(display.confusion_matrix.sum(axis=1), 1.0)
    else:
        assert display.confusion_matrix.sum() == len(y)


def test_confusion_matrix_rejects_bad_options():
    with pytest.raises(DataError, match="Unknown normalize option: received 'rows'"):
        ConfusionMatrixDisplay.from_predictions([0, 1], [0, 1], normalize="rows")
    with pytest.raises(DataError, match="y_pred has class indices outside the 2 classes"):
        ConfusionMatrixDisplay.from_predictions([0, 1], [0, 2], ["a", "b"])


CURVES = [RocCurveDisplay, PrecisionRecallDisplay]


@pytest.mark.parametrize("cls", CURVES, ids=["roc", "pr"])
def test_multiclass_curves(cls, make_classification):
    y, proba = make_classification("multiclass")
    display = cls.from_predictions(y, proba, ["a", "b", "c"])
    assert list(display.curves) == ["a", "b", "c"]
    assert display.macro == pytest.approx(np.mean(list(display.scores.values())))
    ax = display.plot().axes[0]
    assert len(ax.lines) >= 3
    assert "macro" in ax.get_legend().get_title().get_text()


@pytest.mark.parametrize("cls", CURVES, ids=["roc", "pr"])
def test_binary_curves(cls, make_classification):
    y, proba = make_classification("binary")
    display = cls.from_predictions(y, proba, ["neg", "pos"])
    assert list(display.curves) == ["pos"]
    assert len(display.plot().axes[0].lines) >= 1


def test_roc_macro_matches_sklearn(make_classification):
    from sklearn.metrics import roc_auc_score

    y, proba = make_classification("multiclass")
    display = RocCurveDisplay.from_predictions(y, proba)
    assert display.macro == pytest.approx(roc_auc_score(y, proba, multi_class="ovr"))


def test_regression_displays(make_regression):
    y, pred = make_regression()
    ax = PredictedVsTrueDisplay.from_predictions(y, pred).plot().axes[0]
    assert len(ax.lines) == 1 and len(ax.collections) == 1  # y = x line and the points
    fig = ResidualsDisplay.from_predictions(y, pred).plot()
    assert len(fig.axes) == 2 and len(fig.axes[1].patches) > 0
    assert np.allclose(ResidualsDisplay.from_predictions(y, pred).residuals, y - pred)


def test_residuals_into_one_ax_adds_inset(make_regression):
    fig = Figure()
    ax = fig.add_subplot()
    ResidualsDisplay.from_predictions(*make_regression()).plot(ax=ax)
    assert len(ax.collections) == 1 and len(ax.child_axes) == 1


def test_plot_rejects_non_axes(make_regression):
    with pytest.raises(DataError, match="plot\\(ax=...\\) got an unusable value"):
        PredictedVsTrueDisplay.from_predictions(*make_regression()).plot(ax="left")


EXPECTED = {
    "binary": {"learning_curves", "confusion_matrix", "roc", "precision_recall"},
    "multiclass": {"learning_curves", "confusion_matrix", "roc", "precision_recall"},
    "regression": {"learning_curves", "predicted_vs_true", "residuals"},
}


@pytest.mark.parametrize("kind", EXPECTED, ids=list(EXPECTED))
def test_save_plots_writes_pngs(kind, tmp_path, make_classification, make_regression, history):
    y, output = make_regression() if kind == "regression" else make_classification(kind)
    paths = save_plots(tmp_path / "plots", kind, history, y, output)
    assert set(paths) == EXPECTED[kind]
    for name, path in paths.items():
        assert path == tmp_path / "plots" / f"{name}.png"
        data = path.read_bytes()
        assert data.startswith(PNG_SIGNATURE) and len(data) > 1024
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == sorted(f"{n}.png" for n in paths)


def test_save_plots_without_history(tmp_path, make_regression):
    assert set(save_plots(tmp_path, "regression", None, *make_regression())) == {
        "predicted_vs_true",
        "residuals",
    }


def test_save_plots_validates_before_writing(tmp_path):
    with pytest.raises(DataError, match="Unknown task kind"):
        save_plots(tmp_path / "plots", "ranking", None, [1.0], [1.0])
    assert not (tmp_path / "plots").exists()


def test_errors_in_target_units_get_their_own_axis():
    history = pd.DataFrame(
        {
            "epoch": [1, 2],
            "val_loss": [0.5, 0.4],
            "val_r2": [0.3, 0.5],
            "val_mae": [52.0, 44.0],
            "val_rmse": [60.0, 50.0],
        }
    )
    display = LearningCurveDisplay.from_history(history)
    assert list(display.metrics) == ["val_r2"] and list(display.errors) == ["val_mae", "val_rmse"]
    fig = display.plot()
    assert [len(ax.lines) for ax in fig.axes] == [1, 1, 2]
    assert fig.axes[2].get_ylabel() == "error (target units)"
