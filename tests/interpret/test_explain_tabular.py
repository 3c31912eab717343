"""Tabular explanations on a real bundle whose answer is planted: permutation importance finds it,
Integrated Gradients is complete, a categorical column counts once, bad requests say what is wrong."""

from __future__ import annotations

import numpy as np
import pytest

from dltoolkit.bundle import load
from dltoolkit.errors import DataError, UnknownNameError
from dltoolkit.interpret import ExplainError, explain
from dltoolkit.interpret._inputs import forward_of, load_rows

COLUMNS = ["x0", "x1", "x2", "x3", "x4", "colour"]


@pytest.fixture(scope="module")
def explained(planted):
    bundle, frame = planted
    return explain(bundle, frame, rows=3, repeats=5)


def test_permutation_importance_ranks_the_planted_feature_first(explained):
    table = explained.importance
    assert list(table.index[:2]) == ["x0", "colour"], table  # x0 drives y; colour (red or not) less
    x0 = table.loc["x0"]
    assert x0["importance"] - 2 * x0["std"] > table.drop(index="x0")["importance"].max()
    assert list(table.columns) == ["importance", "std", *(f"repeat_{i}" for i in range(1, 6))]
    repeats = table.filter(like="repeat_").to_numpy()
    np.testing.assert_allclose(table["std"], repeats.std(axis=1))  # the spread over the repeats
    assert explained.scoring == "accuracy"


def test_a_categorical_column_is_permuted_as_one(explained, planted):
    """One score per original column: the 3-wide one-hot block of colour is shuffled (and attributed) whole."""
    model = load(planted[0])
    assert len(model.preprocessor.output_names_) == 8  # 5 numbers + 3 one-hot columns
    assert sorted(explained.importance.index) == sorted(COLUMNS)
    assert explained.importance.loc["colour", "importance"] > 0.02  # whole rows' categories shuffled
    for row in explained.rows:
        assert row.labels == COLUMNS and row.attributions["integrated_gradients"].shape == (6,)


def test_integrated_gradients_is_complete(explained, planted):
    """Attributions sum to the model's output minus its output at the baseline (Captum's delta is small)."""
    bundle, frame = planted
    model = load(bundle)
    rows = load_rows(model, frame)
    base = forward_of(model)(rows.baseline).detach().numpy()[0]
    for row in explained.rows:
        proba = model.predict_proba(rows.raw.iloc[[row.row]])[0]
        k = int(proba.argmax())
        assert row.predicted == model.classes[k] and row.target == f"p({model.classes[k]})"
        assert row.output == pytest.approx(proba[k], abs=1e-6)  # the model's own probability
        assert row.baseline_output == pytest.approx(base[k], abs=1e-6)
        values = row.attributions["integrated_gradients"]
        assert abs(row.output - row.baseline_output) > 0.05  # something to explain
        assert values.sum() == pytest.approx(row.output - row.baseline_output, abs=5e-3)
        assert row.delta["integrated_gradients"] < 5e-3
        assert row.labels[int(np.abs(values).argmax())] in ("x0", "colour")  # the planted causes


def test_kernel_shap_gives_one_value_per_original_column(planted):
    bundle, frame = planted
    row = explain(bundle, frame, rows=np.array([4]), methods=["kernel_shap"], repeats=1).rows[0]
    values = row.attributions["kernel_shap"]
    assert row.row == 4 and values.shape == (6,)
    assert values.sum() == pytest.approx(row.output - row.baseline_output, abs=0.02)


def test_row_plot_shows_the_top_features_of_the_chosen_row(explained):
    fig = explained.plot_row(1, top=3)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    values = explained.rows[1].attributions["integrated_gradients"]
    top = [COLUMNS[i] for i in np.argsort(-np.abs(values))[:3]]
    assert [label.split(" = ")[0] for label in labels[::-1]] == top  # largest on top, with its value
    assert f"Test row {explained.rows[1].row}" in ax.get_title()
    assert set(explained.figures()) == {"permutation_importance", "attributions_row0", "attributions_row1",
                                        "attributions_row2"}  # fmt: skip


def test_bad_requests_say_what_is_wrong(planted):
    bundle, frame = planted
    with pytest.raises(
        ExplainError, match=r"Grad-CAM does not fit this model.*tabular.*Use one of \['integrated"
    ):
        explain(bundle, frame, methods=["gradcam"])
    with pytest.raises(UnknownNameError, match="Did you mean 'integrated_gradients'"):
        explain(bundle, frame, methods=["integrated_gradient"])
    with pytest.raises(DataError, match=r"does not fit the bundle 'planted'.*missing.*'x3'"):
        explain(bundle, frame.drop(columns="x3"))
    relabelled = frame.assign(y=frame["y"].str.upper())  # two classes, not the model's two
    with pytest.raises(
        DataError,
        match=r"does not fit the bundle 'planted': its test labels are not the model's classes \['no', 'yes'\]",
    ):
        explain(bundle, relabelled)
    with pytest.raises(ExplainError, match="Cannot pick these test rows"):
        explain(bundle, frame, rows=[10_000])
    from dltoolkit.deploy import Ensemble

    with pytest.raises(ExplainError, match="Cannot explain this: received 'Ensemble'.*members"):
        explain(Ensemble([bundle, bundle]), frame)
