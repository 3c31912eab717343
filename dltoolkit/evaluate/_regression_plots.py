"""Regression displays: predicted against true values, and the residuals."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from dltoolkit.evaluate._checks import check_regression
from dltoolkit.evaluate._figures import figure_of, given_axes, new_axes

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

_POINTS: dict[str, Any] = {"s": 10, "alpha": 0.6, "edgecolors": "none"}


class PredictedVsTrueDisplay:
    """Scatter of predictions against targets, with the ideal ``y = x`` line.

    Example:
        >>> fig = PredictedVsTrueDisplay.from_predictions([1.0, 2.0, 3.0], [1.1, 1.9, 3.2]).plot()
        >>> len(fig.axes[0].lines)  # the y = x line
        1
    """

    def __init__(self, y_true: np.ndarray, y_pred: np.ndarray) -> None:
        self.y_true = y_true
        self.y_pred = y_pred

    @classmethod
    def from_predictions(cls, y_true: np.ndarray, y_pred: np.ndarray) -> PredictedVsTrueDisplay:
        """Validate the targets and predictions (both (n,), original units)."""
        return cls(*check_regression(y_true, y_pred))

    def plot(self, ax: Axes | None = None) -> Figure:
        """Draw into ``ax`` (a new figure if None) and return the figure."""
        ax = given_axes(ax, 1)[0] if ax is not None else new_axes(figsize=(4.5, 4.5))[0]
        ax.scatter(self.y_true, self.y_pred, **_POINTS)
        lo = float(min(self.y_true.min(), self.y_pred.min()))
        hi = float(max(self.y_true.max(), self.y_pred.max()))
        ax.plot([lo, hi], [lo, hi], color="black", linestyle="--", linewidth=1, label="y = x")
        ax.set(xlabel="true", ylabel="predicted", title="Predicted vs true")
        ax.legend(loc="upper left")
        return figure_of(ax)


class ResidualsDisplay:
    """Residuals (true - predicted) against the predictions, plus their histogram.

    Example:
        >>> fig = ResidualsDisplay.from_predictions([1.0, 2.0, 3.0], [1.1, 1.9, 3.2]).plot()
        >>> len(fig.axes)  # scatter and histogram
        2
    """

    def __init__(self, y_pred: np.ndarray, residuals: np.ndarray) -> None:
        self.y_pred = y_pred
        self.residuals = residuals

    @classmethod
    def from_predictions(cls, y_true: np.ndarray, y_pred: np.ndarray) -> ResidualsDisplay:
        """Compute the residuals ``y_true - y_pred``."""
        y, pred = check_regression(y_true, y_pred)
        return cls(pred, y - pred)

    def plot(self, ax: Axes | list[Axes] | None = None) -> Figure:
        """Draw and return the figure.

        Args:
            ax: None (a new figure), two Axes (scatter, histogram), or one Axes: the histogram then
                goes into an inset on its right.
        """
        scatter_ax, hist_ax = self._axes(ax)
        scatter_ax.scatter(self.y_pred, self.residuals, **_POINTS)
        scatter_ax.axhline(0.0, color="black", linestyle="--", linewidth=1)
        scatter_ax.set(xlabel="predicted", ylabel="residual (true - predicted)", title="Residuals")
        bins = min(50, max(5, int(np.sqrt(len(self.residuals)))))
        hist_ax.hist(self.residuals, bins=bins, orientation="horizontal", color="C0", alpha=0.7)
        hist_ax.axhline(0.0, color="black", linestyle="--", linewidth=1)
        hist_ax.set(xlabel="count")
        hist_ax.tick_params(labelleft=False)
        return figure_of(scatter_ax)

    @staticmethod
    def _axes(ax: object) -> tuple[Axes, Axes]:
        if ax is None:
            axes = new_axes(2, figsize=(7.0, 4.0), sharey=True, width_ratios=[3, 1])
            return axes[0], axes[1]
        axes = given_axes(ax, 2)
        if len(axes) == 2:
            return axes[0], axes[1]
        return axes[0], axes[0].inset_axes((1.02, 0.0, 0.25, 1.0), sharey=axes[0])
