"""An explanation as plain data: permutation importance, per-row attributions, their figures and files.

Numbers first, then pictures: :class:`Explanation` holds what :func:`dltoolkit.explain` computed;
``figures()`` draws it (Display objects from :mod:`dltoolkit.interpret.plots`) and ``save(out)``
writes it, every file atomically.

Files ``save`` writes:

* ``explanation.json``: everything, attributions included (image maps as nested lists);
* ``importance.csv``: the permutation importance (tabular models): feature, importance, std, repeats;
* ``attributions.csv``: one line per explained row, method and feature / step / token (not images);
* one PNG per figure: ``permutation_importance``, ``attributions_row<k>`` (tabular),
  ``image_attributions``, ``sequence_attributions`` or ``token_attributions``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from dltoolkit._files import atomic_write_text
from dltoolkit.errors import DLToolkitError

if TYPE_CHECKING:
    from matplotlib.figure import Figure


class ExplainError(DLToolkitError, ValueError):
    """An explanation cannot be made: a method that does not fit the model, or no model to explain."""


@dataclass
class RowExplanation:
    """One explained test row: what the model said, and what moved it, per method."""

    row: int  # position in the test split
    true: str  # the true class name or value
    predicted: str  # the predicted class name or value
    target: str  # what is attributed: "p(<class>)" or the predicted value
    output: float  # the attributed output for this row
    baseline_output: float  # the same output for the baseline (average training input)
    labels: list[str]  # what each value is for: columns, steps, tokens ([] for image maps)
    attributions: dict[str, np.ndarray]  # method -> (len(labels),) or an (H, W) map
    delta: dict[str, float] = field(default_factory=dict)  # method -> |Captum convergence delta|
    inputs: Any = None  # drawn beside the values: raw values, the image (C, H, W), the sequence (T, F)

    def to_dict(self) -> dict[str, Any]:
        return {
            "row": self.row,
            "true": self.true,
            "predicted": self.predicted,
            "target": self.target,
            "output": self.output,
            "baseline_output": self.baseline_output,
            "labels": self.labels,
            "attributions": {m: _plain(v) for m, v in self.attributions.items()},
            "convergence_delta": self.delta,
        }


@dataclass
class Explanation:
    """What drives a trained model: permutation importance (tabular) and per-row attributions.

    Example:
        >>> explanation = dltoolkit.explain("runs/wine")             # doctest: +SKIP
        >>> explanation.importance.head(3)                            # doctest: +SKIP
        >>> explanation.plot_row(0)                                   # doctest: +SKIP
        >>> explanation.save("runs/wine/explain")                     # doctest: +SKIP
    """

    name: str  # the spec's name
    kind: str  # tabular, image, sequence or text
    task: str  # binary, multiclass or regression
    methods: list[str]
    rows: list[RowExplanation]
    importance: pd.DataFrame | None = None  # permutation importance, most important first

    @property
    def scoring(self) -> str | None:
        """The score the permutation importance measures the drop of (None without one)."""
        return None if self.importance is None else self.importance.attrs.get("scoring")

    def attributions(self) -> pd.DataFrame:
        """The per-row attributions in long form: row, method, feature, value (not for images)."""
        records = [
            {"row": r.row, "method": m, "feature": label, "attribution": float(v)}
            for r in self.rows
            for m, values in r.attributions.items()
            if np.ndim(values) == 1
            for label, v in zip(r.labels, values, strict=True)
        ]
        return pd.DataFrame(records, columns=["row", "method", "feature", "attribution"])

    def to_dict(self) -> dict[str, Any]:
        """Everything as JSON-ready data."""
        importance = None
        if self.importance is not None:
            importance = [
                {"feature": str(f), **{k: float(v) for k, v in row.items()}}
                for f, row in self.importance.iterrows()
            ]
        return {
            "name": self.name,
            "kind": self.kind,
            "task": self.task,
            "methods": self.methods,
            "scoring": self.scoring,
            "permutation_importance": importance,
            "rows": [r.to_dict() for r in self.rows],
        }

    # ------------------------------------------------------------------ pictures
    def plot_importance(self, ax: Any = None, top: int = 20) -> Figure:
        """The permutation importance: mean drop with its spread over the repeats."""
        from dltoolkit.interpret.plots import PermutationImportanceDisplay

        return PermutationImportanceDisplay.from_explanation(self, top).plot(ax)

    def plot_row(self, i: int = 0, method: str | None = None, ax: Any = None, top: int = 12) -> Figure:
        """The top features of the ``i``-th explained row (tabular), by ``method`` (the first one)."""
        from dltoolkit.interpret.plots import FeatureAttributionDisplay

        return FeatureAttributionDisplay.from_row(self.rows[i], method or self.methods[0], top).plot(ax)

    def figures(self) -> dict[str, Figure]:
        """Every figure of this explanation, by the file name ``save`` gives it."""
        from dltoolkit.interpret.plots import figures_of

        return figures_of(self)

    def save(self, out: str | os.PathLike) -> dict[str, Path]:
        """Write the JSON, the CSVs and the PNGs into folder ``out`` (created), each atomically.

        Returns:
            Name -> path of every file written (figures under their figure names).
        """
        from dltoolkit.evaluate._figures import save_png

        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        files = {"explanation": out / "explanation.json"}
        atomic_write_text(files["explanation"], json.dumps(self.to_dict(), indent=1))
        if self.importance is not None:
            files["importance"] = out / "importance.csv"
            atomic_write_text(files["importance"], self.importance.to_csv(index_label="feature"))
        if self.kind != "image":
            files["attributions"] = out / "attributions.csv"
            atomic_write_text(files["attributions"], self.attributions().to_csv(index=False))
        for name, fig in self.figures().items():
            files[name] = save_png(fig, out / f"{name}.png")
        return files

    def _repr_html_(self) -> str:
        from dltoolkit._html import esc, table

        shown = ""
        if self.importance is not None:
            shown = table(self.importance[["importance", "std"]].head(10).round(4), index=True)
        return (
            f"<b>Explanation</b> of {esc(repr(self.name))} ({esc(self.kind)} {esc(self.task)} model): "
            f"{len(self.rows)} test rows by {esc(', '.join(self.methods))}{shown}"
        )


def _plain(values: np.ndarray) -> Any:
    """Attributions as lists of floats with 6 significant digits (the JSON stays small and exact enough)."""
    return np.vectorize(lambda v: float(f"{v:.6g}"), otypes=[float])(np.asarray(values)).tolist()
