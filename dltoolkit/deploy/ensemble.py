"""Ensembles of trained models: averaging, greedy selection, evaluation and the ensemble bundle.

An :class:`Ensemble` behaves like a :class:`~dltoolkit.bundle.Predictor` on raw rows: each member
applies its own preprocessing, then the members' probabilities (classification) or predictions in
original units (regression) are combined by a weighted mean (or, for classification, a weighted
vote). ``greedy_selection`` is Caruana et al.'s (2004) forward selection with replacement on the
validation split. An ensemble bundle is a directory with ``bundle.json`` (``"kind": "ensemble"``),
``metrics.json`` and one model bundle per member in ``members/0``, ``members/1``...

Example:
    >>> ens = Ensemble(["runs/a/model", "runs/b/model"])              # doctest: +SKIP
    >>> X_val, y_val = raw_split(ens.spec, "val")                     # doctest: +SKIP
    >>> best = greedy_selection(ens.members, X_val, y_val, rounds=10)  # doctest: +SKIP
    >>> save_ensemble("runs/ensemble", best)                          # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from dltoolkit._files import atomic_dir
from dltoolkit.bundle import FORMAT, Predictor, load, read_meta, read_rows, save_bundle
from dltoolkit.data._rows import Column, InputWarning, check_rows, schema_of
from dltoolkit.errors import DLToolkitError, SpecError, message, unknown
from dltoolkit.spec import Spec

METHODS = ("mean", "vote")
Member = Predictor | str | os.PathLike


class Ensemble:
    """Several trained models answering as one.

    Args:
        members: Predictors or model bundle paths; all of one task kind, the same classes (for
            classification) and the same raw feature columns (in any order).
        weights: One non-negative weight per member (default: equal weights).
        method: ``"mean"``: weighted mean of probabilities or predictions; ``"vote"``
            (classification): weighted share of the members' predicted classes.
        metrics: Test metrics, as a Predictor carries them (set by :func:`evaluate_ensemble`).
        path: The bundle directory it was loaded from, if any.

    Example:
        >>> ens = Ensemble([model_a, model_b], weights=[2, 1])  # doctest: +SKIP
        >>> ens.predict_proba(raw_rows)                        # doctest: +SKIP
    """

    selection_scores_: list[float]  # the score after each round, set by greedy_selection

    def __init__(
        self,
        members: Sequence[Member],
        weights: Sequence[float] | None = None,
        method: str = "mean",
        metrics: dict[str, Any] | None = None,
        path: Path | None = None,
    ) -> None:
        self.members = [_member(m) for m in _non_empty(members)]
        self.weights = _weights(weights, len(self.members))
        self.method = _method(method, self.members[0].spec.task.kind)
        self.metrics = metrics or {}
        self.path = path
        _check_compatible(self.members)

    # ---------------------------------------------------------------- what a Predictor offers
    @property
    def spec(self) -> Spec:
        """The first member's spec (the members share the task and the data)."""
        return self.members[0].spec

    @property
    def kind(self) -> str:
        return self.spec.task.kind

    @property
    def classes(self) -> list[str] | None:
        return self.members[0].classes

    @property
    def input_columns(self) -> list[str]:
        """The raw columns every member takes, in order (see :attr:`Predictor.input_columns`)."""
        return self.members[0].input_columns

    @property
    def feature_columns(self) -> list[str]:
        """The same as :attr:`input_columns`."""
        return self.input_columns

    @property
    def input_schema(self) -> list[Column]:
        """The input columns as for a Predictor; a category is known when any member knows it."""
        return schema_of([m.preprocessor for m in self.members])

    def check_inputs(self, X: Any) -> tuple[pd.DataFrame, list[str]]:
        """Raw rows checked as ``Predictor.check_inputs`` checks them (members share their columns)."""
        return check_rows(self.members[0].preprocessor.frame(read_rows(X)), self.input_schema)

    def output(self, X: Any, *, checked: bool = False) -> np.ndarray:
        """Combined probabilities (n, C) for classification, predictions (n,) in original units.

        ``checked``: ``X`` already came from :meth:`check_inputs` (no second check, no warning).
        """
        rows = X
        if not checked:
            rows, notes = self.check_inputs(X)
            for note in notes:
                warnings.warn(note, InputWarning, stacklevel=3)
        outs = []
        for m in self.members:
            out = m.output(torch.from_numpy(m.preprocessor.transform(rows)))
            outs.append(out if m.classes else m.target.inverse(out))
        return combine(outs, self.weights, self.method)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, columns in the order of ``classes``."""
        if self.classes is None:
            raise DLToolkitError(
                "predict_proba is for classification; this ensemble does regression: use predict()."
            )
        return self.output(X).astype(np.float32)

    def predict(self, X: Any) -> np.ndarray:
        """Original labels (classification) or values in the target's original units (regression)."""
        out = self.output(X)
        if self.classes is None:
            return out
        return self.members[0].target.inverse(out.argmax(1))

    def example_input(self, n: int = 3) -> pd.DataFrame:
        return self.members[0].example_input(n)

    def __repr__(self) -> str:
        return f"Ensemble({len(self.members)} members, method={self.method!r}, weights={self.weights})"


