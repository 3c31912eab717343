"""The data panel: pick the data, the target and preprocessing; see what the data looks like.

:class:`DataController` holds the logic (plain pandas, tested without a browser); :class:`DataPanel`
is its view.

Example:
    >>> from dltoolkit.recipes import load_recipe
    >>> data = DataController(SpecState(load_recipe("wine")))
    >>> data.set_target("target")
    'multiclass'
    >>> int(data.column_table().set_index("column").loc["alcohol", "missing"])
    0
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ipywidgets as w
import pandas as pd

from dltoolkit.data import DATASETS
from dltoolkit.errors import DataError, DLToolkitError, closest, message
from dltoolkit.spec import Spec
from dltoolkit.widgets._common import MessageBox, labelled, table_html
from dltoolkit.widgets._state import SpecState

SOURCES = ("dataset", "csv", "dataframe", "images")


def suggest_kind(y: pd.Series) -> str:
    """binary / multiclass for labels (text, booleans, few whole numbers), regression otherwise."""
    values = y.dropna()
    n = values.nunique()
    numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    whole = numeric and bool((values.astype(float) % 1 == 0).all())
    if numeric and not (whole and n <= 20):
        return "regression"
    return "binary" if n <= 2 else "multiclass"


class DataController:
    """Loads the data a spec names and edits the spec's task, data and preprocess sections.

    Args:
        state: the shared spec.
        namespace: where DataFrames are looked up by name (default: the IPython user namespace).
    """

    def __init__(self, state: SpecState, namespace: dict[str, Any] | None = None) -> None:
        self.state = state
        self.namespace = namespace
        self.frame: pd.DataFrame | None = None
        self.guessed: str | None = None  # a target taken as the last column, for the user to confirm
        self.images = False  # the source is an image folder or manifest: frame lists the files
        spec = state.spec
        if spec.data.source == "frame":
            self.frame = state.data if isinstance(state.data, pd.DataFrame) else None
        else:
            self.frame = self._read(spec)

    # ------------------------------------------------------------------ loading
    def _read(self, spec: Spec) -> pd.DataFrame:
        from dltoolkit.data.images.source import image_files, is_image_source, source_format
        from dltoolkit.data.load import load_raw

        if is_image_source(spec):
            self.images = True
            return image_files(spec)
        if source_format(spec) == "table_files":
            from dltoolkit.data.tables.prepare import preview

            return preview(spec)
        X, y = load_raw(spec)
        return X.assign(**{y.name: y})

    def load(self, kind: str, value: Any) -> pd.DataFrame:
        """Load a bundled dataset (``"dataset"``), a CSV file (``"csv"``), a kernel DataFrame, or an
        image folder or manifest (``"images"``: a ``path``/``target`` frame of the files, nothing decoded)."""
        if kind == "images":
            return self._load_images(str(value))
        self.images = False
        if kind == "dataset":
            frame, source, data, name = DATASETS.get(value)({}), value, None, str(value)
        elif kind == "csv":
            frame, source, data, name = self._csv(str(value)), str(value), None, Path(str(value)).stem
        elif kind == "dataframe":
            frame, source = self._dataframe(value), "frame"
            data, name = frame, value if isinstance(value, str) else "frame"
        else:
            raise DataError(message("Unknown data source kind", kind, f"one of {list(SOURCES)}"))
        self._switch(frame, source, data, name)
        return frame

    def _load_images(self, path: str) -> pd.DataFrame:
        from dltoolkit.data.images.source import image_files, source_format

        source = str(Path(path).expanduser())
        probe = self.state.spec.with_values({"data.source": source, "data.format": "auto"})
        if source_format(probe) in ("table", "table_files"):
            raise DataError(
                message(
                    "Not an image source",
                    path,
                    "a folder of class subfolders of images, or a CSV/Parquet manifest with a path column",
                )
            )
        if Path(source).is_dir():  # a folder's target is its subfolders' names, under this name
            probe = probe.with_values({"task.target": "target"})
        probe = probe.with_values({"data.features": None, "data.exclude": [], "data.categorical": None,
                                   "preprocess.columns": {}, "preprocess.shape": None, "preprocess.text": None})  # fmt: skip
        frame = image_files(probe)
        self.images = True
        self.state.data = None
        self._switch(frame, source, None, Path(source).stem or "images")
        return frame

    def _csv(self, path: str) -> pd.DataFrame:
        file = Path(path).expanduser()
        if not file.is_file():
            raise DataError(
                message("CSV file not found", path, "an existing file", f"Working directory: {Path.cwd()}")
            )
        try:
            return pd.read_csv(file)
        except (ValueError, OSError) as e:
            raise DataError(
                message("Could not read the CSV file", path, "a readable CSV file", str(e))
            ) from e

    def _dataframe(self, value: Any) -> pd.DataFrame:
        if isinstance(value, pd.DataFrame):
            return value
        space = self.namespace if self.namespace is not None else _user_namespace()
        frames = sorted(k for k, v in space.items() if isinstance(v, pd.DataFrame) and not k.startswith("_"))
        if value not in frames:
            hint = closest(str(value), frames)
            raise DataError(
                message(
                    "No DataFrame of that name in the kernel",
                    value,
                    f"one of {frames}",
                    f"Did you mean {hint!r}?" if hint else "Create it in a cell first.",
                )
            )
        return space[value]

    def frames(self) -> list[str]:
        """Names of the DataFrames in the kernel namespace."""
        space = self.namespace if self.namespace is not None else _user_namespace()
        return sorted(k for k, v in space.items() if isinstance(v, pd.DataFrame) and not k.startswith("_"))

    def _switch(self, frame: pd.DataFrame, source: str, data: Any, name: str) -> None:
        """Make ``frame`` the data; the spec's name follows it (runs and sweeps are named after it)."""
        target = self.state.spec.task.target
        self.guessed = None
        if target not in frame.columns:
            target, named = guess_target(frame)
            self.guessed = None if named else target
        spec = self.state.spec.to_dict()
        spec["name"] = name
        spec["data"] |= {
            "source": source,
            "features": None,
            "exclude": [],
            "categorical": None,
            "options": {},
        }
        text = spec["preprocess"].get("text")
        keep_text = text is not None and text.get("column") in frame.columns
        spec["preprocess"] |= {"columns": {}, "shape": None, "text": text if keep_text else None}
        spec["task"] |= {"target": target, "kind": suggest_kind(frame[target]), "class_names": None}
        self.frame = frame
        self.state.data = data
        self.state.set(Spec.from_dict(spec))

    # ------------------------------------------------------------------ editing
    def _require(self, column: str) -> None:
        columns = [str(c) for c in self._frame().columns]
        if column not in columns:
            hint = closest(str(column), columns)
            raise DataError(
                message(
                    "Unknown column",
                    column,
                    f"one of {columns}",
                    f"Did you mean {hint!r}?" if hint else "Check the spelling.",
                )
            )

    def _frame(self) -> pd.DataFrame:
        if self.frame is None:
            raise DataError("No data loaded yet: pick a dataset, a CSV file or a DataFrame and press Load.")
        return self.frame

    def set_target(self, column: str, kind: str | None = None) -> str:
        """Make ``column`` the target; the task kind is ``kind`` or the suggested one. Returns the kind."""
        self._require(column)
        kind = kind or suggest_kind(self._frame()[column])
        features = self.state.spec.data.features
        values: dict[str, Any] = {"task.target": column, "task.kind": kind, "task.class_names": None}
        if features and column in features:
            values["data.features"] = [f for f in features if f != column]
        self.state.update(values)
        return kind

    def set_column(
        self,
        column: str,
        scale: str | None = None,
        impute: str | None = None,
        categorical: bool | None = None,
    ) -> None:
        """Per-column preprocessing overrides (None: the panel-wide default)."""
        self._require(column)
        columns = {k: v.model_dump() for k, v in self.state.spec.preprocess.columns.items()}
        entry = {"scale": scale, "impute": impute, "categorical": categorical}
        if any(v is not None for v in entry.values()):
            columns[column] = entry
        else:
            columns.pop(column, None)
        spec = self.state.spec.to_dict()
        spec["preprocess"]["columns"] = columns
        self.state.set(Spec.from_dict(spec))

    def set_split(self, test: float, val: float) -> None:
        """Fractions held out for the test and validation splits (validated by the spec)."""
        self.state.update({"data.split.test": test, "data.split.val": val})

    # ------------------------------------------------------------------ looking
    def preview(self, n: int = 20) -> pd.DataFrame:
        return self._frame().head(n)

    def column_table(self) -> pd.DataFrame:
        """One row per column: dtype, numeric/categorical/target, missing values, distinct values."""
        frame, spec = self._frame(), self.state.spec
        kinds = self._kinds(frame.drop(columns=[spec.task.target], errors="ignore"))
        rows = [
            {
                "column": str(c),
                "dtype": str(frame[c].dtype),
                "kind": "target" if c == spec.task.target else kinds.get(str(c), "?"),
                "missing": int(frame[c].isna().sum()),
                "unique": int(frame[c].nunique()),
            }
            for c in frame.columns
        ]
        return pd.DataFrame(rows)

    def _kinds(self, X: pd.DataFrame) -> dict[str, str]:
        from dltoolkit.data._columns import column_kinds

        text = self.state.spec.preprocess.text
        if text is not None:
            return {str(c): "text" if c == text.column else "ignored" for c in X.columns}
        try:
            return column_kinds(X, self.state.spec.preprocess, self.state.spec.data.categorical)
        except DLToolkitError:
            return {}

    def image_preview(self, per_class: int = 8) -> str:
        """Thumbnails per class with counts, then a few images as the model gets them and augmented."""
        from dltoolkit.widgets._image_preview import augmented_html, thumbnails_html

        spec = self.state.spec
        return (
            thumbnails_html(self._frame(), spec.task.target, per_class)
            + "<b>Model inputs and training augmentations</b>"
            + augmented_html(spec, self._frame())
        )

    def image_summary(self) -> pd.DataFrame:
        """Images, classes, file formats and the model's input shape."""
        from dltoolkit.widgets._image_preview import summary

        return summary(self._frame(), self.state.spec)

    def class_balance(self) -> pd.DataFrame | None:
        """Counts and shares per class of the target (None for regression)."""
        spec = self.state.spec
        if not spec.task.is_classification or spec.task.target not in self._frame().columns:
            return None
        counts = self._frame()[spec.task.target].value_counts().sort_index()
        return pd.DataFrame(
            {
                "class": counts.index.astype(str),
                "rows": counts.values,
                "share": (counts.values / counts.sum()).round(3),
            }
        )


