"""The trial table, best by best-reported (not last) metric, top-k and the plots (no Ray)."""

from __future__ import annotations

import pytest
from matplotlib.figure import Figure

from dltoolkit.errors import UnknownNameError
from dltoolkit.tune.results import (
    TrialRecord,
    curves_figure,
    importance,
    importance_figure,
    parallel_figure,
    ranked,
    trial_table,
)
from dltoolkit.tune.space import parse_space

SPACE = parse_space({"lr": {"loguniform": [0.001, 0.1]}, "units": {"choice": [8, 16, 32]}})


@pytest.fixture
def records() -> list[TrialRecord]:
    def rows(*accs):
        return [{"epoch": i + 1, "val_acc": a, "val_loss": 1 - a} for i, a in enumerate(accs)]

    return [
        TrialRecord("a", {"lr": 0.1, "units": 8}, "TERMINATED", rows=rows(0.5, 0.9, 0.6), seconds=1.0),
        TrialRecord("b", {"lr": 0.01, "units": 16}, "TERMINATED", rows=rows(0.7, 0.8, 0.85)),
        TrialRecord(
            "c", {"lr": 0.001, "units": 32}, "ERROR", error="TrainingError: loss nan", rows=rows(0.3)
        ),
        TrialRecord("d", {"lr": 0.05, "units": 8}, "ERROR", error="boom"),
    ]


def test_best_is_chosen_by_best_reported_value_not_last(records):
    order = ranked(records, "val_acc", "max")
    assert [r.trial_id for r in order] == ["a", "b", "c"]  # a's last (0.6) is below b's, its best is not
    assert ranked(records, "val_loss", "min")[0].trial_id == "a"


def test_trial_table_has_config_best_last_epochs_status_error(records):
    table = trial_table(records, "val_acc", "max").set_index("trial_id")
    assert table.loc["a", ["best_val_acc", "last_val_acc", "best_epoch", "epochs"]].tolist() == [
        0.9,
        0.6,
        2,
        3,
    ]
    assert table.loc["c", "status"] == "ERROR" and "nan" in table.loc["c", "error"]
    assert table.loc["d", "epochs"] == 0 and table.loc["d", "units"] == 8


def test_plots_are_figures(records):
    table = trial_table(records, "val_acc", "max")
    figures = [
        curves_figure(records, "val_acc"),
        parallel_figure(table, ["lr", "units"], "val_acc", {"lr"}),
        importance_figure(table, SPACE, "val_acc", "max"),
    ]
    assert all(isinstance(f, Figure) and f.axes for f in figures)
    assert len(figures[0].axes[0].lines) == 3  # the trial without results draws nothing


@pytest.mark.parametrize("evaluator", ["ped_anova", "fanova"])
def test_importance_ranks_the_parameter_that_drives_the_metric(evaluator):
    """Optuna's evaluator over a study built from the trial table: the metric follows lr only."""
    space = parse_space(
        {"lr": {"loguniform": [1e-4, 0.1]}, "noise": {"choice": [0, 1, 2, 3, 4]}, "drop": {"uniform": [0, 1]}}
    )
    recs = [
        TrialRecord(
            str(i),
            {"lr": 10.0 ** -(i % 4 + 1), "noise": (i * 7) % 5, "drop": ((i * 5) % 12) / 12},
            "TERMINATED",
            rows=[{"epoch": 1, "val_loss": 1.0 - 0.2 * (i % 4)}],
        )
        for i in range(16)
    ]
    scores = importance(trial_table(recs, "val_loss", "min"), space, "val_loss", "min", evaluator)
    assert list(scores.index)[-1] == "lr", scores  # sorted ascending: the last bar is the largest
    assert scores["lr"] > 0.5 and scores.sum() == pytest.approx(1.0)
    with pytest.raises(UnknownNameError, match="Did you mean 'fanova'"):
        importance(trial_table(recs, "val_loss", "min"), space, "val_loss", "min", "fanva")


def test_importance_with_too_few_trials_says_so_and_parallel_axes_carry_units(records):
    table = trial_table(records[:2], "val_acc", "max")  # two trials with a val_acc
    figure = importance_figure(table, SPACE, "val_acc", "max")
    assert importance(table, SPACE, "val_acc", "max").tolist() == [0.0, 0.0]
    texts = [t.get_text() for t in figure.axes[0].texts]
    assert any("needs more trials" in t and "2 so far" in t for t in texts), texts
    assert not figure.axes[0].patches  # no empty bars
    parallel = parallel_figure(table, ["lr", "units"], "val_acc", {"lr"})
    ends = [t.get_text() for t in parallel.axes[0].texts]
    lrs = table.loc[table["best_val_acc"].notna(), "lr"]
    assert f"{lrs.min():.3g}" in ends and f"{lrs.max():.3g}" in ends  # real units, not log10
    assert len(parallel.axes) == 2 and parallel.axes[1].get_ylabel() == "best_val_acc"  # the colour scale
