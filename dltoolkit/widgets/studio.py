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
import yaml

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
    """The live spec as highlighted YAML — what differs from the defaults first, the full spec a click
    away — and a Save button (the file runs with ``dltoolkit run``; it holds the full spec)."""

    def __init__(self, state: SpecState) -> None:
        super().__init__()
        self.add_class("dlt-spec-panel")
        self.state = state
        self.yaml = labelled(w.HTML(layout=w.Layout(max_height="520px", overflow="auto")), "dlt-spec-yaml")
        self.show = labelled(
            w.ToggleButtons(options=["changes from defaults", "full spec"], value="changes from defaults"),
            "dlt-spec-show",
        )
        self.path = labelled(w.Text(value=f"{state.spec.name}.yaml", description="Save as"), "dlt-spec-path")
        self.save_button = labelled(w.Button(description="Save", icon="save"), "dlt-spec-save")
        self.message = MessageBox()
        self.save_button.on_click(lambda _: self.save())
        self.show.observe(lambda _c: self.refresh(), "value")
        self.children = [w.HBox([self.path, self.save_button]), self.message, self.show, self.yaml]
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

    def text(self) -> str:
        """The YAML shown: the fields that differ from the defaults, or the full spec; floats rounded
        to 4 significant digits for reading (Save writes them exactly)."""
        spec = self.state.spec
        full = self.show.value == "full spec"
        data = spec.to_dict() if full else spec.model_dump(mode="json", exclude_defaults=True)
        return yaml.dump(data, Dumper=_RoundingDumper, sort_keys=False, default_flow_style=None, width=100)

    def refresh(self) -> None:
        self.yaml.value = highlight_yaml(self.text())


class _RoundingDumper(yaml.SafeDumper):
    """YAML with floats at 4 significant digits (0.0030000000000000001 reads 0.003)."""


_RoundingDumper.add_representer(
    float, lambda dumper, value: dumper.represent_scalar("tag:yaml.org,2002:float", f"{value:.4g}")
)


def highlight_yaml(text: str) -> str:
    """YAML as HTML with syntax colours (Pygments, inline styles: no stylesheet needed)."""
    try:
        from pygments import highlight
        from pygments.formatters import HtmlFormatter
        from pygments.lexers import YamlLexer
    except ImportError:  # pragma: no cover - Pygments comes with IPython
        return f"<pre>{html.escape(text)}</pre>"
    return highlight(text, YamlLexer(), HtmlFormatter(noclasses=True, style="friendly", nowrap=False))


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
        self.train_panel = TrainPanel(TrainController(self.state, Path(out)))
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
