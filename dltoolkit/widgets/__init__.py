"""Notebook panels (ipywidgets 8): thin views over plain controllers that edit one shared spec.

Importing this package imports ipywidgets; ``import dltoolkit`` does not.

Example:
    >>> from dltoolkit.widgets import studio   # doctest: +SKIP
    >>> s = studio("digits-mlp"); s            # doctest: +SKIP
"""

from dltoolkit._extras import require

require("notebook", "The notebook panels (dltoolkit.studio, %load_ext dltoolkit)")

from dltoolkit.widgets._state import SpecState  # noqa: E402
from dltoolkit.widgets.data_panel import DataController, DataPanel  # noqa: E402
from dltoolkit.widgets.evaluation import EvalController, EvalPanel  # noqa: E402
from dltoolkit.widgets.graph_builder import GraphBuilder  # noqa: E402
from dltoolkit.widgets.graph_panel import GraphPanel  # noqa: E402
from dltoolkit.widgets.studio import SpecPanel, Studio, studio  # noqa: E402
from dltoolkit.widgets.training import TrainController, TrainPanel  # noqa: E402
from dltoolkit.widgets.tuning import TuneController, TunePanel  # noqa: E402

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
