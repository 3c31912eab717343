"""Explanation plots as Display objects: numbers in ``from_...``, drawing in ``plot(ax=None)``.

Red pushes the attributed output up, blue pulls it down (signed methods); saliency and Grad-CAM
maps are magnitudes. Figures are plain matplotlib Figures made without pyplot (see
:mod:`dltoolkit.evaluate.plots`).

Example:
    >>> import pandas as pd
    >>> table = pd.DataFrame({"importance": [0.3, 0.0], "std": [0.05, 0.01],
    ...                       "repeat_1": [0.25, 0.01], "repeat_2": [0.35, -0.01]}, index=["x0", "x1"])
    >>> fig = PermutationImportanceDisplay(table, "accuracy").plot()
    >>> fig.axes[0].get_xlabel()
    'drop in accuracy when the column is shuffled'
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from dltoolkit.evaluate._figures import figure_of, given_axes, new_axes

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from dltoolkit.interpret.explanation import Explanation, RowExplanation

UP, DOWN = "#c0392b", "#2c7bb6"  # pushes the output up / down
LABELS = {
    "integrated_gradients": "Integrated Gradients",
    "kernel_shap": "KernelSHAP",
    "saliency": "Saliency |grad|",
    "gradcam": "Grad-CAM",
}


class PermutationImportanceDisplay:
    """The drop of the test score when each column is shuffled: mean bar, spread, every repeat."""

    def __init__(self, table: pd.DataFrame, scoring: str) -> None:
        self.table, self.scoring = table, scoring

    @classmethod
    def from_explanation(cls, explanation: Explanation, top: int = 20) -> PermutationImportanceDisplay:
        if explanation.importance is None:
            from dltoolkit.interpret.explanation import ExplainError

            raise ExplainError(
                f"This {explanation.kind} model's explanation has no permutation importance (only "
                "tabular models have one: a row of columns to shuffle)."
            )
        return cls(explanation.importance.head(top), explanation.scoring or "score")

    def plot(self, ax: Axes | None = None) -> Figure:
        shown = self.table.iloc[::-1]  # the largest bar on top
        (ax,) = given_axes(ax, 1) if ax is not None else new_axes(figsize=(6.5, 1.2 + 0.32 * len(shown)))
        y = np.arange(len(shown))
        ax.barh(y, shown["importance"], xerr=shown["std"], color="#7f8c8d", capsize=2)
        repeats = shown[[c for c in shown.columns if str(c).startswith("repeat_")]].to_numpy()
        if repeats.size:
            ax.scatter(repeats.ravel(), np.repeat(y, repeats.shape[1]), s=8, color="k", zorder=3)
        ax.set_yticks(y, [str(i) for i in shown.index], fontsize="small")
        ax.axvline(0, color="#999", linewidth=0.8)
        ax.set(xlabel=f"drop in {self.scoring} when the column is shuffled", title="Permutation importance")
        return figure_of(ax)


class FeatureAttributionDisplay:
    """The features that moved one row's output most, signed."""

    def __init__(self, labels: list[str], values: np.ndarray, title: str, xlabel: str) -> None:
        self.labels, self.values, self.title, self.xlabel = labels, np.asarray(values, float), title, xlabel

    @classmethod
    def from_row(cls, row: RowExplanation, method: str, top: int = 12) -> FeatureAttributionDisplay:
        values = np.asarray(row.attributions[method], float)
        order = np.argsort(-np.abs(values), kind="stable")[:top]
        raw = list(row.inputs) if row.inputs is not None else [None] * len(values)
        labels = [row.labels[i] + ("" if raw[i] is None else f" = {_short(raw[i])}") for i in order]
        title = (
            f"Test row {row.row}: predicted {row.predicted} (true {row.true})\n"
            f"{row.target} = {row.output:.3g}; {row.baseline_output:.3g} at the average input"
        )
        xlabel = f"contribution to {row.target} ({LABELS.get(method, method)})"
        return cls(labels, values[order], title, xlabel)

    def plot(self, ax: Axes | None = None) -> Figure:
        (ax,) = (
            given_axes(ax, 1) if ax is not None else new_axes(figsize=(6.5, 1.2 + 0.32 * len(self.labels)))
        )
        values = self.values[::-1]
        y = np.arange(len(values))
        ax.barh(y, values, color=[UP if v >= 0 else DOWN for v in values])
        ax.set_yticks(y, self.labels[::-1], fontsize="small")
        ax.axvline(0, color="#999", linewidth=0.8)
        ax.set_title(self.title, fontsize="medium")
        ax.set_xlabel(self.xlabel, fontsize="small")
        return figure_of(ax)


