"""Evaluate a trained model: test metrics, plots as Display objects, and the HTML run report.

Importing this package is light: torch, torchmetrics and matplotlib are imported only when a
metric is computed or a plot is drawn.

Example:
    >>> import numpy as np
    >>> from dltoolkit.evaluate import evaluate
    >>> evaluate("regression", np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 3.0]))["r2"]
    1.0
"""

from dltoolkit.evaluate.metrics import evaluate, metrics_table
from dltoolkit.evaluate.plots import (
    ConfusionMatrixDisplay,
    LearningCurveDisplay,
    PrecisionRecallDisplay,
    PredictedVsTrueDisplay,
    ResidualsDisplay,
    RocCurveDisplay,
    save_plots,
)
from dltoolkit.evaluate.report import write_report

__all__ = [
    "ConfusionMatrixDisplay",
    "LearningCurveDisplay",
    "PrecisionRecallDisplay",
    "PredictedVsTrueDisplay",
    "ResidualsDisplay",
    "RocCurveDisplay",
    "evaluate",
    "metrics_table",
    "save_plots",
    "write_report",
]
