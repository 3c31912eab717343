"""The evaluation dashboard: metrics, per-class report and plots of one or more runs side by side.

:class:`EvalController` turns a :class:`dltoolkit.api.Run`, a run folder or a bundle folder into
test-set predictions and metrics, and explains a run on request (:func:`dltoolkit.explain`);
:class:`EvalPanel` shows them, each run's column with an **Explain** button.

Example:
    >>> evaluation = EvalController()
    >>> evaluation.add_path("runs/digits-mlp")          # doctest: +SKIP
    >>> sorted(evaluation.figures(evaluation.names()[0]))  # doctest: +SKIP
    ['confusion_matrix', 'learning_curves', 'precision_recall', 'roc']
"""

from __future__ import annotations

import html
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ipywidgets as w
import numpy as np
import pandas as pd

from dltoolkit._html import esc
from dltoolkit.errors import DLToolkitError, message
from dltoolkit.widgets._common import MessageBox, image, labelled, table_html, wrap
from dltoolkit.widgets._prepared import prepared


@dataclass
class Evaluated:
    """One run's test predictions and metrics, ready to tabulate and draw."""

    name: str
    kind: str
    metrics: dict[str, Any]
    history: pd.DataFrame | None
    y_true: np.ndarray
    output: np.ndarray
    classes: list[str] | None
    spec: dict[str, Any] | None = None  # the run's spec, for a configuration diff
    model: Any = None  # the Predictor, for explain
    data: Any = None  # the data the run was added with (None: the spec's source)
    explanation: Any = None  # the last dltoolkit.explain result for this run


def _predictions(predictor, data: Any) -> tuple[np.ndarray, np.ndarray, list[str] | None]:
    spec = predictor.spec
    d = prepared(spec, data)
    from dltoolkit.data.tables.stream import TableRows

    if isinstance(d.X_test, TableRows):  # a streamed table: raw_test holds its first rows only
        pre = predictor.preprocessor
        output = predictor.output(
            TableRows(d.X_test.files, pre.feature_columns_, d.X_test.rows, d.y_test, pre)
        )
    else:
        output = predictor.output(predictor.transform(d.raw_test))
    if spec.task.is_classification:
        return d.y_test.numpy(), output, predictor.classes
    return d.target.inverse(d.y_test.numpy()), predictor.target.inverse(output), None


def _flat(tree: Any) -> dict[str, str]:
    """A spec as ``{"train.optimizer.lr": "0.003", ...}`` (:func:`dltoolkit.spec.flatten`, values as shown)."""
    from dltoolkit.spec import flatten

    return {k: f"{v:.4g}" if isinstance(v, float) else str(v) for k, v in flatten(tree).items()}


