"""The model bundle: one directory with the spec, the fitted preprocessing, the weights and metrics.

A bundle is written into a temporary sibling directory and renamed into place, so an interrupted
run never leaves a half-written one. ``load`` returns a :class:`Predictor` that takes raw inputs
in the original columns.

Example:
    >>> model = load("runs/digits-mlp/model")        # doctest: +SKIP
    >>> model.predict(model.example_input())         # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch

from dltoolkit._files import atomic_dir
from dltoolkit.data._rows import Column, InputWarning, check_rows, schema_of
from dltoolkit.data.preprocess import Preprocessor
from dltoolkit.data.target import TargetEncoder
from dltoolkit.errors import DataError, DLToolkitError, message
from dltoolkit.graph import Graph
from dltoolkit.spec import Spec

if TYPE_CHECKING:
    from dltoolkit.data.images.transform import ImagePreprocessor
    from dltoolkit.data.tables.stream import TableRows
    from dltoolkit.deploy.ensemble import Ensemble

FORMAT = 1
FILES = ("spec.yaml", "preprocess.json", "weights.pt", "metrics.json", "bundle.json")
EXAMPLES = "examples.json"  # optional: raw test rows (original columns) export verifies itself on
EXAMPLE_ROWS = 256


class Predictor:
    """A trained model with its preprocessing: predictions from raw rows in the original columns.

    Over an image preprocessing (:mod:`dltoolkit.data.images`) the object made is an
    :class:`~dltoolkit.data.images.predictor.ImagePredictor`, which takes image files, folders and
    decoded arrays instead of rows.
    """

    def __new__(cls, *args: Any, **kwargs: Any) -> Predictor:
        preprocessor = args[1] if len(args) > 1 else kwargs.get("preprocessor")  # (none when unpickled)
        if cls is Predictor and getattr(preprocessor, "kind", None) == "image":
            from dltoolkit.data.images.predictor import ImagePredictor

            cls = ImagePredictor
        return super().__new__(cls)

    def __init__(
        self,
        spec: Spec,
        preprocessor: Preprocessor | ImagePreprocessor,
        target: TargetEncoder,
        model: torch.nn.Module,
        metrics: dict[str, Any] | None = None,
        path: Path | None = None,
        examples: pd.DataFrame | None = None,
    ) -> None:
        # an ImagePreprocessor only in an ImagePredictor (__new__ makes one), which reads it as image_preprocessor
        self.preprocessor: Preprocessor = preprocessor  # type: ignore[assignment]
        self.spec, self.target = spec, target
        self.model = model.eval()
        self.metrics = metrics or {}
        self.path = path
        self.examples = examples  # raw test rows the bundle carries: export verifies itself on them

    @property
    def classes(self) -> list[str] | None:
        return list(self.target.classes_) if self.target.is_classification else None

    @property
    def input_columns(self) -> list[str]:
        """The raw columns the model takes, in order: a DataFrame to predict on needs these names
        (other columns are ignored); an array needs its columns in this order."""
        return list(self.preprocessor.feature_columns_)

    @property
    def feature_columns(self) -> list[str]:
        """The same as :attr:`input_columns`."""
        return self.input_columns

    @property
    def input_schema(self) -> list[Column]:
        """One :class:`~dltoolkit.data._rows.Column` per input column: kind, nullable, categories."""
        return schema_of([self.preprocessor])

    def check_inputs(self, X: Any) -> tuple[pd.DataFrame, list[str]]:
        """Raw rows read and checked as ``predict`` and the server check them (one set of rules).

        Returns:
            The rows in :attr:`input_columns` with checked values, and warning texts (unseen
            categories, ignored columns).

        Raises:
            InputError: a missing column or a value the column cannot take.
        """
        return check_rows(self.preprocessor.frame(read_rows(X)), self.input_schema)

    def transform(self, X: Any) -> torch.Tensor | TableRows:
        """Raw rows (DataFrame, 2-d array, CSV path or table files) to the model's input tensor.

        Table files (a Parquet file, a folder or a glob of Parquet/CSV shards) larger than the spec's
        ``data.in_memory_mb`` give their rows streamed (:class:`~dltoolkit.data.tables.stream.TableRows`,
        read in DataLoader worker processes by :meth:`output`); smaller ones are read at once.
        Unseen categories and ignored columns are reported as an :class:`InputWarning`.
        """
        if isinstance(X, str | os.PathLike) and self.preprocessor.vocab_ is None:
            from dltoolkit.data.tables.source import TableFiles, is_table_files

            if is_table_files(str(X)):
                files = TableFiles.open(str(X))
                files.require(self.preprocessor.feature_columns_, "Input column")
                if files.nbytes > self.spec.data.in_memory_mb * 2**20:
                    from dltoolkit.data.tables.stream import TableRows

                    rows = np.arange(files.rows)
                    return TableRows(files, self.preprocessor.feature_columns_, rows, torch.zeros(len(rows)),
                                     self.preprocessor)  # fmt: skip
                X = files.read(self.preprocessor.feature_columns_)
        frame, notes = self.check_inputs(X)
        for note in notes:
            warnings.warn(note, InputWarning, stacklevel=3)
        return torch.from_numpy(self.preprocessor.transform(frame))

    def output(self, x: torch.Tensor | TableRows, batch_size: int = 4096) -> np.ndarray:
        """Probabilities (n, C) for classification, scaled values (n,) for regression.

        ``x``: model inputs, or the rows of a streamed table (read in DataLoader worker processes).
        """
        if not isinstance(x, torch.Tensor):
            from dltoolkit.data.tables.stream import outputs

            model = lambda chunk: _to_output(self.model(chunk), self.spec.task.kind)  # noqa: E731
            return outputs(model, x, batch_size, self.spec.data.workers).numpy()
        outs = []
        with torch.inference_mode():
            for chunk in x.split(batch_size):
                outs.append(_to_output(self.model(chunk), self.spec.task.kind))
        return torch.cat(outs).numpy() if outs else np.zeros((0,))

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, columns in the order of ``classes``."""
        if not self.target.is_classification:
            raise DLToolkitError(
                "predict_proba is for classification; this model does regression: use predict()."
            )
        return self.output(self.transform(X))

    def predict(self, X: Any) -> np.ndarray:
        """Original labels (classification) or values in the target's original units (regression)."""
        out = self.output(self.transform(X))
        return self.target.inverse(out.argmax(1) if self.target.is_classification else out)

    def write_examples(self, folder: Path) -> None:
        """Write the example rows into a bundle being written at ``folder`` (export verifies on them)."""
        if self.examples is not None:
            (folder / EXAMPLES).write_text(
                self.examples.head(EXAMPLE_ROWS).to_json(orient="split", index=False)
            )

    def example_input(self, n: int = 3) -> pd.DataFrame:
        """A few rows of the right columns (zeros), handy to check the wiring."""
        return pd.DataFrame(np.zeros((n, len(self.feature_columns))), columns=self.feature_columns)

    def _repr_html_(self) -> str:
        from dltoolkit._html import esc, table
        from dltoolkit.evaluate import metrics_table

        shown = table(metrics_table(self.metrics), index=True) if self.metrics else ""
        where = f" at <code>{esc(self.path)}</code>" if self.path else ""
        return f"<b>Model bundle</b> {esc(repr(self.spec.name))} ({esc(self.spec.task.kind)}){where}{shown}"


