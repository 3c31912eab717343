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
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dltoolkit._extras import require
from dltoolkit._files import atomic_path
from dltoolkit._quiet import quiet_libraries
from dltoolkit.errors import DataError, DLToolkitError, message, unknown

if TYPE_CHECKING:  # torch, pandas and the bundle load when an export runs
    from dltoolkit.bundle import Predictor
    from dltoolkit.deploy.ensemble import Ensemble

FORMATS = ("onnx", "torchscript")
TOLERANCE = 1e-5
INPUT_NAME, OUTPUT_NAME = "features", "output"


class ExportError(DLToolkitError):
    """The model cannot be exported, or the exported file does not reproduce the bundle."""


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
        data: Training data to recreate the test split from (a DataFrame, ``(X, y)`` or a CSV
            path), instead of the example rows the bundle carries; needed for a bundle written
            before bundles carried them when the spec's source is ``"frame"`` or gone.

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
    from dltoolkit.bundle import Predictor, load
    from dltoolkit.deploy._folded import WRITERS, example_rows, fold
    from dltoolkit.deploy.ensemble import Ensemble

    if format not in FORMATS:
        raise unknown("export format", format, FORMATS)
    if format == "onnx":
        require("export", "ONNX export (dltoolkit export --format onnx)")
    from dltoolkit.deploy._folded_image import export_image, is_image_model

    if is_image_model(model):  # uint8 images in: see dltoolkit.deploy._folded_image
        return export_image(model, format, out=Path(out), tolerance=tolerance, data=data)
    model = model if isinstance(model, Predictor | Ensemble) else load(model)
    module = fold(model).eval()
    x = test_features(model, data)
    out = Path(out)
    with atomic_path(out) as tmp:  # only a verified export is renamed into place
        with quiet_libraries():  # the exporter's "torchvision is not installed" lines
            run = WRITERS[format](module, example_rows(x), tmp)
        got, want = run(x), reference_output(model, x)
        diff = max_difference(got, want)
        if not diff <= tolerance:
            absolute = float(np.abs(np.asarray(got, float) - want).max()) if got.shape == want.shape else diff
            raise ExportError(
                message(
                    f"The {format} export does not reproduce the bundle's outputs on the test split "
                    f"({len(x)} rows): max difference {absolute:.6g}",
                    f"max |exported - bundle| / max(1, |bundle|) = {diff:.6g}",
                    f"at most {tolerance:g}",
                    "Nothing was written. Check the model for code that tracing cannot capture "
                    "(Python control flow on values or sizes).",
                )
            )
    return out, diff, len(x)


def test_features(model: Predictor | Ensemble, data: Any = None) -> np.ndarray:
    """The raw test rows to verify an export on (float32, original column order).

    The rows the bundle carries (``examples.json``, written by ``run`` and sweeps) unless ``data``
    is given; with ``data``, or for a bundle without them, the test split ``prepare`` draws for the
    spec from ``data`` (or from the spec's own ``data.source``).
    """
    examples = _examples(model)
    if data is None and examples is not None:
        frame = examples
    else:
        from dltoolkit.data import prepare
        from dltoolkit.data.load import _read_csv

        if isinstance(data, str | os.PathLike):
            data = _read_csv(Path(data), model.spec.data.options)
        frame = prepare(model.spec, data).raw_test
    from dltoolkit.data._columns import require_columns

    require_columns([str(c) for c in frame.columns], model.feature_columns, "the rows to verify on")
    frame = frame[model.feature_columns]
    try:
        return frame.to_numpy(dtype=np.float32, na_value=np.nan)
    except (TypeError, ValueError) as e:
        raise DataError(
            message("Non-numeric test features", list(frame.dtypes.astype(str)), "numbers")
        ) from e


def _examples(model: Predictor | Ensemble) -> Any:
    members = getattr(model, "members", None) or [model]
    return getattr(members[0], "examples", None)


def reference_output(model: Predictor | Ensemble, x: np.ndarray) -> np.ndarray:
    """The bundle's outputs on ``x``: probabilities, or predictions in original units."""
    import pandas as pd

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