class EvalController:
    """The runs on the dashboard, in the order they were added."""

    def __init__(self) -> None:
        self.runs: list[Evaluated] = []

    def names(self) -> list[str]:
        return [r.name for r in self.runs]

    def add(self, item: Any, data: Any = None, name: str | None = None) -> Evaluated:
        """Add a Run (from ``run()`` or the training panel), a run folder or a bundle folder."""
        if isinstance(item, str | os.PathLike):
            return self.add_path(item, data, name)
        from dltoolkit.api import Run

        if not isinstance(item, Run):
            raise DLToolkitError(
                message("Cannot evaluate this", type(item).__name__, "a Run or a folder path")
            )
        y_true, output, classes = _predictions(item.predictor, data)
        return self._keep(
            Evaluated(
                name or item.out.name,
                item.spec.task.kind,
                item.metrics,
                item.history,
                y_true,
                output,
                classes,
                item.spec.to_dict(),
                item.predictor,
                data,
            )
        )

    def add_path(self, path: str | os.PathLike, data: Any = None, name: str | None = None) -> Evaluated:
        """Add a run folder (with ``model/`` and ``history.csv``) or a model bundle folder."""
        from dltoolkit.bundle import load

        path = Path(path)
        bundle = path / "model" if (path / "model").is_dir() else path
        if not path.exists():
            raise DLToolkitError(
                message("No such folder", str(path), "a run folder or a model bundle folder")
            )
        predictor = load(bundle)
        history_file = bundle.parent / "history.csv"
        history = pd.read_csv(history_file) if history_file.is_file() else None
        y_true, output, classes = _predictions(predictor, data)
        metrics = predictor.metrics or json.loads((bundle / "metrics.json").read_text())
        label = name or (path.name if path.name != "model" else path.parent.name)
        return self._keep(
            Evaluated(
                label,
                predictor.spec.task.kind,
                metrics,
                history,
                y_true,
                output,
                classes,
                predictor.spec.to_dict(),
                predictor,
                data,
            )
        )

    def mlflow_runs(self, uri: str) -> list[tuple[str, str]]:
        """The runs of an MLflow store that logged a model bundle, as (label, run id), newest first."""
        from dltoolkit.track import mlflow_runs

        table = mlflow_runs(uri)
        table = table[table["bundle"] != ""]
        score = next((c for c in ("test_accuracy", "test_r2") if c in table), None)
        return [
            (
                f"{row['name']} ({row['kind'] or 'run'}, {row['experiment']}"
                + (f", {score[5:]} {row[score]:.3f})" if score and pd.notna(row[score]) else ")"),
                row["run_id"],
            )
            for _, row in table.iterrows()
        ]

    def add_mlflow(self, run_id: str, uri: str, data: Any = None, name: str | None = None) -> Evaluated:
        """Add a run tracked in MLflow (a run, or a sweep's best model) by its run id: its model
        bundle and per-epoch history are read back through ``MlflowClient`` (the ``track`` extra)."""
        import shutil
        import tempfile
        import weakref

        from dltoolkit.bundle import load
        from dltoolkit.track import fetch_run

        if getattr(self, "_downloads", None) is None:  # the bundles' copies, removed with the controller
            self._downloads = Path(tempfile.mkdtemp(prefix="dltoolkit-mlflow-"))
            weakref.finalize(self, shutil.rmtree, self._downloads, True)
        fetched = fetch_run(uri, run_id, self._downloads / run_id)
        if fetched.bundle is None:
            raise DLToolkitError(
                message(
                    "This MLflow run logged no model bundle",
                    run_id,
                    "a run or sweep that dltoolkit tracked (it logs the bundle as the model/ artifact)",
                    "Pick one of the runs mlflow_runs() lists.",
                )
            )
        predictor = load(fetched.bundle)
        y_true, output, classes = _predictions(predictor, data)
        metrics = predictor.metrics or json.loads((fetched.bundle / "metrics.json").read_text())
        history = fetched.history if len(fetched.history) else None
        spec = predictor.spec
        return self._keep(
            Evaluated(
                name or fetched.name,
                spec.task.kind,
                metrics,
                history,
                y_true,
                output,
                classes,
                spec.to_dict(),
            )
        )

    def _keep(self, item: Evaluated) -> Evaluated:
        names = self.names()
        base, i = item.name, 2
        while item.name in names:
            item.name, i = f"{base} ({i})", i + 1
        self.runs.append(item)
        return item

    def remove(self, name: str) -> None:
        self.get(name)
        self.runs = [r for r in self.runs if r.name != name]

    def rename(self, name: str, new: str) -> None:
        """Give a run on the dashboard another name (unique, not empty)."""
        run, new = self.get(name), new.strip()
        if not new or (new != name and new in self.names()):
            raise DLToolkitError(
                message(
                    "Cannot use this name",
                    new,
                    "a name not empty and not used by another run",
                    "Pick another.",
                )
            )
        run.name = new

    def diff(self, a: str, b: str) -> pd.DataFrame:
        """The spec settings in which two runs differ: one row per dotted path, a column per run."""
        left, right = (_flat(self.get(n).spec or {}) for n in (a, b))
        rows = [
            {"setting": k, a: left.get(k, "(unset)"), b: right.get(k, "(unset)")}
            for k in sorted(set(left) | set(right))
            if left.get(k) != right.get(k)
        ]
        return pd.DataFrame(rows, columns=["setting", a, b])

    def get(self, name: str) -> Evaluated:
        for r in self.runs:
            if r.name == name:
                return r
        raise DLToolkitError(message("No run of that name on the dashboard", name, f"one of {self.names()}"))

    def metrics_table(self) -> pd.DataFrame:
        """One column per run, one row per scalar metric."""
        from dltoolkit.evaluate import metrics_table

        if not self.runs:
            return pd.DataFrame()
        return pd.concat({r.name: metrics_table(r.metrics)["value"] for r in self.runs}, axis=1)

    def per_class(self, name: str) -> pd.DataFrame | None:
        """Precision, recall, F1 and support per class (None for regression)."""
        per = self.get(name).metrics.get("per_class")
        return pd.DataFrame(per).T.rename_axis("class").reset_index() if per else None

    def explain(self, name: str, **options: Any) -> Any:
        """Explain a run on the dashboard on its test split (``options`` as :func:`dltoolkit.explain`
        takes them); the result is kept with the run."""
        from dltoolkit.interpret import explain

        run = self.get(name)
        run.explanation = explain(run.model, run.data, **options)
        return run.explanation

    def figures(self, name: str) -> dict[str, Any]:
        """The run's plots as matplotlib Figures: learning curves, then the task's standard plots."""
        from dltoolkit.evaluate.plots import displays_for

        r = self.get(name)
        history = r.history if r.history is not None and len(r.history) else None
        return {
            key: d.plot() for key, d in displays_for(r.kind, history, r.y_true, r.output, r.classes).items()
        }


