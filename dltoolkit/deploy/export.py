"""Export a model or an ensemble, preprocessing included, to ONNX or TorchScript, verified.

The exported graph takes the raw numeric features in the original column order as float32
``(n, n_features)`` (NaN where a value is missing) and does everything a bundle does: imputation,
scaling (in float64, as the bundle does), reshaping, the network, then softmax / sigmoid into
class probabilities ``(n, C)`` or the inverse target scaling into values ``(n,)`` (float64) in the
target's original units. It needs neither dltoolkit nor the training code.

Export verifies itself: the exported file is run with ONNX Runtime (or loaded back with
``torch.jit.load``) on the test split and compared with the bundle's own outputs; a difference
above the tolerance fails the export, which then writes nothing.

Example:
    >>> export("runs/wine/model", "onnx", out="wine.onnx")   # doctest: +SKIP
    PosixPath('wine.onnx')
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from dltoolkit.bundle import Predictor
from dltoolkit.deploy.ensemble import Ensemble, load_model
from dltoolkit.errors import DataError, DLToolkitError, message, unknown

FORMATS = ("onnx", "torchscript")
TOLERANCE = 1e-5
INPUT_NAME, OUTPUT_NAME = "features", "output"


class ExportError(DLToolkitError):
    """The model cannot be exported, or the exported file does not reproduce the bundle."""


# ---------------------------------------------------------------------- the folded graph
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
def export(
    model: Predictor | Ensemble | str | os.PathLike,
    format: str = "onnx",
    *,
    out: str | os.PathLike,
    tolerance: float = TOLERANCE,
    data: Any = None,
) -> Path:
    """Export ``model`` (a bundle path, Predictor or Ensemble) with its preprocessing; verify; write ``out``.

    Args:
        model: A model or ensemble bundle directory, a Predictor or an Ensemble.
        format: ``"onnx"`` (run with ONNX Runtime) or ``"torchscript"`` (``torch.jit.load``).
        out: The file to write (atomically: only a verified export is renamed into place).
        tolerance: Largest accepted ``|exported - bundle| / max(1, |bundle|)`` on the test split.
        data: The training data when the spec's source is ``"frame"`` (to recreate the test split).

    Raises:
        ExportError: non-numeric inputs, an exporter failure, or outputs off by more than ``tolerance``.
    """
    path, _, _ = export_checked(model, format, out=out, tolerance=tolerance, data=data)
    return path


def export_checked(
    model: Predictor | Ensemble | str | os.PathLike,
    format: str = "onnx",
    *,
    out: str | os.PathLike,
    tolerance: float = TOLERANCE,
    data: Any = None,
) -> tuple[Path, float, int]:
    """As :func:`export`, also returning the largest difference found and the number of rows checked."""
    if format not in FORMATS:
        raise unknown("export format", format, FORMATS)
    model = model if isinstance(model, Predictor | Ensemble) else load_model(model)
    module = fold(model).eval()
    x = test_features(model, data)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    try:
        run = _WRITERS[format](module, _example(x), tmp)
        diff = max_difference(run(x), reference_output(model, x))
        if not diff <= tolerance:
            raise ExportError(
                message(
                    f"The {format} export does not reproduce the bundle's outputs on the test split "
                    f"({len(x)} rows): max difference {diff:.3g}",
                    f"max difference {diff:.6g}",
                    f"at most {tolerance:g} (relative above 1)",
                    "Nothing was written. Check the model for code that tracing cannot capture "
                    "(Python control flow on values or sizes).",
                )
            )
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out, diff, len(x)


def test_features(model: Predictor | Ensemble, data: Any = None) -> np.ndarray:
    """The raw test-split features (float32, original column order) that ``prepare`` draws for the spec."""
    from dltoolkit.data import prepare

    frame = prepare(model.spec, data).raw_test[model.feature_columns]
    try:
        return frame.to_numpy(dtype=np.float32, na_value=np.nan)
    except (TypeError, ValueError) as e:
        raise DataError(
            message("Non-numeric test features", list(frame.dtypes.astype(str)), "numbers")
        ) from e


def reference_output(model: Predictor | Ensemble, x: np.ndarray) -> np.ndarray:
    """The bundle's outputs on ``x``: probabilities, or predictions in original units."""
    rows = pd.DataFrame(x.astype(np.float64), columns=model.feature_columns)
    if model.classes is not None:
        return model.predict_proba(rows)
    return model.predict(rows)


def max_difference(got: np.ndarray, want: np.ndarray) -> float:
    """``max |got - want| / max(1, |want|)``: absolute for probabilities, relative for large values."""
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    if got.shape != want.shape:
        return float("inf")
    return float((np.abs(got - want) / np.maximum(1.0, np.abs(want))).max(initial=0.0))


def _example(x: np.ndarray) -> torch.Tensor:
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


_WRITERS = {"onnx": _write_onnx, "torchscript": _write_torchscript}
