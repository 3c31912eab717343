"""Plots as objects: each Display computes its numbers in ``from_...``, then ``plot(ax=None)`` draws.

Figures are plain :class:`matplotlib.figure.Figure` objects, never pyplot's, so plotting touches no
global state and works under any backend (Agg included). matplotlib is imported only when drawing.

Example:
    >>> import numpy as np
    >>> proba = np.array([[0.8, 0.2], [0.3, 0.7], [0.6, 0.4], [0.1, 0.9]])
    >>> fig = RocCurveDisplay.from_predictions(np.array([0, 1, 1, 1]), proba).plot()
    >>> fig.axes[0].get_xlabel()
    'false positive rate'
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Self

import numpy as np
import pandas as pd

from dltoolkit.errors import DataError, message
from dltoolkit.evaluate._checks import (
    check_classification,
    check_kind,
    check_predicted_labels,
    check_regression,
)
from dltoolkit.evaluate._figures import figure_of, given_axes, new_axes, save_png
from dltoolkit.evaluate._regression_plots import PredictedVsTrueDisplay, ResidualsDisplay
from dltoolkit.spec import metric_mode

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "ConfusionMatrixDisplay",
    "LearningCurveDisplay",
    "PrecisionRecallDisplay",
    "PredictedVsTrueDisplay",
    "ResidualsDisplay",
    "RocCurveDisplay",
    "save_plots",
]

Series = dict[str, tuple[np.ndarray, np.ndarray]]  # name -> (x, y)


# --------------------------------------------------------------------------- learning curves
class LearningCurveDisplay:
    """Loss curves (train vs val) in one axes, the other logged metrics in a second.

    Errors in the target's units (``val_mae``, ``val_rmse``, ``val_mse``) get their own y axis on
    the right of the metrics' axes, so that scores in [0, 1] next to them stay readable.

    Example:
        >>> history = pd.DataFrame({"epoch": [0, 1, 2], "train_loss": [1.0, 0.6, 0.4],
        ...                         "val_loss": [1.1, 0.7, 0.6], "val_acc": [0.5, 0.7, 0.8]})
        >>> fig = LearningCurveDisplay.from_history(history).plot()
        >>> [len(ax.lines) for ax in fig.axes]
        [2, 1]
    """

    SKIP: ClassVar[tuple[str, ...]] = ("epoch", "step", "lr")  # columns never drawn as metrics

    def __init__(self, losses: Series, metrics: Series, errors: Series | None = None) -> None:
        self.losses = losses
        self.metrics = metrics
        self.errors = errors or {}

    @classmethod
    def from_history(cls, history: pd.DataFrame) -> LearningCurveDisplay:
        """Split the numeric columns of a training history into losses and metrics.

        Columns whose name contains ``loss`` are losses; ``epoch``, ``step`` and ``lr*`` are
        skipped; missing columns are fine. NaN entries (a metric not logged that epoch) are dropped
        per column. The x axis is ``epoch`` if present, else the row number.
        """
        if not isinstance(history, pd.DataFrame):
            raise DataError(message("history is not a DataFrame", type(history).__name__, "a DataFrame"))
        x = history["epoch"] if "epoch" in history else pd.Series(np.arange(len(history)), history.index)
        losses: Series = {}
        metrics: Series = {}
        errors: Series = {}
        for name in history.columns:
            column = history[name]
            if str(name).startswith(cls.SKIP) or not pd.api.types.is_numeric_dtype(column):
                continue
            keep = column.notna().to_numpy()
            if keep.any():
                target = losses if "loss" in str(name) else errors if metric_mode(name) == "min" else metrics
                target[str(name)] = (x.to_numpy()[keep], column.to_numpy(dtype=float)[keep])
        return cls(losses, metrics, errors)

    def plot(self, ax: Axes | list[Axes] | None = None) -> Figure:
        """Draw and return the figure.

        Args:
            ax: None (a new figure), two Axes (losses, metrics), or one Axes: the metrics then go on
                a twin y axis of it.
        """
        loss_ax, metric_ax = self._axes(ax)
        _draw_series(loss_ax, self.losses, ylabel="loss", title="Learning curves")
        if metric_ax is not None and self.metrics:
            _draw_series(metric_ax, self.metrics, ylabel="metric", title=None)
        if metric_ax is not None and self.errors:
            error_ax = metric_ax.twinx() if self.metrics else metric_ax
            _draw_series(error_ax, self.errors, ylabel="error (target units)", title=None, first=5)
        return figure_of(loss_ax)

    def _axes(self, ax: object) -> tuple[Axes, Axes | None]:
        more = bool(self.metrics or self.errors)
        if ax is None:
            axes = new_axes(2 if more else 1, figsize=(10.0, 4.0), sharex=True)
            return axes[0], (axes[1] if more else None)
        axes = given_axes(ax, 2)
        if len(axes) == 2:
            return axes[0], axes[1]
        return axes[0], (axes[0].twinx() if more else None)


def _draw_series(ax: Axes, series: Series, *, ylabel: str, title: str | None, first: int = 0) -> None:
    stems: list[str] = []
    for name, (x, y) in series.items():
        stem = name.removeprefix("train_").removeprefix("val_")
        stems += [] if stem in stems else [stem]
        style = "--" if name.startswith("val") else "-"
        color = f"C{(first + stems.index(stem)) % 10}"
        ax.plot(x, y, linestyle=style, color=color, marker=".", label=name)
    ax.set(xlabel="epoch", ylabel=ylabel)
    if title:
        ax.set_title(title)
    if series:
        ax.legend(loc="best", fontsize="small")


# --------------------------------------------------------------------------- confusion matrix
class ConfusionMatrixDisplay:
    """Confusion matrix (rows true, columns predicted), drawn by scikit-learn's display.

    Example:
        >>> d = ConfusionMatrixDisplay.from_predictions([0, 1, 1], [0, 1, 0], ["no", "yes"])
        >>> d.confusion_matrix.tolist()
        [[1, 0], [1, 1]]
    """

    NORMALIZE: ClassVar[tuple[str | None, ...]] = (None, "true", "pred", "all")

    def __init__(self, confusion_matrix: np.ndarray, classes: list[str], normalize: str | None = None):
        self.confusion_matrix = confusion_matrix
        self.classes = classes
        self.normalize = normalize

    @classmethod
    def from_predictions(
        cls,
        y_true: np.ndarray,
        y_pred: np.ndarray,
        classes: list[str] | None = None,
        *,
        normalize: str | None = None,
    ) -> ConfusionMatrixDisplay:
        """Count predictions per (true, predicted) class.

        Args:
            y_true: Class indices (n,).
            y_pred: Predicted class indices (n,), or probabilities (n, C) (their argmax is used).
            classes: Class names in label order; default ``"0"``, ``"1"``...
            normalize: None (counts), ``"true"`` (rows sum to 1), ``"pred"`` (columns) or ``"all"``.
        """
        from sklearn.metrics import confusion_matrix

        if normalize not in cls.NORMALIZE:
            raise DataError(message("Unknown normalize option", normalize, f"one of {list(cls.NORMALIZE)}"))
        y, pred, names = check_predicted_labels(y_true, y_pred, classes)
        cm = confusion_matrix(y, pred, labels=list(range(len(names))), normalize=normalize)
        return cls(cm, names, normalize)

    def plot(self, ax: Axes | None = None, *, cmap: str = "Blues", colorbar: bool = True) -> Figure:
        """Draw into ``ax`` (a new figure if None) and return the figure."""
        from sklearn.metrics import ConfusionMatrixDisplay as SkDisplay

        k = len(self.classes)
        ax = given_axes(ax, 1)[0] if ax is not None else new_axes(figsize=(1.5 + 0.6 * k, 1.2 + 0.6 * k))[0]
        SkDisplay(self.confusion_matrix, display_labels=self.classes).plot(
            ax=ax,
            cmap=cmap,
            colorbar=colorbar,
            values_format=".2f" if self.normalize else "d",
            xticks_rotation=45 if k > 4 or max(map(len, map(str, self.classes))) > 6 else "horizontal",
        )
        suffix = f" (normalised over {self.normalize})" if self.normalize else ""
        ax.set_title(f"Confusion matrix{suffix}")
        return figure_of(ax)


# --------------------------------------------------------------------------- ROC / PR
class _OneVsRestDisplay:
    """One curve per class against the rest (binary: the positive class only), plus a macro score."""

    SCORE = ""  # legend name of the per-curve score
    XLABEL = YLABEL = TITLE = ""

    def __init__(self, curves: Series, scores: dict[str, float], macro: float | None) -> None:
        self.curves = curves
        self.scores = scores
        self.macro = macro

    @classmethod
    def from_predictions(
        cls, y_true: np.ndarray, proba: np.ndarray, classes: list[str] | None = None
    ) -> Self:
        """Compute the curves from class indices (n,) and probabilities (n, C).

        Binary (C == 2) gives one curve for ``classes[1]``; otherwise each class present in y_true
        gets a one-vs-rest curve, and ``macro`` is the mean score over those curves.
        """
        proba = np.asarray(proba, dtype=float)
        kind = "binary" if proba.ndim == 1 or proba.shape[1] == 2 else "multiclass"
        y, proba, names = check_classification(kind, y_true, proba, classes)
        curves: Series = {}
        scores: dict[str, float] = {}
        for i in [1] if kind == "binary" else range(len(names)):
            target = y == i
            if 0 < target.sum() < len(y):  # the curve needs positives and negatives
                curves[names[i]], scores[names[i]] = cls._curve(target, proba[:, i])
        macro = float(np.mean(list(scores.values()))) if scores else None
        return cls(curves, scores, macro)

    @staticmethod
    def _curve(target: np.ndarray, score: np.ndarray) -> tuple[tuple[np.ndarray, np.ndarray], float]:
        raise NotImplementedError

    def plot(self, ax: Axes | None = None) -> Figure:
        """Draw into ``ax`` (a new figure if None) and return the figure."""
        ax = given_axes(ax, 1)[0] if ax is not None else new_axes(figsize=(5.0, 4.5))[0]
        for name, (x, y) in self.curves.items():
            ax.plot(x, y, label=f"{name} ({self.SCORE} = {self.scores[name]:.3f})", **self._style())
        self._baseline(ax)
        ax.set(xlabel=self.XLABEL, ylabel=self.YLABEL, title=self.TITLE, xlim=(0, 1), ylim=(0, 1.02))
        macro = "n/a" if self.macro is None else f"{self.macro:.3f}"
        title = f"macro {self.SCORE} = {macro}" if len(self.curves) > 1 else None
        ax.legend(loc="lower right" if self.SCORE == "AUC" else "lower left", fontsize="small", title=title)
        return figure_of(ax)

    def _style(self) -> dict[str, Any]:
        return {}

    def _baseline(self, ax: Axes) -> None:
        pass


class RocCurveDisplay(_OneVsRestDisplay):
    """ROC curves: one for binary, one-vs-rest per class for multiclass, macro AUC in the legend.

    Example:
        >>> proba = np.array([[.7, .2, .1], [.2, .6, .2], [.1, .3, .6], [.5, .3, .2]])
        >>> d = RocCurveDisplay.from_predictions([0, 1, 2, 1], proba, ["a", "b", "c"])
        >>> sorted(d.scores), d.macro is not None
        (['a', 'b', 'c'], True)
    """

    SCORE, XLABEL, YLABEL, TITLE = "AUC", "false positive rate", "true positive rate", "ROC curve"

    @staticmethod
    def _curve(target: np.ndarray, score: np.ndarray) -> tuple[tuple[np.ndarray, np.ndarray], float]:
        from sklearn.metrics import auc, roc_curve

        fpr, tpr, _ = roc_curve(target, score)
        return (fpr, tpr), float(auc(fpr, tpr))

    def _baseline(self, ax: Axes) -> None:
        ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1, label="chance")


class PrecisionRecallDisplay(_OneVsRestDisplay):
    """Precision-recall curves: one for binary, one-vs-rest per class, macro AP in the legend.

    Example:
        >>> proba = np.array([[.7, .3], [.4, .6], [.2, .8], [.6, .4]])
        >>> d = PrecisionRecallDisplay.from_predictions([0, 1, 1, 0], proba, ["no", "yes"])
        >>> list(d.scores), d.macro
        (['yes'], 1.0)
    """

    SCORE, XLABEL, YLABEL, TITLE = "AP", "recall", "precision", "Precision-recall curve"

    @staticmethod
    def _curve(target: np.ndarray, score: np.ndarray) -> tuple[tuple[np.ndarray, np.ndarray], float]:
        from sklearn.metrics import average_precision_score, precision_recall_curve

        precision, recall, _ = precision_recall_curve(target, score)
        return (recall, precision), float(average_precision_score(target, score))

    def _style(self) -> dict[str, Any]:
        return {"drawstyle": "steps-post"}


# --------------------------------------------------------------------------- all at once
def save_plots(
    out_dir: Path,
    kind: str,
    history: pd.DataFrame | None,
    y_true: np.ndarray,
    output: np.ndarray,
    classes: list[str] | None = None,
) -> dict[str, Path]:
    """Draw the standard plots of a task and write them as PNGs into ``out_dir`` (created).

    Each file is written atomically. Classification: ``confusion_matrix``, ``roc``,
    ``precision_recall``; regression: ``predicted_vs_true``, ``residuals``; plus
    ``learning_curves`` when a history is given.

    Returns:
        The plot name -> path of the PNG written.

    Example:
        >>> paths = save_plots(tmp / "plots", "regression", None, y, y_hat)  # doctest: +SKIP
        >>> sorted(paths)  # doctest: +SKIP
        ['predicted_vs_true', 'residuals']
    """
    out_dir = Path(out_dir)
    displays = displays_for(kind, history, y_true, output, classes)
    out_dir.mkdir(parents=True, exist_ok=True)
    return {name: save_png(d.plot(), out_dir / f"{name}.png") for name, d in displays.items()}


def displays_for(kind: str, history, y_true, output, classes) -> dict[str, Any]:
    """The Display objects ``save_plots`` draws for a task: {name: display} (the dashboard reuses it)."""
    displays: dict[str, Any] = {}
    if history is not None:
        displays["learning_curves"] = LearningCurveDisplay.from_history(history)
    if check_kind(kind) == "regression":
        y, pred = check_regression(y_true, output)
        displays["predicted_vs_true"] = PredictedVsTrueDisplay(y, pred)
        displays["residuals"] = ResidualsDisplay(pred, y - pred)
        return displays
    y, proba, names = check_classification(kind, y_true, output, classes)
    displays["confusion_matrix"] = ConfusionMatrixDisplay.from_predictions(y, proba.argmax(axis=1), names)
    displays["roc"] = RocCurveDisplay.from_predictions(y, proba, names)
    displays["precision_recall"] = PrecisionRecallDisplay.from_predictions(y, proba, names)
    return displays