def combine(outputs: Sequence[np.ndarray], weights: Sequence[float], method: str = "mean") -> np.ndarray:
    """Weighted mean of the members' outputs; ``vote`` turns each into a one-hot of its argmax first."""
    w = np.asarray(weights, dtype=np.float64)
    total = np.zeros_like(np.asarray(outputs[0], dtype=np.float64))
    for weight, out in zip(w, outputs, strict=True):
        out = np.asarray(out, dtype=np.float64)
        if method == "vote":
            out = np.eye(out.shape[1])[out.argmax(1)]
        total += weight * out
    return total / w.sum()


# ---------------------------------------------------------------------- checks
def _non_empty(members: Sequence[Member]) -> list[Member]:
    if isinstance(members, str | os.PathLike | Predictor) or len(members) == 0:
        raise SpecError(
            message("An ensemble needs a list of members", members, "a non-empty list of Predictors or paths")
        )
    return list(members)


def _member(member: Member) -> Predictor:
    """A member as a Predictor (a path loads); an ensemble bundle cannot be a member."""
    if isinstance(member, Predictor):
        return member
    loaded = load(member)
    if not isinstance(loaded, Predictor):
        raise SpecError(
            message(
                "An ensemble member is itself an ensemble",
                str(member),
                "a single model's bundle",
                "Pass that ensemble's members (ensemble.members) instead.",
            )
        )
    return loaded


def _weights(weights: Sequence[float] | None, n: int) -> list[float]:
    if weights is None:
        return [1.0] * n
    values = [float(w) for w in weights]
    if len(values) != n or min(values) < 0 or sum(values) <= 0 or not np.isfinite(values).all():
        raise SpecError(
            message(
                "Invalid ensemble weights",
                list(weights),
                f"{n} finite non-negative numbers with a positive sum",
                "Give one weight per member or leave weights out.",
            )
        )
    return values


def _method(method: str, kind: str) -> str:
    if method not in METHODS:
        raise unknown("ensemble method", method, METHODS)
    if method == "vote" and kind == "regression":
        raise SpecError(
            message("Voting needs classification", kind, "a binary or multiclass task", "Use 'mean'.")
        )
    return method


def _check_compatible(members: list[Predictor]) -> None:
    first = members[0]
    for i, m in enumerate(members[1:], start=1):
        for what, a, b in (
            ("task kind", first.spec.task.kind, m.spec.task.kind),
            ("classes", first.classes, m.classes),
            ("feature columns", sorted(first.feature_columns), sorted(m.feature_columns)),
        ):
            if a != b:
                raise SpecError(
                    message(
                        f"Ensemble member {i} differs from member 0 in its {what}",
                        b,
                        f"{a} like member 0",
                        "Combine models trained on the same task and data.",
                    )
                )


# ---------------------------------------------------------------------- greedy selection
def _log_loss(y: np.ndarray, out: np.ndarray) -> float:
    p = np.clip(out[np.arange(len(y)), y], 1e-12, 1.0)
    return float(-np.log(p).mean())


SCORES: dict[str, tuple[Callable[[np.ndarray, np.ndarray], float], bool]] = {
    # name: (score(y, output), lower is better)
    "log_loss": (_log_loss, True),
    "accuracy": (lambda y, out: float((out.argmax(1) == y).mean()), False),
    "mse": (lambda y, out: float(((out - y) ** 2).mean()), True),
    "mae": (lambda y, out: float(np.abs(out - y).mean()), True),
}


def greedy_selection(
    members: Sequence[Member],
    X_val: Any,
    y_val: Any,
    rounds: int = 10,
    *,
    metric: str = "auto",
    method: str = "mean",
) -> Ensemble:
    """Caruana's greedy ensemble selection with replacement on the validation split.

    Each round adds the member (again, if it is already in) whose addition gives the best
    validation score; the ensemble after the best round is returned, with each member weighted
    by how often it was picked (members never picked are left out).

    Args:
        members: Predictors or bundle paths.
        X_val: Raw validation rows (original columns), e.g. from :func:`raw_split`.
        y_val: Raw validation targets: original labels or values.
        rounds: Picks to make (at least 1).
        metric: ``"auto"`` (log_loss for classification, mse for regression) or one of ``SCORES``.

    Example:
        >>> ens = greedy_selection(models, *raw_split(models[0].spec, "val"), rounds=20)  # doctest: +SKIP
    """
    pool = Ensemble(members)  # checks compatibility once
    if not isinstance(rounds, int) or rounds < 1:
        raise SpecError(message("Invalid number of selection rounds", rounds, "an integer >= 1"))
    score, lower = _score(metric, pool.classes is not None)
    rows, _ = pool.check_inputs(X_val)
    y = _encoded_target(pool, y_val)
    outs = [Ensemble([m]).output(rows, checked=True) for m in pool.members]
    counts, total = np.zeros(len(outs)), np.zeros_like(outs[0])
    best_value, best_counts, scores = None, None, []
    for _ in range(rounds):
        trial = [score(y, (total + out) / (counts.sum() + 1)) for out in outs]
        pick = int(np.argmin(trial) if lower else np.argmax(trial))
        counts[pick] += 1
        total += outs[pick]
        scores.append(trial[pick])
        if best_value is None or (trial[pick] < best_value if lower else trial[pick] > best_value):
            best_value, best_counts = trial[pick], counts.copy()
    assert best_counts is not None  # rounds >= 1: the first round always sets it
    keep = np.flatnonzero(best_counts)
    ensemble = Ensemble([pool.members[i] for i in keep], best_counts[keep].tolist(), method)
    ensemble.selection_scores_ = scores
    return ensemble


