"""The model bundle: one directory with the spec, the fitted preprocessing, the weights and metrics.

A bundle is written into a temporary sibling directory and renamed into place, so an interrupted
run never leaves a half-written one. ``load`` returns a :class:`Predictor` that takes raw inputs
in the original columns.

Example:
    >>> model = load("runs/digits-mlp/model")        # doctest: +SKIP
    >>> model.predict(model.example_input())         # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch

from dltoolkit.data.preprocess import Preprocessor
from dltoolkit.data.target import TargetEncoder
from dltoolkit.errors import DataError, DLToolkitError, message
from dltoolkit.graph import Graph
from dltoolkit.spec import Spec

if TYPE_CHECKING:
    from dltoolkit.deploy.ensemble import Ensemble

FORMAT = 1
FILES = ("spec.yaml", "preprocess.json", "weights.pt", "metrics.json", "bundle.json")


class Predictor:
    """A trained model with its preprocessing: predictions from raw rows in the original columns."""

    def __init__(
        self,
        spec: Spec,
        preprocessor: Preprocessor,
        target: TargetEncoder,
        model: torch.nn.Module,
        metrics: dict[str, Any] | None = None,
        path: Path | None = None,
    ) -> None:
        self.spec, self.preprocessor, self.target = spec, preprocessor, target
        self.model = model.eval()
        self.metrics = metrics or {}
        self.path = path

    @property
    def classes(self) -> list[str] | None:
        return list(self.target.classes_) if self.target.is_classification else None

    @property
    def feature_columns(self) -> list[str]:
        return list(self.preprocessor.feature_columns_)

    def transform(self, X: Any) -> torch.Tensor:
        """Raw rows (DataFrame, 2-d array or CSV path) to the model's input tensor."""
        return torch.from_numpy(self.preprocessor.transform(read_rows(X)))

    def output(self, x: torch.Tensor, batch_size: int = 4096) -> np.ndarray:
        """Probabilities (n, C) for classification, scaled values (n,) for regression."""
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
    if isinstance(X, str | os.PathLike):
        path = Path(X)
        if not path.is_file():
            raise DataError(message("Input CSV file not found", str(path), "an existing CSV file"))
        return pd.read_csv(path)
    if isinstance(X, pd.DataFrame | np.ndarray):
        return X
    if isinstance(X, list | tuple):
        return np.asarray(X, dtype=float) if X and not isinstance(X[0], dict) else pd.DataFrame(X)
    raise DataError(
        message(
            "Cannot predict on this input",
            type(X).__name__,
            "a DataFrame, a 2-d array, a list of records or a CSV path",
        )
    )


def graph_for(spec: Spec, preprocessor: Preprocessor, n_outputs: int) -> Graph:
    """The graph of ``spec`` sized for this preprocessing's input."""
    vocab = preprocessor.vocab_
    return Graph(
        spec.graph,
        preprocessor.input_shape,
        preprocessor.input_dtype,
        n_outputs,
        {"vocab_size": len(vocab) if vocab else None},
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
        meta = {"format": FORMAT, "kind": "model", "torch": torch.__version__} | (extra or {})
        (tmp / "bundle.json").write_text(json.dumps(meta, indent=2))
    return path


@contextlib.contextmanager
def atomic_dir(path: Path) -> Iterator[Path]:
    """Yield a temporary sibling directory; on success it replaces ``path`` whole, else it is removed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.tmp-"))
    try:
        yield tmp
        swap_in(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def swap_in(tmp: Path, path: Path) -> None:
    old = None
    if path.exists():
        old = path.with_name(f".{path.name}.old-{os.getpid()}")
        os.replace(path, old)
    os.replace(tmp, path)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def load(path: str | os.PathLike) -> Predictor | Ensemble:
    """Open a model bundle written by ``dltoolkit run``, a sweep's best trial or an ensemble.

    Raises:
        DLToolkitError: the directory is missing or is not a complete bundle.
    """
    path = Path(path)
    meta = path / "bundle.json"
    if meta.is_file() and json.loads(meta.read_text()).get("kind") == "ensemble":
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
    state = json.loads((path / "preprocess.json").read_text())
    pre = Preprocessor.from_state(state["preprocessor"])
    target = TargetEncoder.from_state(state["target"])
    model = graph_for(spec, pre, target.n_outputs).compile()
    model.load_state_dict(torch.load(path / "weights.pt", map_location="cpu", weights_only=True))
    metrics = json.loads((path / "metrics.json").read_text())
    return Predictor(spec, pre, target, model, metrics, path)
