"""The folded graph: one torch module doing a bundle's preprocessing, network and output mapping.

:class:`FoldedModel` takes the numeric columns as raw float32 ``features`` (and, for a model with
categorical columns, their one-hot / ordinal codes as a float32 ``encoded`` tensor computed in
front of it: ONNX-ML ops in :mod:`dltoolkit.deploy._onnx`, scripted encoders in
:mod:`dltoolkit.deploy._scripted`), or a text model's token ids. Kept apart so that importing
``dltoolkit.deploy`` (and the command line) does not import torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from dltoolkit.bundle import Predictor, _to_output
from dltoolkit.deploy._inputs import InputLayout
from dltoolkit.deploy.ensemble import Ensemble

if TYPE_CHECKING:
    import pandas as pd


class FoldedModel(nn.Module):
    """One model with its preprocessing and output mapping: raw inputs in, outputs out.

    Args:
        predictor: The model.
        columns: The numeric columns of the ``features`` input, in order (default: the model's own
            feature columns; an ensemble passes its shared order).
        layout: Where the model's categorical codes sit in ``encoded`` or its token ids in the
            token-id input (needed for a model with categorical or text columns).
    """

    # the buffers __init__ registers (nn.Module's __getattr__ types them Tensor | Module); a text model has
    # perm alone. Class annotations are fine here: the module is traced or exported, never scripted
    perm: torch.Tensor
    fill: torch.Tensor
    imputes: torch.Tensor
    scale: torch.Tensor
    offset: torch.Tensor
    order: torch.Tensor

    def __init__(
        self, predictor: Predictor, columns: list[str] | None = None, layout: InputLayout | None = None
    ) -> None:
        super().__init__()
        pre, target = predictor.preprocessor, predictor.target
        self.text = pre.vocab_ is not None
        if self.text:
            self._token_inputs(pre, layout)
        else:
            self._tabular_inputs(pre, columns, layout)
        self.shape = tuple(pre.input_shape)
        self.kind = predictor.spec.task.kind
        self.center = float(target.center_) if self.kind == "regression" else 0.0
        self.spread = float(target.spread_) if self.kind == "regression" else 1.0
        self.model = predictor.model.eval()

    def _tabular_inputs(self, pre: Any, columns: list[str] | None, layout: InputLayout | None) -> None:
        numeric = [plan for plan in pre.columns_ if plan["kind"] == "numeric"]
        names = [plan["name"] for plan in numeric]
        perm = [columns.index(c) for c in names] if columns else list(range(len(names)))
        fills = [plan["fill"] for plan in numeric]
        self.register_buffer("perm", torch.tensor(perm, dtype=torch.int64))
        self.register_buffer(
            "fill", torch.tensor([np.nan if f is None else f for f in fills], dtype=torch.float64)
        )
        self.register_buffer("imputes", torch.tensor([f is not None for f in fills], dtype=torch.bool))
        self.register_buffer("scale", torch.tensor([p["scale"] for p in numeric], dtype=torch.float64))
        self.register_buffer("offset", torch.tensor([p["offset"] for p in numeric], dtype=torch.float64))
        self.categorical = len(numeric) < len(pre.columns_)
        if self.categorical:  # each output feature: a numeric column's index or len(numeric) + its code's
            if layout is None:
                raise ValueError(
                    "FoldedModel: a model with categorical columns needs its InputLayout (layout=)"
                )
            order, n = [], len(numeric)
            for plan in pre.columns_:
                if plan["kind"] == "numeric":
                    order.append(names.index(plan["name"]))
                else:
                    block = layout.block_for(plan)
                    order += [n + block.offset + k for k in range(block.width)]
            self.register_buffer("order", torch.tensor(order, dtype=torch.int64))

    def _token_inputs(self, pre: Any, layout: InputLayout | None) -> None:
        tokens = layout.tokens_for(pre) if layout is not None else None
        start = tokens.offset if tokens is not None else 0
        self.register_buffer("perm", torch.arange(start, start + pre.config.text.max_len))
        self.categorical = False

    def forward(self, x: torch.Tensor, encoded: torch.Tensor | None = None) -> torch.Tensor:
        if self.text:
            z = x.index_select(1, self.perm)
        else:
            v = x.index_select(1, self.perm).to(torch.float64)
            v = torch.where(torch.isnan(v) & self.imputes, self.fill, v)
            z = (v * self.scale + self.offset).to(torch.float32)
            if self.categorical:
                assert encoded is not None, "a model with categorical columns takes their codes (encoded)"
                z = torch.cat([z, encoded], 1).index_select(1, self.order)
        out = self.model(z.reshape((-1, *self.shape)))
        if self.kind == "regression":
            return out.squeeze(-1).to(torch.float64) * self.spread + self.center
        return _to_output(out, self.kind)


class FoldedEnsemble(nn.Module):
    """The members' folded models combined as :func:`dltoolkit.deploy.ensemble.combine` does."""

    def __init__(self, ensemble: Ensemble, layout: InputLayout | None = None) -> None:
        super().__init__()
        columns = list(layout.numeric) if layout is not None else ensemble.feature_columns
        self.members = nn.ModuleList([FoldedModel(m, columns, layout) for m in ensemble.members])
        self.weights = [w / sum(ensemble.weights) for w in ensemble.weights]
        self.vote = ensemble.method == "vote"
        self.regression = ensemble.kind == "regression"

    def forward(self, x: torch.Tensor, encoded: torch.Tensor | None = None) -> torch.Tensor:
        total = None
        for weight, member in zip(self.weights, self.members, strict=True):
            out = member(x, encoded).to(torch.float64)
            if self.vote:
                out = nn.functional.one_hot(out.argmax(1), out.shape[1]).to(torch.float64)
            total = weight * out if total is None else total + weight * out
        assert total is not None  # an ensemble has members
        return total if self.regression else total.to(torch.float32)


def fold(model: Predictor | Ensemble, layout: InputLayout | None = None) -> nn.Module:
    """The torch module computing ``model``'s outputs from its raw inputs as ``layout`` lays them out.

    ``layout`` defaults to the model's own; a numeric-only model takes the raw float32 features alone.
    """
    layout = layout if layout is not None else InputLayout.of(model)
    if layout.numeric_only:
        layout = None
    if isinstance(model, Ensemble):
        return FoldedEnsemble(model, layout)
    columns = list(layout.numeric) if layout is not None else None
    return FoldedModel(model, columns, layout)


def example_inputs(layout: InputLayout, rows: pd.DataFrame) -> tuple[torch.Tensor, ...]:
    """The folded module's inputs for a few of ``rows`` to trace with (at least 2 rows, so that the
    batch size stays symbolic): features (NaN as 0), the categorical codes, or the token ids."""
    head = rows.head(4) if len(rows) >= 2 else rows.iloc[[0] * 2]
    if layout.texts:
        return (torch.from_numpy(layout.token_ids(head)),)
    features = torch.from_numpy(np.nan_to_num(layout.features(head)))
    if layout.numeric_only:
        return (features,)
    return features, torch.from_numpy(layout.encoded(head))
