"""Notebook reprs and panel HTML escape user data: a spec name or config value never becomes markup."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from dltoolkit.api import run
from dltoolkit.bundle import load
from dltoolkit.spec import Spec
from dltoolkit.tune.sweep import Sweep, plan_for

XSS = "<img src=x onerror=alert(1)>"


@pytest.fixture(scope="module")
def xss_run(tmp_path_factory):
    """A real one-epoch run whose spec name, a category and the output folder name carry markup."""
    rng = np.random.default_rng(0)
    a = rng.normal(size=60)
    frame = pd.DataFrame({"a": a, "kind": rng.choice([XSS, "plain"], size=60), "y": (a > 0).astype(int)})
    spec = {
        "name": XSS,
        "task": {"kind": "binary", "target": "y"},
        "data": {"source": "frame"},
        "graph": {"nodes": [{"name": "hidden", "op": "linear", "units": 4}]},
        "train": {"epochs": 1},
    }
    out = tmp_path_factory.mktemp("runs") / XSS
    return run(spec, frame, out=out, plots=False), frame


def _no_markup(text: str) -> None:
    assert "<img" not in text
    assert "&lt;img src=x onerror=alert(1)&gt;" in text


def test_run_repr_escapes_the_name_and_folder(xss_run):
    text = xss_run[0]._repr_html_()
    _no_markup(text)
    assert "accuracy" in text  # the metric names (the table's index) are shown


def test_bundle_repr_escapes_the_name_and_path(xss_run):
    text = load(xss_run[0].bundle)._repr_html_()
    _no_markup(text)
    assert "accuracy" in text


def test_sweep_repr_escapes_name_and_config_values(tmp_path):
    spec = Spec.from_dict(
        {
            "name": XSS,
            "task": {"kind": "binary", "target": "y"},
            "data": {"source": "frame"},
            "graph": {"nodes": [{"name": "hidden", "op": "linear", "units": 4}]},
            "search": {"space": {"train.optimizer.name": {"choice": ["adam", "sgd"]}}},
        }
    )
    sweep = Sweep(spec, plan_for(spec), None, tmp_path, time.perf_counter())
    config = {"train.optimizer.name": XSS}
    sweep._on_start("t1", config)
    sweep._on_result("t1", config, {"epoch": 1, "val_loss": 0.5, "val_acc": 0.7})
    text = sweep._repr_html_()
    assert "<img" not in text
    assert text.count("&lt;img src=x onerror=alert(1)&gt;") >= 2  # the name and the config value


def test_panel_tables_escape_cells_headers_and_index():
    from dltoolkit.widgets._common import table_html

    frame = pd.DataFrame({XSS: [XSS]}, index=pd.Index([XSS], name=XSS))
    text = table_html(frame, "dlt-table", index=True)
    assert "<img" not in text and text.count("&lt;img") == 4  # header, index name, label, cell


def test_evaluation_panel_escapes_the_run_name(xss_run):
    from dltoolkit.widgets.evaluation import EvalPanel

    result, frame = xss_run
    panel = EvalPanel()
    panel.add(result, frame)  # shown under the run folder's name
    import ipywidgets as w

    def html_in(widget) -> list[str]:  # every HTML the column renders, however deep
        if isinstance(widget, w.HTML):
            return [widget.value]
        return [t for child in getattr(widget, "children", ()) for t in html_in(child)]

    joined = " ".join(t for col in panel.columns.children for t in html_in(col)) + panel.metrics.value
    assert "<img" not in joined and "&lt;img src=x onerror=alert(1)&gt;" in joined
    name_field = panel.columns.children[0].children[0].children[0]  # editable: plain text, never HTML
    assert isinstance(name_field, w.Text) and name_field.value == result.out.name
