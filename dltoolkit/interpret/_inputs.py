"""What an explanation starts from: the model's kind, the test rows it is explained on, a baseline.

The test rows are those ``run`` evaluated the bundle on: the spec's data (or the ``data`` passed,
as ``run`` and ``export --data`` take it) split by the spec's seeded split. They go through the
bundle's own fitted preprocessing, never a refitted one, so the explanation is of the model as saved.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from dltoolkit.bundle import Predictor, _to_output
from dltoolkit.errors import DataError, message
from dltoolkit.interpret.explanation import ExplainError

KINDS = ("tabular", "image", "sequence", "text")
BASELINE_ROWS = 2000  # the average training input is taken over at most this many rows


def model_kind(model: Predictor) -> str:
    """``text`` (token ids), ``image`` (inputs ``(channels, height, width)``), ``sequence``
    (``(steps, features)``) or ``tabular`` (a flat row of features)."""
    pre = model.preprocessor
    if pre.vocab_ is not None:
        return "text"
    return {3: "image", 2: "sequence"}.get(len(pre.input_shape), "tabular")


def as_predictor(model: Any) -> Predictor:
    """A Predictor from a Predictor, a Run, or a bundle / run folder path."""
    from dltoolkit.bundle import load

    if isinstance(model, str | os.PathLike):
        path = Path(model)
        model = load(path / "model" if (path / "model").is_dir() else path)
    elif hasattr(model, "predictor") and hasattr(model, "bundle"):  # a Run
        model = model.predictor
    if isinstance(model, Predictor):
        return model
    what = type(model).__name__
    fix = (
        "Explain one of its members (ensemble.members[i]) or the best trial's bundle."
        if what == "Ensemble"
        else "Pass a model bundle folder, a run folder, dltoolkit.load(...) or the result of dltoolkit.run."
    )
    raise ExplainError(
        message("Cannot explain this", what, "one trained model (a Predictor or a bundle)", fix)
    )


@dataclass
class Rows:
    """The test split of the bundle's data, raw and as the model's input tensor."""

    raw: pd.DataFrame  # the model's input columns, original values
    y: np.ndarray  # raw target: original labels or values
    y_index: np.ndarray | None  # class indices (classification), else None
    x: torch.Tensor  # the bundle's preprocessing of ``raw``
    baseline: torch.Tensor  # (1, *input_shape): the average training input; pad tokens for text


def load_rows(model: Predictor, data: Any = None) -> Rows:
    """The test rows the spec's split draws from ``data`` (default: the spec's own source).

    Raises:
        DataError: the data lacks the bundle's input columns, or its labels are not the bundle's.
    """
    from dltoolkit.data._columns import require_columns
    from dltoolkit.data.load import _read_csv, load_raw
    from dltoolkit.data.prepare import split_positions
    from dltoolkit.data.target import check_target

    spec = model.spec
    if isinstance(data, str | os.PathLike):
        data = _read_csv(Path(data), spec.data.options)
    columns = model.input_columns
    try:
        X, y = load_raw(spec, data)
        y = check_target(y, spec.task)
        require_columns([str(c) for c in X.columns], columns, "the data")
    except DataError as e:
        if data is None:
            raise
        raise DataError(f"The data does not fit the bundle {spec.name!r}. {e}") from None
    train, _, test = split_positions(spec, y)
    raw = X.iloc[test][columns].reset_index(drop=True)
    y_test = y.iloc[test].to_numpy()
    y_index = _class_indices(model, y_test) if spec.task.is_classification else None
    with warnings.catch_warnings():  # unseen categories: the explanation shows the model as it is
        warnings.simplefilter("ignore")
        x = model.transform(raw)
        assert isinstance(x, torch.Tensor), "rows in a frame are transformed in memory"
        baseline = _baseline(model, X.iloc[train][columns])
    return Rows(raw, y_test, y_index, x, baseline)


def _class_indices(model: Predictor, y: np.ndarray) -> np.ndarray:
    try:
        return model.target.transform(y)
    except DataError as e:
        raise DataError(
            f"The data does not fit the bundle {model.spec.name!r}: its test labels are not the "
            f"model's classes {model.target.classes_}. {e}"
        ) from None


def _baseline(model: Predictor, train: pd.DataFrame) -> torch.Tensor:
    if model.preprocessor.vocab_ is not None:
        return torch.zeros((1, *model.preprocessor.input_shape), dtype=torch.int64)  # all <pad>
    rows = train.sample(BASELINE_ROWS, random_state=0) if len(train) > BASELINE_ROWS else train
    x = model.transform(rows)
    assert isinstance(x, torch.Tensor), "rows in a frame are transformed in memory"
    return x.mean(0, keepdim=True)


def forward_of(model: Predictor) -> Any:
    """The function attributed: class probabilities ``(n, C)`` (a binary model's single logit as
    ``[1 - p, p]``), or the prediction ``(n,)`` in the target's original units (regression)."""
    kind = model.spec.task.kind
    center, spread = model.target.scale_params

    def forward(x: torch.Tensor) -> torch.Tensor:
        out = _to_output(model.model(x), kind)
        return out * spread + center if kind == "regression" else out

    return forward


def check_rows(rows: int | list[int], n: int) -> list[int]:
    """Test positions to explain: the first ``rows`` ones, or the positions given."""
    whole = (int, np.integer)
    if isinstance(rows, whole) and not isinstance(rows, bool) and rows >= 1:
        return list(range(min(int(rows), n)))
    if isinstance(rows, list | tuple) and rows and all(isinstance(r, whole) and 0 <= r < n for r in rows):
        return [int(r) for r in rows]
    raise ExplainError(
        message(
            "Cannot pick these test rows",
            rows,
            f"a count >= 1 or a list of positions in the test split (0..{n - 1})",
        )
    )
