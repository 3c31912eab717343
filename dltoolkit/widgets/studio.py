"""``studio(spec_or_recipe)``: every panel in tabs over one live spec.

Example:
    >>> s = studio("wine")                     # doctest: +SKIP
    >>> s                                      # doctest: +SKIP
    >>> s.spec.train.optimizer.lr              # doctest: +SKIP
"""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Any

import ipywidgets as w

from dltoolkit.errors import DLToolkitError
from dltoolkit.spec import Spec
from dltoolkit.widgets._common import MessageBox, labelled
from dltoolkit.widgets._state import SpecState
from dltoolkit.widgets.data_panel import DataController, DataPanel
from dltoolkit.widgets.evaluation import EvalPanel
from dltoolkit.widgets.graph_builder import GraphBuilder
from dltoolkit.widgets.graph_panel import GraphPanel
from dltoolkit.widgets.training import TrainController, TrainPanel
from dltoolkit.widgets.tuning import TuneController, TunePanel

TITLES = ("Data", "Graph", "Training", "Tuning", "Evaluation", "Spec")


class SpecPanel(w.VBox):
    """The live spec as YAML, and a Save button (the file runs with ``dltoolkit run``)."""

    def __init__(self, state: SpecState) -> None:
        super().__init__()
        self.add_class("dlt-spec-panel")
        self.state = state
        self.yaml = labelled(w.HTML(), "dlt-spec-yaml")
        self.path = labelled(w.Text(value=f"{state.spec.name}.yaml", description="Save as"), "dlt-spec-path")
        self.save_button = labelled(w.Button(description="Save", icon="save"), "dlt-spec-save")
        self.message = MessageBox()
        self.save_button.on_click(lambda _: self.save())
        self.children = [w.HBox([self.path, self.save_button]), self.message, self.yaml]
        state.observe(lambda _spec: self.refresh())
        self.refresh()

    def save(self) -> Path | None:
        try:
            path = self.state.spec.save(self.path.value.strip())
        except (DLToolkitError, OSError) as e:
            self.message.error(e)
            return None
        self.message.info(f"Saved to {path}: run it with `dltoolkit run {path}`.")
        return path

    def refresh(self) -> None:
        self.yaml.value = f"<pre>{html.escape(self.state.spec.to_yaml())}</pre>"


class Studio(w.Tab):
    """Data, graph, training, tuning and evaluation panels over one :class:`SpecState`.

    Attributes:
        state: the shared spec holder; ``spec`` is its live spec.
        data_panel, graph_panel, train_panel, tune_panel, eval_panel, spec_panel: the panels.
    """

    def __init__(
        self,
        spec: Spec,
        data: Any = None,
        out: str | os.PathLike = "runs",
        namespace: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.add_class("dlt-studio")
        self.state = SpecState(spec, data)
        self.data_panel = DataPanel(DataController(self.state, namespace))
        self.graph_panel = GraphPanel(GraphBuilder(self.state))
        self.train_panel = TrainPanel(TrainController(self.state, out))
        self.tune_panel = TunePanel(TuneController(self.state, out))
        self.eval_panel = EvalPanel()
        self.spec_panel = SpecPanel(self.state)
        self.train_panel.controller.on_done.append(self._trained)
        self.children = [
            self.data_panel,
            self.graph_panel,
            self.train_panel,
            self.tune_panel,
            self.eval_panel,
            self.spec_panel,
        ]
        self.titles = TITLES

    @property
    def spec(self) -> Spec:
        """The live spec every panel edits."""
        return self.state.spec

    def _trained(self, controller: TrainController) -> None:
        if controller.result is not None:
            self.eval_panel.add(controller.result, self.state.data)


def studio(
    spec_or_recipe: Spec | str | os.PathLike | dict,
    data: Any = None,
    *,
    overrides: dict[str, Any] | None = None,
    out: str | os.PathLike = "runs",
) -> Studio:
    """The notebook studio: tabs of panels editing one spec; display it as the last value of a cell.

    Args:
        spec_or_recipe: a Spec, a dict, a spec file or a recipe name (``"digits-mlp"``).
        data: a DataFrame when the spec's source is ``frame``.
        overrides: dotted-path values applied first, e.g. ``{"train.epochs": 5}``.
        out: where training runs and sweeps write their folders.

    Example:
        >>> s = studio("digits-mlp", overrides={"train.epochs": 3})  # doctest: +SKIP
        >>> s.spec.train.epochs                                      # doctest: +SKIP
        3
    """
    from dltoolkit.api import resolve_spec

    return Studio(resolve_spec(spec_or_recipe, overrides), data, out)
