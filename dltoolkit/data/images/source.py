"""Image sources: which files, with which targets. Nothing is decoded here.

Two layouts, chosen by ``data.format`` (or recognised by ``auto``):

* ``image_folder``: torchvision's ImageFolder layout, ``root/<class>/<file>`` (files in nested
  folders of a class count for it), the class is the folder's name;
* ``image_manifest``: a CSV or Parquet file with a column of image paths (relative to the
  manifest's folder, or absolute) and the target column (labels or numbers: regression works).

The result is a frame of absolute paths (column ``path``) and the target (column ``task.target``),
one row per image, sorted by class then path for a folder. The split is drawn on these rows.

Example:
    >>> files = image_files(spec)    # doctest: +SKIP
    >>> files.columns.tolist()       # doctest: +SKIP
    ['path', 'target']
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from dltoolkit.data.datasets import DATASETS
from dltoolkit.data.images.samples import IMAGE_SETS, image_set
from dltoolkit.errors import DataError, closest, message
from dltoolkit.spec import Spec

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff", ".ppm", ".pgm")
PATH_NAMES = ("path", "file", "filename", "image", "filepath", "image_path", "file_path")
MANIFEST_EXTENSIONS = (".csv", ".parquet", ".pq")
PATH = "path"  # the column of absolute paths in image_files' frame


def is_image_file(name: str | os.PathLike) -> bool:
    return str(name).lower().endswith(IMAGE_EXTENSIONS)


def source_format(spec: Spec) -> str:
    """``table``, ``table_files``, ``image_folder`` or ``image_manifest``: ``data.format``, or what ``auto`` recognises.

    ``auto``: a bundled dataset name or ``frame`` is a table; an image set name (``digits_folder``,
    ``shapes_folder``) is an image folder; a sample table name
    (:data:`~dltoolkit.data.tables.samples.SAMPLE_TABLES`), a glob, a folder of Parquet/CSV shards
    (see :func:`dltoolkit.data.tables.source.is_table_files`) or a Parquet file that is not a
    manifest are table files; another existing folder is an image folder; a CSV/Parquet file whose path column
    (``data.path_column``, or the first column named like one of :data:`PATH_NAMES`) holds image
    file names is a manifest; anything else is a table.
    """
    fmt = spec.data.format
    if fmt != "auto":
        return fmt
    if spec.data.source in DATASETS or spec.data.source == "frame":  # a bundled name wins over a folder
        return "table"
    if spec.data.source in IMAGE_SETS:
        return "image_folder"
    from dltoolkit.data.tables.samples import SAMPLE_TABLES
    from dltoolkit.data.tables.source import PARQUET_EXTENSIONS, is_glob, is_table_files

    source = Path(spec.data.source).expanduser()
    if (
        spec.data.source in SAMPLE_TABLES
        or is_glob(spec.data.source)
        or (source.is_dir() and is_table_files(spec.data.source))
    ):
        return "table_files"
    if source.is_dir():
        return "image_folder"
    if source.suffix.lower() in MANIFEST_EXTENSIONS and source.is_file():
        head = _read_manifest(source, rows=20)
        column = _path_column(head, spec.data.path_column, required=False)
        if column is not None and head[column].map(is_image_file).all():
            return "image_manifest"
        if source.suffix.lower() in PARQUET_EXTENSIONS:
            return "table_files"
    return "table"


def is_image_source(spec: Spec) -> bool:
    return source_format(spec) in ("image_folder", "image_manifest")


def image_files(spec: Spec) -> pd.DataFrame:
    """The images of the spec's source: absolute ``path`` and the target, one row per image."""
    _no_table_options(spec)
    if source_format(spec) == "image_folder":
        return scan_folder(source_folder(spec), spec.task.target)
    return read_manifest(spec.data.source, spec.task.target, spec.data.path_column)


def source_folder(spec: Spec) -> Path:
    """The folder of an image-folder source: ``data.source``, or an image set's folder written on first use.

    An image set (``digits_folder``, ``shapes_folder``: see :mod:`dltoolkit.datasets`) is written
    once into the cache folder with ``data.options``.
    """
    if spec.data.source in IMAGE_SETS:
        return image_set(spec.data.source, spec.data.options)
    return Path(spec.data.source).expanduser()