def _to_output(out: torch.Tensor, kind: str) -> torch.Tensor:
    if kind == "regression":
        return out.squeeze(-1)
    if out.shape[-1] == 1:
        p = torch.sigmoid(out.squeeze(-1))
        return torch.stack([1 - p, p], dim=-1)
    return torch.softmax(out, dim=-1)


def read_rows(X: Any) -> pd.DataFrame | np.ndarray:
    """Rows to predict on from a DataFrame, an array, a list of rows or records, or a CSV path.

    Raises:
        DataError: a missing, empty or unreadable CSV file, no rows at all, or another input type.
    """
    if isinstance(X, str | os.PathLike):
        rows = _read_csv_rows(Path(X))
    elif isinstance(X, pd.DataFrame | np.ndarray):
        rows = X
    elif isinstance(X, list | tuple):
        rows = np.asarray(X, dtype=float) if X and not isinstance(X[0], dict) else pd.DataFrame(X)
    else:
        rows = None
    if rows is not None:
        if len(rows) == 0:
            raise DataError(
                message(
                    "No rows to predict",
                    f"0 rows (columns {[str(c) for c in rows.columns]})"
                    if hasattr(rows, "columns")
                    else "0 rows",
                    "at least one row of the model's input columns",
                    "Check the input: a CSV needs a header row and at least one data row.",
                )
            )
        return rows
    raise DataError(
        message(
            "Cannot predict on this input",
            type(X).__name__,
            "a DataFrame, a 2-d array, a list of records or a CSV path",
        )
    )


