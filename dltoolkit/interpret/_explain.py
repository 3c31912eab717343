"""``explain``: a bundle and its data to an :class:`~dltoolkit.interpret.explanation.Explanation`
(see :mod:`dltoolkit.interpret`)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from dltoolkit.bundle import Predictor
from dltoolkit.interpret._inputs import Rows, as_predictor, check_rows, forward_of, load_rows, model_kind
from dltoolkit.interpret.explanation import Explanation, RowExplanation

ROWS = {"tabular": 3, "image": 4, "sequence": 3, "text": 4}  # test rows explained by default


def explain(
    model: Any,
    data: Any = None,
    *,
    rows: int | Sequence[int] | None = None,
    methods: Sequence[str] | None = None,
    repeats: int = 5,
    scoring: str | None = None,
    seed: int = 0,
) -> Explanation:
    """Explain a trained model on its test split.

    Args:
        model: a model bundle or run folder, ``dltoolkit.load(...)``, or a ``dltoolkit.run`` result.
        data: the data the model was trained from, as ``run`` takes it (None: the spec's own
            ``data.source``; a DataFrame, ``(X, y)`` arrays or a CSV path); its test split (the
            spec's seeded split) is explained.
        rows: how many test rows to attribute (the first ones), or their positions in the test split.
        methods: attribution methods (default: Integrated Gradients; for images also Saliency and
            Grad-CAM). ``kernel_shap`` for tabular models, ``saliency``, ``gradcam``.
        repeats: shuffles per column for the permutation importance (tabular).
        scoring: the score the permutation importance measures (a scikit-learn scorer name; default
            accuracy, or R² for regression).
        seed: seeds the shuffles and KernelSHAP's samples.

    Returns:
        The :class:`~dltoolkit.interpret.explanation.Explanation`: ``importance`` (tabular), ``rows``
        (one :class:`~dltoolkit.interpret.explanation.RowExplanation` per attributed test row),
        ``figures()`` and ``save(out)``.

    Raises:
        ExplainError: an ensemble, or a method that does not fit the model (the message lists those that do).
        DataError: the data does not fit the bundle (missing input columns, unknown labels).

    Example:
        >>> e = dltoolkit.explain("runs/wine", rows=[0, 5])          # doctest: +SKIP
        >>> e.importance[["importance", "std"]].head(3)               # doctest: +SKIP
        >>> e.rows[0].attributions["integrated_gradients"]            # doctest: +SKIP
    """
    from dltoolkit._extras import require
    from dltoolkit.interpret.attribution import check_method, default_methods

    if methods is None or len(methods):  # attributions are Captum's; permutation importance needs none
        require("explain", "dltoolkit.explain")
    predictor = as_predictor(model)
    kind = model_kind(predictor)
    methods = list(methods) if methods is not None else default_methods(kind, predictor.model)
    for name in methods:
        check_method(name, kind, predictor.model)  # before any work
    with _threads(predictor.spec.train.threads):
        return _explain(predictor, kind, methods, data, rows, repeats, scoring, seed)


@contextlib.contextmanager
def _threads(n: int | None) -> Iterator[None]:
    """Torch threads as the spec trains with (1 by default: small models are overhead-bound, and
    more threads than free cores make each tiny forward pass wait), restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(n or before)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _explain(
    predictor: Predictor,
    kind: str,
    methods: list[str],
    data: Any,
    rows: int | Sequence[int] | None,
    repeats: int,
    scoring: str | None,
    seed: int,
) -> Explanation:
    from dltoolkit.interpret.attribution import Context, attribute, feature_groups

    split = load_rows(predictor, data)
    wanted = ROWS[kind] if rows is None else rows if isinstance(rows, int | np.integer | str) else list(rows)
    chosen = check_rows(wanted, len(split.raw))
    importance = None
    if kind == "tabular":
        from dltoolkit.interpret.permutation import permutation_importance

        y = split.y_index if split.y_index is not None else split.y
        importance = permutation_importance(
            predictor, split.raw, y, repeats=repeats, scoring=scoring, seed=seed
        )
    x = split.x[chosen]
    forward = forward_of(predictor)
    with torch.no_grad():
        out, base = forward(x), forward(split.baseline)
    target = out.argmax(1) if out.ndim == 2 else None
    groups = feature_groups(predictor.preprocessor) if kind == "tabular" else np.zeros(0, int)
    ctx = Context(predictor.model, forward, x, split.baseline, target, kind, groups, seed)
    results = {name: attribute(name, ctx) for name in methods}
    explained = [
        _row(predictor, kind, split, pos, i, out, base, target, results) for i, pos in enumerate(chosen)
    ]
    return Explanation(predictor.spec.name, kind, predictor.spec.task.kind, methods, explained, importance)


def _row(
    predictor: Predictor,
    kind: str,
    split: Rows,
    pos: int,
    i: int,
    out: torch.Tensor,
    base: torch.Tensor,
    target: torch.Tensor | None,
    results: dict[str, tuple[np.ndarray, np.ndarray | None]],
) -> RowExplanation:
    """One explained row: labels, values and deltas per method, what to draw beside them."""
    names = predictor.spec.task.class_names or predictor.classes
    if target is not None:  # classification: the split has class indices
        assert split.y_index is not None and names is not None
        k = int(target[i])
        true, predicted = names[int(split.y_index[pos])], names[k]
        output, baseline_output, what = float(out[i, k]), float(base[0, k]), f"p({names[k]})"
    else:
        true, predicted = f"{float(split.y[pos]):.4g}", f"{float(out[i]):.4g}"
        output, baseline_output, what = float(out[i]), float(base[0]), "the prediction"
    labels, inputs = _labels(predictor, kind, split, pos)
    values = {m: _trim(v[i], len(labels), kind) for m, (v, _) in results.items()}
    delta = {m: float(d[i]) for m, (_, d) in results.items() if d is not None}
    return RowExplanation(pos, str(true), str(predicted), what, output, baseline_output, labels, values,
                          delta, inputs)  # fmt: skip


def _labels(predictor: Predictor, kind: str, split: Rows, pos: int) -> tuple[list[str], Any]:
    """What each value is for (columns, steps, tokens) and what to draw beside the values."""
    x = split.x[pos].numpy()
    raw = split.raw.iloc[pos]
    if kind == "tabular":
        return list(predictor.input_columns), raw.to_numpy(dtype=object)
    if kind in ("image", "sequence"):  # the picture in its own units (pixels), not standardised
        values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float)
        shown = values.reshape(x.shape) if values.size == x.size and np.isfinite(values).all() else x
        return ([f"t{t}" for t in range(x.shape[0])] if kind == "sequence" else []), shown
    vocab = predictor.preprocessor.vocab_
    assert vocab is not None  # text: the preprocessor's fitted vocabulary
    ids = [int(t) for t in x]
    while ids and ids[-1] == 0:  # trailing <pad> tokens attribute nothing (they are the baseline)
        ids.pop()
    return [vocab[t] for t in ids], np.asarray(ids)


def _trim(values: np.ndarray, n: int, kind: str) -> np.ndarray:
    return values if kind in ("image", "tabular") else values[:n]
