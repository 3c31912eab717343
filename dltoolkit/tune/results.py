"""A sweep's results as plain data: trial records, the trial table, best/top-k, and the three plots.

Numbers first, then pictures: the plots take the records (or the table) and return a matplotlib
``Figure`` made without pyplot, so they work under Agg and keep no global state.

Example:
    >>> rec = TrialRecord("t1", {"train.optimizer.lr": 0.01}, "TERMINATED",
    ...                   rows=[{"epoch": 1, "val_acc": 0.5}, {"epoch": 2, "val_acc": 0.4}])
    >>> t = trial_table([rec], "val_acc", "max")
    >>> float(t.at[0, "best_val_acc"]), float(t.at[0, "last_val_acc"]), int(t.at[0, "epochs"])
    (0.5, 0.4, 2)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from matplotlib.figure import Figure


@dataclass
class TrialRecord:
    """One trial: its configuration, status, error message and per-epoch result rows."""

    trial_id: str
    config: dict[str, Any]
    status: str = "PENDING"  # PENDING, RUNNING, TERMINATED, ERROR; STOPPED: unfinished when stopped
    error: str | None = None
    rows: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    def best(self, metric: str, mode: str) -> tuple[float | None, int | None]:
        """(best value, its epoch) of ``metric`` over the reported epochs."""
        seen = [(r[metric], r["epoch"]) for r in self.rows if _finite(r.get(metric))]
        if not seen:
            return None, None
        return max(seen) if mode == "max" else min(seen)


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def trial_table(records: list[TrialRecord], metric: str, mode: str) -> pd.DataFrame:
    """One row per trial: id, status, config, best and last metric, best epoch, epochs, time, error."""
    rows = []
    for rec in records:
        best, best_epoch = rec.best(metric, mode)
        last = rec.rows[-1].get(metric) if rec.rows else None
        rows.append(
            {"trial_id": rec.trial_id, "status": rec.status}
            | dict(rec.config)
            | {
                f"best_{metric}": best,
                f"last_{metric}": last,
                "best_epoch": best_epoch,
                "epochs": max((r["epoch"] for r in rec.rows), default=0),
                "seconds": round(rec.seconds, 2),
                "error": rec.error,
            }
        )
    return pd.DataFrame(rows)


def ranked(records: list[TrialRecord], metric: str, mode: str) -> list[TrialRecord]:
    """Trials with at least one reported value, best first (by the best value each reported)."""
    scored = [(rec.best(metric, mode)[0], rec) for rec in records]
    scored = [(s, r) for s, r in scored if s is not None]
    scored.sort(key=lambda item: item[0], reverse=mode == "max")
    return [rec for _, rec in scored]


# --------------------------------------------------------------------------- plots
def _figure(figsize: tuple[float, float] = (6.5, 4.0)) -> tuple[Figure, Any]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="constrained")
    return fig, fig.subplots()


def curves_figure(records: list[TrialRecord], metric: str) -> Figure:
    """``metric`` against epochs, one line per trial."""
    fig, ax = _figure()
    for rec in records:
        points = [(r["epoch"], r[metric]) for r in rec.rows if _finite(r.get(metric))]
        if points:
            ax.plot(*zip(*points, strict=True), marker=".", label=rec.trial_id)
    ax.set(xlabel="epoch", ylabel=metric, title=f"{metric} per epoch, every trial")
    if 0 < len(ax.lines) <= 12:
        ax.legend(fontsize="x-small")
    return fig


def encode_params(table: pd.DataFrame, paths: list[str], log_paths: set[str]) -> pd.DataFrame:
    """Hyperparameters as numbers: log10 for log domains, category codes for non-numeric choices."""
    out = pd.DataFrame(index=table.index)
    for path in paths:
        column = table[path]
        numeric = pd.to_numeric(column, errors="coerce")
        if numeric.notna().all():
            out[path] = np.log10(numeric.astype(float)) if path in log_paths else numeric.astype(float)
        else:
            out[path] = pd.Categorical(column.astype(str)).codes.astype(float)
    return out


def parallel_figure(table: pd.DataFrame, paths: list[str], metric: str, log_paths: set[str]) -> Figure:
    """Parallel coordinates: each trial a line across its hyperparameters and its best metric."""
    fig, ax = _figure((max(5.0, 2.0 * (len(paths) + 1)), 4.0))
    column = f"best_{metric}"
    done = table[table[column].notna()] if column in table else table.iloc[:0]
    axes = [*paths, column]
    values = pd.concat([encode_params(done, paths, log_paths), done[[column]].astype(float)], axis=1)
    span = (values.max() - values.min()).replace(0, 1.0)
    scaled = (values - values.min()) / span
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    cmap = colormaps["viridis"]
    for i in range(len(scaled)):
        ax.plot(
            range(len(axes)), scaled.iloc[i].to_numpy(), color=cmap(float(scaled[column].iloc[i])), alpha=0.8
        )
    for x, name in enumerate(axes):  # each axis says what its bottom and top stand for
        ax.axvline(x, color="#999", linewidth=0.8, zorder=0)
        if len(values):
            low, high = values[name].min(), values[name].max()
            ax.annotate(
                _tick(done, name, low, log_paths),
                (x, 0),
                xytext=(0, -4),
                textcoords="offset points",
                ha="center",
                va="top",
                fontsize="x-small",
            )
            ax.annotate(
                _tick(done, name, high, log_paths),
                (x, 1),
                xytext=(0, 4),
                textcoords="offset points",
                ha="center",
                va="bottom",
                fontsize="x-small",
            )
    ax.set_xticks(range(len(axes)), [f"{a} (log)" if a in log_paths else a for a in axes], fontsize="small")
    ax.tick_params(axis="x", pad=14)
    ax.set_yticks([])
    ax.set_ylim(-0.08, 1.08)
    if len(values):
        scale = ScalarMappable(Normalize(values[column].min(), values[column].max()), cmap)
        fig.colorbar(scale, ax=ax, label=column, fraction=0.04, pad=0.02)
    ax.set_title(f"hyperparameters against {column}")
    return fig


def _tick(table: pd.DataFrame, name: str, value: float, log_paths: set[str]) -> str:
    """An axis end in the hyperparameter's own units (undoing log10 and category codes)."""
    if name in log_paths:
        return f"{10**value:.3g}"
    numeric = pd.to_numeric(table[name], errors="coerce")
    if numeric.notna().all():
        return f"{value:.4g}"
    categories = pd.Categorical(table[name].astype(str)).categories
    return str(categories[int(value)]) if 0 <= int(value) < len(categories) else ""


