"""The folded graph: one torch module doing a bundle's preprocessing, network and output mapping.

Used by :mod:`dltoolkit.deploy.export`; kept apart so that importing ``dltoolkit.deploy`` (and the
command line) does not import torch.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from dltoolkit.bundle import Predictor
from dltoolkit.deploy.ensemble import Ensemble
from dltoolkit.deploy.export import INPUT_NAME, OUTPUT_NAME, ExportError
from dltoolkit.errors import message


class FoldedModel(nn.Module):
    """One model with its preprocessing and output mapping: raw float32 features in, outputs out."""

    def __init__(self, predictor: Predictor, columns: list[str] | None = None) -> None:
        super().__init__()
        pre, target = predictor.preprocessor, predictor.target
        _require_numeric(predictor)
        scale, offset = pre.linear_params()
        fills = [plan["fill"] for plan in pre.columns_]
        perm = [columns.index(c) for c in pre.feature_columns_] if columns else list(range(len(fills)))
        self.register_buffer("perm", torch.tensor(perm, dtype=torch.int64))
        self.register_buffer(
            "fill", torch.tensor([np.nan if f is None else f for f in fills], dtype=torch.float64)
        )
        self.register_buffer("imputes", torch.tensor([f is not None for f in fills]))
        self.register_buffer("scale", torch.from_numpy(scale))
        self.register_buffer("offset", torch.from_numpy(offset))
        self.shape = tuple(pre.input_shape)
        self.kind = predictor.spec.task.kind
        self.center = float(target.center_) if self.kind == "regression" else 0.0
        self.spread = float(target.spread_) if self.kind == "regression" else 1.0
        self.model = predictor.model.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v = x.index_select(1, self.perm).to(torch.float64)
        v = torch.where(torch.isnan(v) & self.imputes, self.fill, v)
        z = (v * self.scale + self.offset).to(torch.float32).reshape((-1, *self.shape))
        out = self.model(z)
        if self.kind == "regression":
            return out.squeeze(-1).to(torch.float64) * self.spread + self.center
        if out.shape[-1] == 1:
            p = torch.sigmoid(out.squeeze(-1))
            return torch.stack([1 - p, p], dim=-1)
        return torch.softmax(out, dim=-1)


class FoldedEnsemble(nn.Module):
    """The members' folded models combined as :func:`dltoolkit.deploy.ensemble.combine` does."""

    def __init__(self, ensemble: Ensemble) -> None:
        super().__init__()
        columns = ensemble.feature_columns
        self.members = nn.ModuleList([FoldedModel(m, columns) for m in ensemble.members])
        self.weights = [w / sum(ensemble.weights) for w in ensemble.weights]
        self.vote = ensemble.method == "vote"
        self.regression = ensemble.kind == "regression"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        total = None
        for weight, member in zip(self.weights, self.members, strict=True):
            out = member(x).to(torch.float64)
            if self.vote:
                out = nn.functional.one_hot(out.argmax(1), out.shape[1]).to(torch.float64)
            total = weight * out if total is None else total + weight * out
        return total if self.regression else total.to(torch.float32)


def fold(model: Predictor | Ensemble) -> nn.Module:
    """The torch module computing ``model``'s outputs from raw float32 features."""
    return FoldedEnsemble(model) if isinstance(model, Ensemble) else FoldedModel(model)


def _require_numeric(predictor: Predictor) -> None:
    pre = predictor.preprocessor
    if pre.linear_params() is None:
        other = [p["name"] for p in pre.columns_ if p["kind"] != "numeric"] or pre.feature_columns_
        raise ExportError(
            message(
                "Export supports numeric features only",
                f"non-numeric input column(s) {other}",
                "a model whose inputs are all numeric columns (no categorical, one-hot or text inputs)",
                "Serve this model with `dltoolkit serve`, which takes any input the bundle takes.",
            )
        )


# ---------------------------------------------------------------------- export
def example_rows(x: np.ndarray) -> torch.Tensor:
    """A few rows to trace with (at least 2, so that the batch size stays symbolic)."""
    rows = x[: min(len(x), 4)]
    rows = np.concatenate([rows, rows])[: max(2, len(rows))] if len(rows) < 2 else rows
    return torch.from_numpy(np.nan_to_num(rows))


def _write_onnx(module: nn.Module, example: torch.Tensor, path: Path) -> Callable[[np.ndarray], np.ndarray]:
    import onnxruntime as ort

    batch = torch.export.Dim("batch")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                module,
                (example,),
                dynamo=True,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_shapes=({0: batch},),
                verbose=False,
            )
        program.save(str(path))
    except Exception as e:  # the exporter's own errors are many and undocumented
        raise ExportError(f"The ONNX exporter failed: {type(e).__name__}: {e}") from e
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return lambda x: session.run(None, {INPUT_NAME: x})[0]


def _write_torchscript(
    module: nn.Module, example: torch.Tensor, path: Path
) -> Callable[[np.ndarray], np.ndarray]:
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            traced = torch.jit.trace(module, (example,), check_trace=False)
            torch.jit.save(traced, str(path))
    except Exception as e:
        raise ExportError(f"TorchScript tracing failed: {type(e).__name__}: {e}") from e
    loaded = torch.jit.load(str(path))

    def run(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return loaded(torch.from_numpy(np.array(x, dtype=np.float32))).numpy()

    return run


WRITERS = {"onnx": _write_onnx, "torchscript": _write_torchscript}