def _score(metric: str, classification: bool) -> tuple[Callable, bool]:
    if metric == "auto":
        metric = "log_loss" if classification else "mse"
    if metric not in SCORES:
        raise unknown("selection metric", metric, SCORES)
    if (metric in ("log_loss", "accuracy")) != classification:
        raise SpecError(
            message("The selection metric does not fit the task", metric, "a metric of this task")
        )
    return SCORES[metric]


def _encoded_target(ensemble: Ensemble, y: Any) -> np.ndarray:
    values = np.asarray(y)
    if ensemble.classes is None:
        return values.astype(np.float64)
    return ensemble.members[0].target.transform(values)


# ---------------------------------------------------------------------- data and evaluation
def raw_split(spec: Spec, role: str = "val", data: Any = None) -> tuple[pd.DataFrame, np.ndarray]:
    """The raw rows and targets of one split (``train``, ``val`` or ``test``) as ``prepare`` draws it."""
    from dltoolkit.data.load import load_raw
    from dltoolkit.data.prepare import split_positions
    from dltoolkit.data.target import check_target

    roles = ("train", "val", "test")
    if role not in roles:
        raise unknown("split", role, roles)
    X, y = load_raw(spec, data)
    y = check_target(y, spec.task)
    rows = dict(zip(roles, split_positions(spec, y), strict=True))[role]
    return X.iloc[rows].copy(), y.iloc[rows].to_numpy()


def evaluate_ensemble(
    ensemble: Ensemble, X: Any, y: Any, *, plots: str | os.PathLike | None = None
) -> dict[str, Any]:
    """Test metrics of ``ensemble`` with dltoolkit.evaluate (and its plots into ``plots`` if given).

    ``y`` holds raw targets (original labels or values). The metrics are stored on the ensemble.
    """
    from dltoolkit.evaluate import evaluate, save_plots

    output = ensemble.output(X)
    y_true = _encoded_target(ensemble, y)
    metrics = evaluate(ensemble.kind, y_true, output, ensemble.classes)
    if plots is not None:
        save_plots(Path(plots), ensemble.kind, None, y_true, output, ensemble.classes)
    ensemble.metrics = metrics
    return metrics


# ---------------------------------------------------------------------- the ensemble bundle
def save_ensemble(path: str | os.PathLike, ensemble: Ensemble) -> Path:
    """Write ``ensemble`` as a bundle directory at ``path`` atomically (replacing an old one)."""
    path = Path(path)
    with atomic_dir(path) as tmp:
        for i, member in enumerate(ensemble.members):
            save_bundle(tmp / "members" / str(i), member)
        (tmp / "metrics.json").write_text(json.dumps(ensemble.metrics, indent=2))
        meta = {
            "format": FORMAT,
            "kind": "ensemble",
            "method": ensemble.method,
            "weights": ensemble.weights,
            "members": len(ensemble.members),
            "torch": torch.__version__,
        }
        (tmp / "bundle.json").write_text(json.dumps(meta, indent=2))
    return path


def bundle_kind(path: str | os.PathLike) -> str | None:
    """``"model"`` or ``"ensemble"`` from a bundle's ``bundle.json``; None when there is none."""
    meta = Path(path) / "bundle.json"
    if not meta.is_file():
        return None
    try:
        return json.loads(meta.read_text()).get("kind", "model")
    except (json.JSONDecodeError, AttributeError) as e:
        raise DLToolkitError(message("Unreadable bundle.json", str(meta), "a JSON object")) from e


def load_ensemble(path: str | os.PathLike) -> Ensemble:
    """Open an ensemble bundle written by :func:`save_ensemble`."""
    path = Path(path)
    if bundle_kind(path) != "ensemble":
        raise DLToolkitError(
            message(
                "Not an ensemble bundle",
                str(path),
                "a directory whose bundle.json says kind 'ensemble'",
                "Use dltoolkit.load for a single model, or save_ensemble() to write one.",
            )
        )
    meta = read_meta(path)
    members = [_member(path / "members" / str(i)) for i in range(int(meta["members"]))]
    metrics_file = path / "metrics.json"
    metrics = json.loads(metrics_file.read_text()) if metrics_file.is_file() else {}
    return Ensemble(members, meta["weights"], meta["method"], metrics, path)
