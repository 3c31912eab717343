"""Notebook panels (ipywidgets 8): thin views over plain controllers that edit one shared spec.

Importing this package imports ipywidgets; ``import dltoolkit`` does not.

Example:
    >>> from dltoolkit.widgets import studio   # doctest: +SKIP
    >>> s = studio("digits-mlp"); s            # doctest: +SKIP
"""

from dltoolkit.widgets._state import SpecState
from dltoolkit.widgets.data_panel import DataController, DataPanel
from dltoolkit.widgets.evaluation import EvalController, EvalPanel
from dltoolkit.widgets.graph_builder import GraphBuilder
from dltoolkit.widgets.graph_panel import GraphPanel
from dltoolkit.widgets.studio import SpecPanel, Studio, studio
from dltoolkit.widgets.training import TrainController, TrainPanel
from dltoolkit.widgets.tuning import TuneController, TunePanel

__all__ = [
    "DataController",
    "DataPanel",
    "EvalController",
    "EvalPanel",
    "GraphBuilder",
    "GraphPanel",
    "SpecPanel",
    "SpecState",
    "Studio",
    "TrainController",
    "TrainPanel",
    "TuneController",
    "TunePanel",
    "studio",
]