def _read_csv_rows(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise DataError(message("Input CSV file not found", str(path), "an existing CSV file"))
    try:
        return pd.read_csv(path)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as e:
        raise DataError(
            message(
                "Could not read the input CSV",
                f"{path}: {e}",
                "a CSV file with a header row of the model's input columns and one row per example",
            )
        ) from None


def graph_for(
    spec: Spec, preprocessor: Preprocessor | ImagePreprocessor, n_outputs: int, pretrained: bool = True
) -> Graph:
    """The graph of ``spec`` sized for this preprocessing's input.

    ``pretrained=False`` builds backbone nodes without reading their weights files: for a model
    whose trained weights are loaded next (a bundle needs no pretrained file to predict).
    """
    vocab = preprocessor.vocab_
    return Graph(
        spec.graph,
        preprocessor.input_shape,
        preprocessor.input_dtype,
        n_outputs,
        {"vocab_size": len(vocab) if vocab else None, "pretrained": pretrained},
    )


def save_bundle(path: str | os.PathLike, predictor: Predictor, extra: dict[str, Any] | None = None) -> Path:
    """Write ``predictor`` as a bundle directory at ``path`` atomically (replacing an old one)."""
    path = Path(path)
    with atomic_dir(path) as tmp:
        (tmp / "spec.yaml").write_text(predictor.spec.to_yaml())
        state = {"preprocessor": predictor.preprocessor.to_state(), "target": predictor.target.to_state()}
        (tmp / "preprocess.json").write_text(json.dumps(state))
        torch.save(predictor.model.state_dict(), tmp / "weights.pt")
        (tmp / "metrics.json").write_text(json.dumps(predictor.metrics, indent=2))
        predictor.write_examples(tmp)
        meta = {"format": FORMAT, "kind": "model", "torch": torch.__version__} | (extra or {})
        (tmp / "bundle.json").write_text(json.dumps(meta, indent=2))
    return path


class BundleError(DLToolkitError, ValueError):
    """A model bundle is missing, damaged (a truncated file) or was written by a newer dltoolkit."""


def read_meta(path: Path) -> dict[str, Any]:
    """The bundle's ``bundle.json``, checked: a JSON object whose ``format`` this dltoolkit reads.

    Raises:
        BundleError: the file is damaged, or its ``format`` is newer than :data:`FORMAT`.
    """
    meta = _read_json(path / "bundle.json")
    fmt = meta.get("format") if isinstance(meta, dict) else None
    if not isinstance(meta, dict) or not isinstance(fmt, int):
        raise BundleError(
            message(
                f"Damaged bundle file {str(path / 'bundle.json')!r}",
                fmt if isinstance(meta, dict) else type(meta).__name__,
                "a JSON object with an integer 'format'",
                "Write the bundle again (dltoolkit run) or copy it again.",
            )
        )
    if fmt > FORMAT:
        raise BundleError(
            message(
                f"The bundle {str(path)!r} was written by a newer dltoolkit",
                f"format {fmt}",
                f"format {FORMAT} or older (what this dltoolkit reads)",
                "Upgrade dltoolkit (pip install -U dltoolkit) to load it.",
            )
        )
    return meta


def _read_json(file: Path) -> Any:
    try:
        return json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BundleError(
            message(
                f"Damaged bundle file {str(file)!r}: not valid JSON (cut short?)",
                f"{file.stat().st_size} bytes; {e}",
                "the complete file dltoolkit wrote",
                "Write the bundle again (dltoolkit run) or copy it again.",
            )
        ) from None


def _read_weights(path: Path, model: torch.nn.Module) -> None:
    file = path / "weights.pt"
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as e:  # torch reports a truncated archive as RuntimeError, EOFError, ...
        raise BundleError(
            message(
                f"Damaged bundle file {str(file)!r}: the weights cannot be read (cut short?)",
                f"{file.stat().st_size} bytes; {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}",
                "the complete weights.pt dltoolkit wrote",
                "Write the bundle again (dltoolkit run) or copy it again.",
            )
        ) from None
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as e:
        raise BundleError(
            message(
                f"The weights in {str(file)!r} do not fit the bundle's spec.yaml",
                str(e).splitlines()[0],
                "weights of the graph its spec.yaml describes",
                "Keep the bundle's files together as dltoolkit wrote them.",
            )
        ) from None


def load(path: str | os.PathLike) -> Predictor | Ensemble:
    """Open a model bundle written by ``dltoolkit run``, a sweep's best trial or an ensemble.

    Raises:
        DLToolkitError: the directory is missing or is not a complete bundle.
        BundleError: a file of the bundle is damaged (e.g. truncated), or the bundle was written by
            a newer dltoolkit (its ``format`` number is higher than this one reads).
    """
    path = Path(path)
    if (path / "bundle.json").is_file() and read_meta(path).get("kind") == "ensemble":
        from dltoolkit.deploy.ensemble import load_ensemble

        return load_ensemble(path)
    missing = [f for f in FILES if not (path / f).is_file()]
    if missing:
        raise DLToolkitError(
            message(
                f"Not a model bundle: {str(path)!r} lacks {missing}",
                str(path),
                f"a directory with {list(FILES)}",
                "Point at the model/ folder that `dltoolkit run` wrote.",
            )
        )
    spec = Spec.load(path / "spec.yaml")
    state = _read_json(path / "preprocess.json")
    try:
        pre = preprocessor_from_state(state["preprocessor"])
        target = TargetEncoder.from_state(state["target"])
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise BundleError(
            message(
                f"Damaged bundle file {str(path / 'preprocess.json')!r}",
                f"{type(e).__name__}: {e}",
                "the preprocessing state dltoolkit wrote",
                "Write the bundle again (dltoolkit run) or copy it again.",
            )
        ) from None
    model = graph_for(spec, pre, target.n_outputs, pretrained=False).compile()
    _read_weights(path, model)
    metrics = _read_json(path / "metrics.json")
    if getattr(pre, "kind", None) == "image":
        from dltoolkit.data.images.predictor import read_example_images

        return Predictor(spec, pre, target, model, metrics, path, read_example_images(path))
    return Predictor(spec, pre, target, model, metrics, path, _read_examples(path / EXAMPLES))


def preprocessor_from_state(state: dict[str, Any]) -> Any:
    """The fitted preprocessing of a bundle: tabular/text, or an image transform."""
    if isinstance(state, dict) and state.get("kind") == "image":
        from dltoolkit.data.images.transform import ImagePreprocessor

        return ImagePreprocessor.from_state(state)
    return Preprocessor.from_state(state)


def _read_examples(file: Path) -> pd.DataFrame | None:
    """The example rows of a bundle (None for a bundle written before they were kept)."""
    if not file.is_file():
        return None
    data = _read_json(file)
    try:
        return pd.DataFrame(data["data"], columns=data["columns"]).infer_objects()
    except (KeyError, TypeError, ValueError) as e:
        raise BundleError(
            message(
                f"Damaged bundle file {str(file)!r}",
                f"{type(e).__name__}: {e}",
                "the example rows dltoolkit wrote",
                "Write the bundle again (dltoolkit run) or delete the file (export then needs --data).",
            )
        ) from None