# ---------------------------------------------------------------------- image folders
def scan_folder(root: str | os.PathLike, target: str = "target") -> pd.DataFrame:
    """The files of an ImageFolder tree: one class per subfolder of ``root``.

    Raises:
        DataError: ``root`` is not a folder, has no class subfolders, or a class folder holds no
            image file (named, with the extensions looked for).
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(
            message(
                "Image folder not found",
                str(root),
                "an existing folder of class subfolders",
                f"Check data.source (working directory: {Path.cwd()}).",
            )
        )
    classes = sorted(e.name for e in os.scandir(root) if e.is_dir() and not e.name.startswith("."))
    if not classes:
        loose = sum(1 for e in os.scandir(root) if e.is_file() and is_image_file(e.name))
        raise DataError(
            message(
                "The image folder has no class subfolders",
                f"{root} ({loose} image file(s) directly inside)",
                "the ImageFolder layout root/<class>/<image file>, one subfolder per class",
                "Move the images into one subfolder per class (its name is the label).",
            )
        )
    rows, empty = [], []
    for name in classes:
        files = images_under(root / name)
        empty += [] if files else [name]
        rows += [(str(f), name) for f in files]
    if empty:
        raise DataError(
            message(
                f"Class folder(s) without image files in {str(root)!r}",
                empty[:10],
                f"at least one file ending in {', '.join(IMAGE_EXTENSIONS)} in every class folder",
                "Add images to those folders or remove them.",
            )
        )
    return pd.DataFrame(rows, columns=[PATH, target])


def images_under(folder: Path) -> list[Path]:
    """The image files under ``folder``, in sorted path order (hidden files and folders left out)."""
    return list(_walk_images(folder))


def has_image_under(folder: Path) -> bool:
    """Whether ``folder`` holds an image file at any depth (the walk stops at the first)."""
    return next(_walk_images(folder), None) is not None


def _walk_images(folder: Path) -> Iterator[Path]:
    for here, dirs, names in os.walk(folder, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for n in sorted(names):
            if is_image_file(n) and not n.startswith("."):
                yield Path(here) / n


# ---------------------------------------------------------------------- manifests
def read_manifest(file: str | os.PathLike, target: str, path_column: str | None = None) -> pd.DataFrame:
    """The rows of a manifest: image paths made absolute (relative ones: to the manifest's folder).

    Raises:
        DataError: the file is missing or unreadable, lacks the path or target column, has no rows,
            or names image files that do not exist (counted, the first few listed).
    """
    file = Path(file).expanduser()
    if not file.is_file():
        raise DataError(
            message(
                "Manifest file not found",
                str(file),
                "an existing CSV or Parquet file",
                f"Check data.source (working directory: {Path.cwd()}).",
            )
        )
    frame = _read_manifest(file)
    column = _path_column(frame, path_column, required=True)
    if target not in frame.columns:
        hint = closest(target, [str(c) for c in frame.columns])
        raise DataError(
            message(
                f"Target column not in the manifest {file.name!r}",
                target,
                f"one of {[str(c) for c in frame.columns]}",
                f"Did you mean {hint!r}?" if hint else "Set task.target to the label column.",
            )
        )
    if len(frame) == 0:
        raise DataError(message("The manifest has no rows", str(file), "one row per image"))
    paths = frame[column].astype(str).map(lambda p: str((file.parent / Path(p).expanduser()).resolve()))
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        raise DataError(
            message(
                f"{len(missing)} image file(s) named in the manifest {file.name!r} do not exist",
                missing[:5],
                f"paths in column {column!r} to existing files, relative to {str(file.parent)!r}",
                "Fix the paths or remove those rows.",
            )
        )
    return pd.DataFrame({PATH: paths.to_numpy(), target: frame[target].to_numpy()})


def _read_manifest(file: Path, rows: int | None = None) -> pd.DataFrame:
    try:
        if file.suffix.lower() == ".csv":
            return pd.read_csv(file, nrows=rows)
        frame = pd.read_parquet(file)
        return frame.head(rows) if rows else frame
    except ImportError as e:  # no Parquet engine
        raise DataError(
            message(
                "Cannot read a Parquet manifest",
                str(file),
                "pyarrow installed",
                "pip install pyarrow, or write the manifest as CSV.",
            )
        ) from e
    except (ValueError, OSError) as e:
        raise DataError(
            message("Could not read the manifest", str(file), "a readable CSV or Parquet file", str(e))
        ) from e


def _path_column(frame: pd.DataFrame, wanted: str | None, required: bool) -> str | None:
    columns = [str(c) for c in frame.columns]
    if wanted is not None:
        if wanted in columns:
            return wanted
        if not required:
            return None
        hint = closest(wanted, columns)
        raise DataError(
            message(
                "data.path_column not in the manifest",
                wanted,
                f"one of {columns}",
                f"Did you mean {hint!r}?" if hint else "Name the column of image paths.",
            )
        )
    lower = {c.lower(): c for c in columns}
    found = next((lower[n] for n in PATH_NAMES if n in lower), None)
    if found is None and required:
        raise DataError(
            message(
                "No column of image paths in the manifest",
                columns,
                f"a column named one of {list(PATH_NAMES)}",
                "Set data.path_column.",
            )
        )
    return found


def _no_table_options(spec: Spec) -> None:
    """Options that choose or treat columns mean nothing for images: an error, never ignored."""
    data, pre = spec.data, spec.preprocess
    set_options = [
        name
        for name, value in (
            ("data.features", data.features),
            ("data.exclude", data.exclude),
            ("data.categorical", data.categorical),
            ("preprocess.shape", pre.shape),
            ("preprocess.text", pre.text),
            ("preprocess.columns", pre.columns),
        )
        if value
    ]
    if set_options:
        raise DataError(
            message(
                "Column options set for an image source",
                set_options,
                "no column options: the image is the only input",
                "Remove them (preprocess.image sets how images become inputs).",
            )
        )