class ImageAttributionDisplay:
    """Chosen test images, each with one map per method laid over it; predicted and true class."""

    def __init__(self, rows: list[RowExplanation], methods: list[str]) -> None:
        self.rows, self.methods = rows, methods

    @classmethod
    def from_explanation(cls, explanation: Explanation) -> ImageAttributionDisplay:
        return cls(explanation.rows, explanation.methods)

    def plot(self, ax: Any = None) -> Figure:
        n, k = len(self.rows), 1 + len(self.methods)
        if ax is None:
            from matplotlib.figure import Figure

            fig = Figure(figsize=(2.0 * k, 2.1 * n), layout="constrained")
            axes = fig.subplots(n, k, squeeze=False)
        else:
            axes = np.asarray(given_axes(ax, n * k)).reshape(n, k)
        for row, line in zip(self.rows, axes, strict=True):
            picture = _picture(row.inputs)
            line[0].imshow(picture, cmap="gray" if picture.ndim == 2 else None)
            line[0].set_title(f"pred {row.predicted} / true {row.true}", fontsize="small")
            for a, method in zip(line[1:], self.methods, strict=True):
                _overlay(a, picture, np.asarray(row.attributions[method], float), method)
        for a, title in zip(axes[0][1:], self.methods, strict=True):
            a.set_title(f"{LABELS.get(title, title)}\n{a.get_title()}".strip(), fontsize="small")
        for a in axes.ravel():
            a.set_xticks([])
            a.set_yticks([])
        return figure_of(axes[0][0])


def _picture(image: np.ndarray) -> np.ndarray:
    """(C, H, W) -> (H, W) for one channel, (H, W, 3) scaled into [0, 1] for three."""
    image = np.asarray(image, float)
    if image.shape[0] != 3:
        return image.mean(0)
    image = np.moveaxis(image, 0, -1)
    span = image.max() - image.min()
    return (image - image.min()) / (span if span > 0 else 1.0)


def _overlay(ax: Axes, picture: np.ndarray, values: np.ndarray, method: str) -> None:
    ax.imshow(picture, cmap="gray")
    if method in ("saliency", "gradcam"):  # magnitudes
        ax.imshow(values, cmap="inferno", alpha=0.6, vmin=0)
        return
    limit = float(np.abs(values).max()) or 1.0
    ax.imshow(values, cmap="RdBu_r", alpha=0.65, vmin=-limit, vmax=limit)
    ax.set_title(f"sum {values.sum():.3g}", fontsize="x-small")  # = output - output at the baseline


class StepAttributionDisplay:
    """Attribution per time step (bars) under each chosen sequence (line), or per token."""

    def __init__(self, rows: list[RowExplanation], method: str, tokens: bool = False) -> None:
        self.rows, self.method, self.tokens = rows, method, tokens

    @classmethod
    def from_explanation(cls, explanation: Explanation, method: str | None = None) -> StepAttributionDisplay:
        return cls(explanation.rows, method or explanation.methods[0], tokens=explanation.kind == "text")

    def plot(self, ax: Any = None) -> Figure:
        n = len(self.rows)
        axes = _column_axes(n, ax)
        for a, row in zip(axes, self.rows, strict=True):
            values = np.asarray(row.attributions[self.method], float)
            x = np.arange(len(values))
            a.bar(x, values, color=[UP if v >= 0 else DOWN for v in values])
            a.axhline(0, color="#999", linewidth=0.8)
            a.set_title(
                f"Test row {row.row}: predicted {row.predicted} (true {row.true}); "
                f"{LABELS.get(self.method, self.method)} to {row.target}",
                fontsize="small",
            )
            if self.tokens:
                a.set_xticks(x, row.labels, rotation=45, ha="right", fontsize="small")
            elif row.inputs is not None:
                signal = a.twinx()
                signal.plot(x, np.asarray(row.inputs, float).reshape(len(x), -1), color="k", linewidth=1)
                signal.set_ylabel("input", fontsize="x-small")
        axes[-1].set_xlabel("token" if self.tokens else "time step")
        return figure_of(axes[0])


def _column_axes(n: int, ax: Any) -> list[Axes]:
    if ax is not None:
        return given_axes(ax, n)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.0, 2.0 * n), layout="constrained")
    return list(fig.subplots(n, 1, squeeze=False)[:, 0])


def figures_of(explanation: Explanation) -> dict[str, Figure]:
    """The figures ``Explanation.figures`` returns, named as ``save`` writes them."""
    kind = explanation.kind
    if kind == "image":
        return {"image_attributions": ImageAttributionDisplay.from_explanation(explanation).plot()}
    if kind in ("sequence", "text"):
        name = "token_attributions" if kind == "text" else "sequence_attributions"
        return {name: StepAttributionDisplay.from_explanation(explanation).plot()}
    figures = {}
    if explanation.importance is not None:
        figures["permutation_importance"] = explanation.plot_importance()
    for i, row in enumerate(explanation.rows):
        figures[f"attributions_row{row.row}"] = explanation.plot_row(i)
    return figures


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float | np.floating) else str(value)[:24]