TARGET_NAMES = ("target", "label", "labels", "class", "y", "outcome", "response", "species", "diagnosis")


def guess_target(frame: pd.DataFrame) -> tuple[str, bool]:
    """(column, named): a column named like a target (``target``, ``label``, ``class``...; any case,
    also as a suffix such as ``price_target``), else the last column with ``named`` False, so that
    the panel asks the user to confirm it."""
    columns = [str(c) for c in frame.columns]
    lower = {c.lower(): c for c in columns}
    for name in TARGET_NAMES:
        if name in lower:
            return lower[name], True
    for c in columns:
        if c.lower().endswith(("_target", "_label", "_class")):
            return c, True
    return columns[-1], False


def _user_namespace() -> dict[str, Any]:
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython comes with ipywidgets
        return {}
    shell = get_ipython()
    return shell.user_ns if shell is not None else {}


class DataPanel(w.VBox):
    """Source, target, per-column preprocessing and split controls over a :class:`DataController`."""

    def __init__(self, controller: DataController) -> None:
        super().__init__()
        self.add_class("dlt-data-panel")
        self.controller = c = controller
        spec = c.state.spec
        self.message = MessageBox()
        self.kind = labelled(
            w.ToggleButtons(
                options=SOURCES,
                value="dataframe"
                if spec.data.source == "frame"
                else "dataset"
                if spec.data.source in DATASETS
                else "images"
                if c.images
                else "csv",
            ),
            "dlt-source-kind",
        )
        self.dataset = labelled(
            w.Dropdown(
                options=DATASETS.names(),
                description="Dataset",
                value=spec.data.source if spec.data.source in DATASETS else None,
            ),
            "dlt-dataset",
        )
        self.path = labelled(
            w.Text(description="Path / frame", placeholder="data.csv, a DataFrame name or an image folder"),
            "dlt-source-path",
        )
        self.load_button = labelled(w.Button(description="Load", icon="upload"), "dlt-load")
        self.target = labelled(
            w.Combobox(description="Target", ensure_option=False, continuous_update=False), "dlt-target"
        )
        self.task_kind = labelled(
            w.Dropdown(options=["binary", "multiclass", "regression"], description="Task"), "dlt-task-kind"
        )
        self.column = labelled(w.Combobox(description="Column", ensure_option=False), "dlt-column")
        self.scale = labelled(
            w.Dropdown(options=["default", "standard", "minmax", "none"], description="Scale"), "dlt-scale"
        )
        self.impute = labelled(
            w.Dropdown(options=["default", "mean", "median", "most_frequent", "none"], description="Impute"),
            "dlt-impute",
        )
        self.categorical = labelled(
            w.Dropdown(options=["default", "yes", "no"], description="Categorical"), "dlt-categorical"
        )
        self.column_button = labelled(w.Button(description="Apply to column"), "dlt-apply-column")
        self.test = labelled(
            w.FloatText(value=spec.data.split.test, description="Test", step=0.05), "dlt-split-test"
        )
        self.val = labelled(
            w.FloatText(value=spec.data.split.val, description="Val", step=0.05), "dlt-split-val"
        )
        self.preview = labelled(  # scrolls inside its own box, both ways
            w.HTML(layout=w.Layout(max_height="260px", max_width="100%", overflow="auto")), "dlt-preview"
        )
        self.columns = labelled(w.HTML(), "dlt-columns")
        self.balance = labelled(w.HTML(), "dlt-balance")
        self.load_button.on_click(lambda _: self._try(self._load))
        self.target.observe(lambda ch: self._try(self._set_target, ch["new"]), "value")
        self.task_kind.observe(lambda ch: self._try(self._set_kind, ch["new"]), "value")
        self.column_button.on_click(lambda _: self._try(self._apply_column))
        for box in (self.test, self.val):
            box.observe(lambda _ch: self._try(c.set_split, self.test.value, self.val.value), "value")
        self.children = [
            w.HBox([self.kind, self.load_button]),
            w.HBox([self.dataset, self.path]),
            w.HBox([self.target, self.task_kind]),
            w.HBox([self.column, self.scale, self.impute, self.categorical, self.column_button]),
            w.HBox([self.test, self.val]),
            self.message,
            w.HTML("<b>Preview</b>"),
            self.preview,
            w.HBox(
                [
                    w.VBox([w.HTML("<b>Columns</b>"), self.columns]),
                    w.VBox([w.HTML("<b>Class balance</b>"), self.balance]),
                ]
            ),
        ]
        self._syncing = False
        self._confirm = ""
        for widget in (
            self.path,
            self.target,
            self.task_kind,
            self.column,
            self.scale,
            self.impute,
            self.categorical,
            self.test,
            self.val,
            self.dataset,
        ):
            widget.style.description_width = "initial"  # labels whole, never cut off
        self.refresh()

    def _try(self, action, *args: Any) -> None:
        if self._syncing:
            return
        self.message.clear()
        self._confirm = ""
        try:
            action(*args)
        except (DLToolkitError, ValueError, KeyError, OSError) as e:
            self.message.error(e)
            return
        self.refresh()
        if self._confirm:
            self.message.info(self._confirm)

    def _load(self) -> None:
        value = self.dataset.value if self.kind.value == "dataset" else self.path.value.strip()
        frame = self.controller.load(self.kind.value, value)
        text = f"Loaded {len(frame):,} rows and {frame.shape[1]} columns."
        if self.controller.images:
            text = f"Found {len(frame):,} images (nothing decoded yet)."
        if self.controller.guessed is not None:
            text += (
                f" No column is named like a target (target, label, class, y...): the last one, "
                f"{self.controller.guessed!r}, is the target for now. Pick the right one under Target."
            )
        self.message.info(text)

    def _set_target(self, column: str) -> None:
        if column and column != self.controller.state.spec.task.target:
            self.controller.set_target(column)

    def _set_kind(self, kind: str) -> None:
        if kind != self.controller.state.spec.task.kind:
            self.controller.set_target(self.controller.state.spec.task.target, kind)

    def _apply_column(self) -> None:
        pick = {"default": None, "yes": True, "no": False}
        self.controller.set_column(
            self.column.value,
            None if self.scale.value == "default" else self.scale.value,
            None if self.impute.value == "default" else self.impute.value,
            pick[self.categorical.value],
        )
        chosen = {
            "scale": self.scale.value,
            "impute": self.impute.value,
            "categorical": self.categorical.value,
        }
        said = ", ".join(f"{k} {v}" for k, v in chosen.items() if v != "default") or "the panel-wide defaults"
        self._confirm = f"Column {self.column.value!r} now uses {said}."

    def refresh(self) -> None:
        c, spec = self.controller, self.controller.state.spec
        self._syncing = True
        try:
            if c.frame is not None:
                names = [str(x) for x in c.frame.columns]
                self.target.options, self.column.options = names, names
            self.target.value = spec.task.target
            self.task_kind.value = spec.task.kind
            self.test.value, self.val.value = spec.data.split.test, spec.data.split.val
        finally:
            self._syncing = False
        if c.frame is None:
            return
        if c.images:
            self.preview.value = c.image_preview()
            self.columns.value = table_html(c.image_summary(), "dlt-table dlt-columns-table")
        else:
            self.preview.value = table_html(c.preview(), "dlt-table dlt-preview-table", na_rep="(missing)")
            self.columns.value = table_html(c.column_table(), "dlt-table dlt-columns-table")
        balance = c.class_balance()
        self.balance.value = (
            "(regression)" if balance is None else table_html(balance, "dlt-table dlt-balance-table")
        )