class EvalPanel(w.VBox):
    """Add runs by folder (or from the training panel); see their metrics and plots side by side."""

    def __init__(self, controller: EvalController | None = None) -> None:
        super().__init__()
        self.add_class("dlt-eval-panel")
        self.controller = controller or EvalController()
        self.message = MessageBox()
        self.path = labelled(
            w.Text(description="Run folder", placeholder="runs/<name> or a model/ folder"), "dlt-eval-path"
        )
        self.add_button = labelled(w.Button(description="Add", icon="plus"), "dlt-eval-add")
        self.clear_button = labelled(w.Button(description="Clear"), "dlt-eval-clear")
        self.metrics = labelled(w.HTML(), "dlt-eval-metrics")
        self.columns = labelled(w.HBox(layout=wrap()), "dlt-eval-runs")  # 3+ runs wrap, never squeeze
        self.diff_a = labelled(w.Dropdown(description="Compare", options=[]), "dlt-eval-diff-a")
        self.diff_b = labelled(w.Dropdown(description="with", options=[]), "dlt-eval-diff-b")
        self.diff = labelled(w.HTML(), "dlt-eval-diff")
        self.add_button.on_click(lambda _: self._add_path())
        self.clear_button.on_click(lambda _: self._clear())
        for box in (self.diff_a, self.diff_b):
            box.observe(lambda _c: self._draw_diff(), "value")
        self.compare = w.HBox([self.diff_a, self.diff_b], layout=w.Layout(display="none"))  # 2+ runs
        self.mlflow = MlflowRow(self)
        self.children = [
            w.HBox([self.path, self.add_button, self.clear_button]),
            self.mlflow,
            self.message,
            self.metrics,
            self.compare,
            self.diff,
            self.columns,
        ]

    def add(self, item: Any, data: Any = None) -> None:
        """Add a Run or a folder and redraw (errors are shown in the panel)."""
        self.message.clear()
        try:
            self.controller.add(item, data)
        except (DLToolkitError, ValueError, KeyError, OSError) as e:
            self.message.error(e)
            return
        self.refresh()

    def _add_path(self) -> None:
        text = self.path.value.strip()
        if not text:
            self.message.error(
                "Type the folder of a run (it holds model/ and history.csv) or of a model bundle."
            )
            return
        self.add(text)

    def _clear(self) -> None:
        self.controller.runs = []
        self._drawn: dict[str, Any] = {}
        self.refresh()

    def refresh(self) -> None:
        c = self.controller
        table = c.metrics_table()
        self.metrics.value = (
            ""
            if table.empty
            else "<b>Test metrics</b>" + table_html(table.reset_index(), "dlt-table dlt-metrics-table")
        )
        cache = getattr(self, "_drawn", {})
        self._drawn = {name: cache.get(name) or self._column(name) for name in c.names()}
        self.columns.children = list(self._drawn.values())
        names = c.names()
        pick_b = names[1] if len(names) > 1 else None
        self.diff_a.options, self.diff_b.options = names, names
        self.compare.layout.display = None if len(names) > 1 else "none"
        if len(names) > 1 and self.diff_a.value == self.diff_b.value:
            self.diff_a.value, self.diff_b.value = names[0], pick_b
        self._draw_diff()

    def _draw_diff(self) -> None:
        a, b = self.diff_a.value, self.diff_b.value
        if not a or not b or a == b:
            self.diff.value = ""
            return
        table = self.controller.diff(a, b)
        self.diff.value = (
            f"<i>{html.escape(a)} and {html.escape(b)} have the same settings.</i>"
            if table.empty
            else table_html(table, "dlt-table dlt-diff-table")
        )

    def _rename(self, name: str, new: str) -> None:
        self.message.clear()
        try:
            self.controller.rename(name, new)
        except DLToolkitError as e:
            self.message.error(e)
            return
        self._drawn = {new if k == name else k: v for k, v in self._drawn.items()}
        self.refresh()

    def _remove(self, name: str) -> None:
        self.controller.remove(name)
        self._drawn.pop(name, None)
        self.refresh()

    def _column(self, name: str) -> w.Widget:
        title = labelled(
            w.Text(value=name, continuous_update=False, layout=w.Layout(width="220px")), "dlt-eval-name"
        )
        title.observe(lambda c: self._rename(c["old"], c["new"]), "value")
        remove = labelled(
            w.Button(icon="trash", tooltip="remove this run", layout=w.Layout(width="36px")),
            "dlt-eval-remove",
        )
        remove.on_click(lambda _: self._remove(title.value))
        items: list[w.Widget] = [w.HBox([title, remove])]
        per_class = self.controller.per_class(name)
        if per_class is not None:
            items.append(
                labelled(w.HTML(table_html(per_class, "dlt-table dlt-per-class")), "dlt-eval-per-class")
            )
        for key, fig in self.controller.figures(name).items():
            picture = image("dlt-eval-plot")
            picture.add_class(f"dlt-plot-{key}")
            picture.layout.max_width = "100%"  # fits its run's column
            picture.show(fig)
            items += [w.HTML(f"<i>{esc(key.replace('_', ' '))}</i>"), picture]
        explain = labelled(
            w.Button(description="Explain", icon="search", tooltip="permutation importance and attributions"),
            "dlt-eval-explain-button",
        )
        found = labelled(w.VBox(), "dlt-eval-explain")
        explain.on_click(lambda _: self._explain(title.value, found))
        items += [explain, found]
        return labelled(w.VBox(items, layout=w.Layout(max_width="460px")), "dlt-eval-run")

    def _explain(self, name: str, box: w.VBox) -> None:
        self.message.info(f"Explaining {name} on its test split...")
        try:
            explanation = self.controller.explain(name)
        except (DLToolkitError, ValueError, KeyError, OSError) as e:
            self.message.error(e)
            return
        self.message.clear()
        box.children = explanation_view(explanation)