def importance(table: pd.DataFrame, paths: list[str], metric: str, log_paths: set[str]) -> pd.Series:
    """How much each hyperparameter explains the best metric: a random forest's impurity importances.

    Fewer than three finished trials give zeros (there is nothing to explain yet).
    """
    column = f"best_{metric}"
    done = table[table[column].notna()] if column in table else table.iloc[:0]
    if len(done) < 3 or not paths:
        return pd.Series(0.0, index=paths, name="importance")
    from sklearn.ensemble import RandomForestRegressor

    X = encode_params(done, paths, log_paths).to_numpy()
    forest = RandomForestRegressor(n_estimators=100, random_state=0).fit(X, done[column].astype(float))
    return pd.Series(forest.feature_importances_, index=paths, name="importance").sort_values()


def importance_figure(table: pd.DataFrame, paths: list[str], metric: str, log_paths: set[str]) -> Figure:
    """Horizontal bars of :func:`importance`."""
    column = f"best_{metric}"
    finished = int(table[column].notna().sum()) if column in table else 0
    if finished < 3 or not paths:  # nothing to explain yet: say so rather than draw empty bars
        fig, ax = _figure((6.0, 1.6))
        ax.axis("off")
        ax.text(
            0.5,
            0.5,
            f"Importance needs more trials: at least 3 with a {metric}, {finished} so far.",
            ha="center",
            va="center",
            fontsize="small",
            wrap=True,
        )
        return fig
    scores = importance(table, paths, metric, log_paths)
    fig, ax = _figure((6.0, 1.0 + 0.5 * max(1, len(scores))))
    ax.barh(list(scores.index), scores.to_numpy())
    ax.set(xlabel="importance (random forest on the trials)", title=f"what drives best_{metric}")
    return fig
