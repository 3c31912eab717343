"""Export a model or an ensemble, preprocessing included, to ONNX or TorchScript, verified.

The exported file takes the raw columns and does everything a bundle does: imputation, scaling
(in float64, as the bundle does), one-hot / ordinal codes of categories, tokenisation of a text,
reshaping, the network, then softmax / sigmoid into class probabilities ``(n, C)`` float32 (in the
order of ``classes``) or the inverse target scaling into values ``(n,)`` float64 in the target's
original units (output ``output``). It needs neither dltoolkit nor the training code. Inputs:

* numeric columns only: ONNX input ``features``, float32 ``(n, columns)``; TorchScript
  ``model(features)``;
* with categorical columns: ONNX inputs ``features`` (the numeric columns in input-column order;
  absent when there are none) and one string tensor ``(n,)`` per categorical column, named after
  it; TorchScript ``model(features, {"color": ["red", None, ...], ...})``: a float32 tensor
  (``(n, 0)`` without numeric columns) and one list of strings per categorical column;
* a text column: TorchScript ``model(["a text", ...])`` (tokenised inside); ONNX refuses it with
  an :class:`ExportError` pointing to TorchScript.

A missing number is NaN; a missing category is the empty string (or None in TorchScript; an
empty CSV field is missing for the bundle too) and is imputed as the bundle imputes it; a category
not seen in training encodes as all zeros (or -1 for ordinal codes), as in the bundle. A category
is given as its text (``1.0`` as ``"1"``). The exported file says all this: the ONNX model's ``doc_string`` and its metadata property
``dltoolkit`` (JSON: inputs with their columns and categories, the output with its classes), the
TorchScript file's extra file ``dltoolkit.json``.

Export verifies itself: the exported file is run with ONNX Runtime (or loaded back with
``torch.jit.load``) on the test rows the bundle carries (for categorical and text inputs also on
rows with missing values, unseen categories and unusual texts) and compared with the bundle's own
outputs; a difference above the tolerance fails the export, which then writes nothing.

Example:
    >>> export("runs/wine/model", "onnx", out="wine.onnx")   # doctest: +SKIP
    PosixPath('wine.onnx')
    >>> import onnxruntime as ort                             # doctest: +SKIP
    >>> session = ort.InferenceSession("mixed.onnx")          # doctest: +SKIP
    >>> session.run(None, {"features": np.array([[0.5, np.nan]], np.float32),
    ...                    "color": np.array(["red"], object)})[0]  # doctest: +SKIP
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dltoolkit._extras import require
from dltoolkit._files import atomic_path
from dltoolkit._quiet import quiet_libraries
from dltoolkit.errors import DLToolkitError, message, unknown

if TYPE_CHECKING:  # torch, pandas and the bundle load when an export runs
    import pandas as pd

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

    The file's inputs are described in this module's docstring and inside the file itself.

    Args:
        model: A model or ensemble bundle directory, a Predictor or an Ensemble.
        format: ``"onnx"`` (run with ONNX Runtime) or ``"torchscript"`` (``torch.jit.load``).
        out: The file to write (atomically: only a verified export is renamed into place).
        tolerance: Largest accepted ``|exported - bundle| / max(1, |bundle|)`` on the test split.
        data: Training data to recreate the test split from (a DataFrame, ``(X, y)`` or a CSV
            path), instead of the example rows the bundle carries; needed for a bundle written
            before bundles carried them when the spec's source is ``"frame"`` or gone.

    Raises:
        ExportError: inputs the format cannot take (a text column in ONNX, a date column), an
            exporter failure, or outputs off by more than ``tolerance``.
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
    from dltoolkit.deploy.ensemble import Ensemble

    if format not in FORMATS:
        raise unknown("export format", format, FORMATS)
    if format == "onnx":
        require("export", "ONNX export (dltoolkit export --format onnx)")
    from dltoolkit.deploy._folded_image import export_image, is_image_model

    if is_image_model(model):  # uint8 images in: see dltoolkit.deploy._folded_image
        return export_image(model, format, out=Path(out), tolerance=tolerance, data=data)
    model = model if isinstance(model, Predictor | Ensemble) else load(model)
    layout, module = _folded(model, format)
    rows = verification_rows(model, layout, data)
    description = layout.describe(model, format)
    out = Path(out)
    with atomic_path(out) as tmp:  # only a verified export is renamed into place
        with quiet_libraries():  # the exporter's "torchvision is not installed" lines
            run = _writer(format)(module, layout, rows, tmp, description)
        got, want = run(rows), reference_output(model, rows)
        diff = max_difference(got, want)
        if not diff <= tolerance:
            absolute = float(np.abs(np.asarray(got, float) - want).max()) if got.shape == want.shape else diff
            raise ExportError(
                message(
                    f"The {format} export does not reproduce the bundle's outputs on the test split "
                    f"{'' if layout.numeric_only else 'and rows with gaps and unseen values '}"
                    f"({len(rows)} rows): max difference {absolute:.6g}",
                    f"max |exported - bundle| / max(1, |bundle|) = {diff:.6g}",
                    f"at most {tolerance:g}",
                    "Nothing was written. Check the model for code that tracing cannot capture "
                    "(Python control flow on values or sizes).",
                )
            )
    return out, diff, len(rows)


def _folded(model: Predictor | Ensemble, format: str) -> tuple[Any, Any]:
    """The model's input layout and its folded torch module (refusing what cannot be exported)."""
    from dltoolkit.deploy._folded import fold
    from dltoolkit.deploy._inputs import InputLayout

    _refuse_subword(model)
    layout = InputLayout.of(model)
    if layout.texts and format == "onnx":
        raise ExportError(
            message(
                "ONNX export does not support text inputs",
                f"text column {layout.texts[0].column!r}",
                "numeric and categorical input columns (standard ONNX has no op for dltoolkit's "
                "tokenisation: Unicode word and punctuation tokens, lowercasing, the vocabulary)",
                "Export it to TorchScript instead (format='torchscript', or "
                "`dltoolkit export MODEL --format torchscript`): its scripted module tokenises the texts.",
            )
        )
    clash = {INPUT_NAME, OUTPUT_NAME} & set(layout.categorical)
    if clash:
        raise ExportError(
            message(
                "A categorical column has the name of an exported model's input or output",
                sorted(clash),
                f"categorical columns not named {INPUT_NAME!r} or {OUTPUT_NAME!r}",
                "Rename the column in the data and train again.",
            )
        )
    return layout, fold(model, layout).eval()