def explanation_view(explanation: Any) -> list[w.Widget]:
    """An explanation's figures; for a tabular model the importance and one row at a time, chosen
    from the explained test rows."""

    def picture(fig: Any, key: str) -> w.Widget:
        shown = image("dlt-eval-explain-plot")
        shown.add_class(f"dlt-plot-{key}")
        shown.layout.max_width = "100%"
        shown.show(fig)
        return shown

    if explanation.kind != "tabular":
        return [picture(fig, key) for key, fig in explanation.figures().items()]
    items: list[w.Widget] = [picture(explanation.plot_importance(), "permutation_importance")]
    rows = [(f"test row {r.row}: predicted {r.predicted}", i) for i, r in enumerate(explanation.rows)]
    choose = labelled(w.Dropdown(description="Row", options=rows, value=0), "dlt-eval-explain-row")
    shown = picture(explanation.plot_row(0), "attributions_row")
    choose.observe(lambda c: shown.show(explanation.plot_row(c["new"])), "value")
    return [*items, choose, shown]


class MlflowRow(w.HBox):
    """Add runs from an MLflow store: its tracking URI, *List* (the runs with a model bundle), *Add*."""

    def __init__(self, panel: EvalPanel) -> None:
        self.panel = panel
        self.uri = labelled(
            w.Text(description="MLflow", placeholder="sqlite:///runs/mlflow.db or http://host:5000"),
            "dlt-eval-mlflow-uri",
        )
        self.list_button = labelled(w.Button(description="List runs", icon="list"), "dlt-eval-mlflow-list")
        self.runs = labelled(w.Dropdown(description="Run", options=[]), "dlt-eval-mlflow-runs")
        self.add_button = labelled(w.Button(description="Add", icon="plus"), "dlt-eval-mlflow-add")
        self.list_button.on_click(lambda _: self.list_runs())
        self.add_button.on_click(lambda _: self.add())
        super().__init__([self.uri, self.list_button, self.runs, self.add_button])

    def list_runs(self) -> None:
        message_box = self.panel.message
        message_box.clear()
        try:
            self.runs.options = self.panel.controller.mlflow_runs(self.uri.value.strip())
        except (DLToolkitError, ImportError, OSError, ValueError) as e:
            message_box.error(e)
            return
        except Exception as e:  # noqa: BLE001 - MLflow's own errors (a bad URI, a server's answer)
            message_box.error(f"Could not list the runs of {self.uri.value.strip()!r}: {e}")
            return
        if not self.runs.options:
            message_box.error("No run with a model bundle in this MLflow store: track a run first.")

    def add(self) -> None:
        self.panel.message.clear()
        if not self.runs.value:
            self.panel.message.error("Type the MLflow tracking URI, press List runs and pick a run.")
            return
        try:
            self.panel.controller.add_mlflow(self.runs.value, self.uri.value.strip())
        except (DLToolkitError, ImportError, OSError, ValueError, KeyError) as e:
            self.panel.message.error(e)
            return
        self.panel.refresh()
