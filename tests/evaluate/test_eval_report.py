"""write_report: every metric, every plot, the history and the escaped spec in one HTML page."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dltoolkit.evaluate import evaluate, save_plots, write_report
from dltoolkit.evaluate.report import HISTORY_ROWS

SPEC = "task:\n  kind: multiclass\n# <script>alert('x')</script> & more\n"


@pytest.fixture
def run(tmp_path, make_classification, history):
    y, proba = make_classification("multiclass")
    names = ["cat", "dog", "<bird>"]
    metrics = evaluate("multiclass", y, proba, names)
    plots = save_plots(tmp_path / "plots", "multiclass", history, y, proba, names)
    return tmp_path, metrics, plots


def _write(run, history, **kw):
    out_dir, metrics, plots = run
    path = write_report(
        out_dir, title="Iris <run>", spec_yaml=SPEC, metrics=metrics, history=history, plots=plots, **kw
    )
    assert path == out_dir / "report.html"
    return path.read_text()


def test_report_has_metrics_plots_and_history(run, history):
    page = _write(run, history, extra={"best_epoch": 3})
    for name in ("accuracy", "precision", "recall", "f1", "roc_auc", "n", "support", "best_epoch"):
        assert f"<td>{name}</td>" in page or f"<th>{name}</th>" in page
    for name in run[2]:
        assert f'<img src="plots/{name}.png"' in page
    assert "<th>train_loss</th>" in page and "Per class" in page and "Confusion matrix" in page
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")


def test_report_escapes_text(run, history):
    page = _write(run, history)
    assert "<script>" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; more" in page
    assert "Iris &lt;run&gt;" in page and "&lt;bird&gt;" in page


def test_report_shows_last_rows_of_long_history(run):
    history = pd.DataFrame({"epoch": range(100), "train_loss": np.linspace(1, 0, 100)})
    page = _write(run, history)
    assert f"Last {HISTORY_ROWS} of 100 rows" in page
    section = page.split("Training history")[1].split("<h2>")[0]
    assert "<tr><td>99</td>" in section and "<tr><td>70</td>" in section and "<tr><td>69</td>" not in section


def test_report_for_regression_without_history(tmp_path, make_regression):
    y, pred = make_regression()
    metrics = evaluate("regression", y, pred)
    page = write_report(
        tmp_path / "run",
        title="r",
        spec_yaml="",
        metrics=metrics,
        history=None,
        plots={"residuals": "plots/residuals.png"},
    ).read_text()
    for name in ("mse", "rmse", "mae", "r2", "n"):
        assert f"<td>{name}</td>" in page
    assert '<img src="plots/residuals.png"' in page and "Training history" not in page