def _refuse_subword(model: Predictor | Ensemble) -> None:
    """A trained BPE tokenizer has no exported form yet (the scripted tokeniser is word/char only)."""
    for member in getattr(model, "members", None) or [model]:
        pre = member.preprocessor
        if getattr(pre, "tokenizer_", None) is not None:
            raise ExportError(
                message(
                    "Export does not support a trained subword tokenizer",
                    f"text column {pre.feature_columns_[0]!r} with preprocess.text.tokenizer: {pre.config.text.tokenizer}",
                    "a model whose text is tokenised into words or characters (tokenizer: word or char)",
                    "Serve the bundle itself (dltoolkit serve), or train with tokenizer: word or char to "
                    "export; the bundle's preprocess.json holds the tokenizer in Hugging Face's "
                    "tokenizer.json format (under preprocessor.tokenizer) to tokenise beside an exported model.",
                )
            )


def _writer(format: str) -> Any:
    if format == "onnx":
        from dltoolkit.deploy._onnx import write_onnx

        return write_onnx
    from dltoolkit.deploy._scripted import write_torchscript

    return write_torchscript


def rows_to_verify(model: Predictor | Ensemble, data: Any = None) -> pd.DataFrame:
    """The raw test rows to verify an export on (the model's input columns, values checked).

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
    frame, _ = model.check_inputs(frame[model.feature_columns].reset_index(drop=True))
    return frame


def verification_rows(model: Predictor | Ensemble, layout: Any, data: Any = None) -> pd.DataFrame:
    """The rows an export is checked on: the test rows, their numbers as float32 sees them, and for a
    model with categorical or text inputs extra rows with missing values and unseen categories."""
    rows = rows_to_verify(model, data)
    if layout.numeric:  # the exported model reads float32: compare on the same values
        rows[list(layout.numeric)] = layout.features(rows).astype(np.float64)
    nullable = {c.name for c in model.input_schema if c.nullable}
    return layout.probe_rows(rows, nullable)


def _examples(model: Predictor | Ensemble) -> Any:
    members = getattr(model, "members", None) or [model]
    return getattr(members[0], "examples", None)


def reference_output(model: Predictor | Ensemble, rows: pd.DataFrame | np.ndarray) -> np.ndarray:
    """The bundle's outputs on raw rows: probabilities, or predictions in original units.

    Unseen categories are expected here (the verification rows hold some): no warning about them.
    """
    import pandas as pd

    from dltoolkit.data._rows import InputWarning

    if isinstance(rows, np.ndarray):
        rows = pd.DataFrame(rows.astype(np.float64), columns=model.feature_columns)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InputWarning)
        if model.classes is not None:
            return model.predict_proba(rows)
        return model.predict(rows)


def max_difference(got: np.ndarray, want: np.ndarray) -> float:
    """``max |got - want| / max(1, |want|)``: absolute for probabilities, relative for large values."""
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    if got.shape != want.shape:
        return float("inf")
    return float((np.abs(got - want) / np.maximum(1.0, np.abs(want))).max(initial=0.0))
