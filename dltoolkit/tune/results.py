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

import contextlib
import math
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from dltoolkit.errors import unknown

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from dltoolkit.tune.space import Domain


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
    scored: list[tuple[float, TrialRecord]] = []
    for rec in records:
        score = rec.best(metric, mode)[0]
        if score is not None:
            scored.append((score, rec))
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


EVALUATORS = ("ped_anova", "fanova")  # Optuna's importance evaluators, by the name ``importance`` takes


def importance(
    table: pd.DataFrame, space: dict[str, Domain], metric: str, mode: str, evaluator: str = "ped_anova"
) -> pd.Series:
    """How much each hyperparameter explains the best metric, from Optuna's importance evaluator.

    The finished trials of the table become an in-memory Optuna study (one ``create_trial`` each,
    its distributions from the search space, its value the trial's best ``metric``) that
    :func:`optuna.importance.get_param_importances` evaluates with PED-ANOVA (default: it works
    with a handful of trials, measuring which values the best trials share) or fANOVA (variance
    decomposition over a random forest, better with many trials). The scores sum to 1; fewer than
    three finished trials give zeros (there is nothing to explain yet).

    Returns:
        One score per path, sorted ascending (the order horizontal bars are drawn in).

    Raises:
        UnknownNameError: ``evaluator`` is not one of :data:`EVALUATORS`.
    """
    if evaluator not in EVALUATORS:
        raise unknown("importance evaluator", evaluator, EVALUATORS)
    column = f"best_{metric}"
    done = table[table[column].notna()] if column in table else table.iloc[:0]
    paths = list(space)
    if len(done) < 3 or not paths:
        return pd.Series(0.0, index=paths, name="importance")
    import optuna

    with _quiet_optuna(optuna):  # also no "A new study created in memory" line
        study = optuna.create_study(direction="maximize" if mode == "max" else "minimize")
        distributions = {p: _distribution(space[p], done[p]) for p in paths}
        for _, row in done.iterrows():
            params = {p: _param(space[p], row[p]) for p in paths}
            study.add_trial(
                optuna.trial.create_trial(
                    params=params, distributions=distributions, value=float(row[column])
                )
            )
        scores = optuna.importance.get_param_importances(study, evaluator=_evaluator(evaluator))
    return pd.Series({p: float(scores.get(p, 0.0)) for p in paths}, name="importance").sort_values()


def _distribution(domain: Domain, values: pd.Series) -> Any:
    """The Optuna distribution of a search domain, widened to the values the trials really took
    (Ray's ``quniform`` can round just past ``high``); choices are compared as text."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if domain.discrete:
        return CategoricalDistribution(tuple(dict.fromkeys(str(v) for v in domain.args[0])))
    low, high = domain.args[0], domain.args[1]
    if domain.name in ("randint", "lograndint"):  # Ray's integer ranges exclude high
        low, high = min(int(low), int(values.min())), max(int(high) - 1, int(values.max()))
        return IntDistribution(low, max(low, high), log=domain.name == "lograndint")
    low, high = min(float(low), float(values.min())), max(float(high), float(values.max()))
    return FloatDistribution(low, high, log=domain.name == "loguniform")


def _param(domain: Domain, value: Any) -> Any:
    if domain.discrete:
        return str(value)
    return int(value) if domain.name in ("randint", "lograndint") else float(value)


def _evaluator(name: str) -> Any:
    from optuna.exceptions import ExperimentalWarning
    from optuna.importance import FanovaImportanceEvaluator, PedAnovaImportanceEvaluator

    with warnings.catch_warnings():  # PED-ANOVA is "experimental" in optuna 4 (stable in 5)
        warnings.simplefilter("ignore", ExperimentalWarning)
        return PedAnovaImportanceEvaluator() if name == "ped_anova" else FanovaImportanceEvaluator(seed=0)


@contextlib.contextmanager
def _quiet_optuna(optuna: Any) -> Iterator[None]:
    """No Optuna log lines ("A new study created", "All trials are in top trials"): the figure
    says what the scores are. (Optuna's level is process-wide: a local sweep's own study is
    created with its lines off too, see dltoolkit.tune.local.)"""
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(verbosity)


def importance_figure(
    table: pd.DataFrame, space: dict[str, Domain], metric: str, mode: str, evaluator: str = "ped_anova"
) -> Figure:
    """Horizontal bars of :func:`importance`."""
    column = f"best_{metric}"
    finished = int(table[column].notna().sum()) if column in table else 0
    if finished < 3 or not space:  # nothing to explain yet: say so rather than draw empty bars
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
    scores = importance(table, space, metric, mode, evaluator)
    fig, ax = _figure((6.0, 1.0 + 0.5 * max(1, len(scores))))
    ax.barh(list(scores.index), scores.to_numpy())
    label = {"ped_anova": "PED-ANOVA", "fanova": "fANOVA"}[evaluator]
    ax.set(xlabel=f"importance (Optuna {label} over {finished} trials)", title=f"what drives best_{metric}")
    return fig
