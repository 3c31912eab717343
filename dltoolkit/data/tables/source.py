"""Table files: which files, their columns, row counts and read units. Nothing is loaded here.

``data.source`` names one Parquet file, a folder of Parquet or CSV shards (searched recursively;
hidden files and names starting with ``_`` such as ``_SUCCESS`` are skipped) or a glob such as
``data/part-*.parquet``; ``data.format: table_files`` says so, or ``auto`` recognises it. All files
are one table, read in the order of their sorted paths: every shard must have the same columns
(and, for Parquet, the same types).

A :class:`TableFiles` reads in *units*: one Parquet row group, or one whole CSV file. A unit's rows
keep their place in the table (``offsets``), so a split drawn on row positions selects the same
rows whether the table is loaded at once or streamed.

Example:
    >>> files = TableFiles.open("data/shards")   # doctest: +SKIP
    >>> files.rows, files.columns[:2]            # doctest: +SKIP
    (1000000, ['x0', 'x1'])
"""

from __future__ import annotations

import glob
import os
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dltoolkit.errors import DataError, closest, message

PARQUET_EXTENSIONS = (".parquet", ".pq")
TABLE_EXTENSIONS = (*PARQUET_EXTENSIONS, ".csv")


def is_glob(source: str) -> bool:
    return any(c in source for c in "*?[")


def is_table_files(source: str) -> bool:
    """True for a Parquet file, a glob, or a folder holding Parquet/CSV shards and no image classes.

    Each walk stops at its first find: an image folder is told apart by its first image, not by
    listing every file under it (the image source lists them once, after).
    """
    from dltoolkit.data.images.source import has_image_under

    if is_glob(source):
        return True
    path = Path(source).expanduser()
    if path.is_file():
        return path.suffix.lower() in PARQUET_EXTENSIONS
    if not path.is_dir():
        return False
    subfolders = [Path(e.path) for e in os.scandir(path) if e.is_dir() and not e.name.startswith(".")]
    if any(has_image_under(folder) for folder in subfolders[:20]):
        return False
    return next(_walk_shards(path), None) is not None


def _shards_under(root: Path) -> list[Path]:
    return list(_walk_shards(root))


def _walk_shards(root: Path) -> Iterator[Path]:
    """The Parquet/CSV shards under ``root``, in sorted path order, found as the walk goes."""
    for here, dirs, names in os.walk(root, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not d.startswith((".", "_")))
        for n in sorted(names):
            if n.lower().endswith(TABLE_EXTENSIONS) and not n.startswith((".", "_")):
                yield Path(here) / n


def list_files(source: str) -> list[Path]:
    """The files of a table source, sorted; a clear error when there are none or formats are mixed."""
    path = Path(source).expanduser()
    if is_glob(source):
        files = sorted(Path(p) for p in glob.glob(str(path), recursive=True) if Path(p).is_file())
        files = [f for f in files if f.suffix.lower() in TABLE_EXTENSIONS]
        if not files:
            raise DataError(
                message(
                    "No Parquet or CSV file matches the glob in data.source",
                    source,
                    f"a pattern matching files ending in {', '.join(TABLE_EXTENSIONS)}",
                    f"Check the pattern (working directory: {Path.cwd()}).",
                )
            )
    elif path.is_dir():
        files = _shards_under(path)
        if not files:
            raise DataError(
                message(
                    "The folder holds no Parquet or CSV file",
                    str(path),
                    f"files ending in {', '.join(TABLE_EXTENSIONS)} (in the folder or below)",
                    "Check data.source.",
                )
            )
    elif path.is_file():
        files = [path]
    else:
        raise DataError(
            message(
                "Table file not found",
                str(path),
                "an existing Parquet file, a folder of Parquet/CSV shards or a glob",
                f"Check data.source (working directory: {Path.cwd()}).",
            )
        )
    kinds = {_kind(f) for f in files}
    if len(kinds) > 1:
        raise DataError(
            message(
                "The source mixes Parquet and CSV files",
                [f.name for f in files[:6]],
                "shards of one format",
                "Convert the shards to one format, or point data.source at one kind (a glob such as *.parquet).",
            )
        )
    return files


def _kind(file: Path) -> str:
    return "csv" if file.suffix.lower() == ".csv" else "parquet"


class TableFiles:
    """The files of one table: columns, per-unit row counts, and reading by unit or by column.

    Build with :meth:`open`, which reads every file's metadata (Parquet footers; CSV files are
    scanned once to count their rows) and raises before any training on a corrupt file or shards
    whose schemas differ. The object is small and picklable: DataLoader workers reopen the files.
    """

    def __init__(self, files: Sequence[Path], kind: str, columns: list[str], units: list[tuple[int, int, int]],
                 nbytes: int) -> None:  # fmt: skip
        self.files, self.kind, self.columns = [str(f) for f in files], kind, columns
        self.units = units  # (file index, row group (-1: the whole CSV file), rows)
        self.offsets = np.concatenate([[0], np.cumsum([u[2] for u in units])]).astype(np.int64)
        self.nbytes = nbytes  # uncompressed size (Parquet metadata; a CSV file's size on disk)
        self._local = threading.local()  # each reading thread's open Parquet file: (file index, ParquetFile)

    @property
    def rows(self) -> int:
        return int(self.offsets[-1])

    @classmethod
    def open(cls, source: str) -> TableFiles:
        """Check and describe the files of ``source`` (see :func:`list_files`; a name of
        :data:`~dltoolkit.data.tables.samples.SAMPLE_TABLES` is its folder, written on first use).

        Raises:
            DataError: no file, mixed formats, a file that is not readable Parquet/CSV (named), or
                a shard whose columns or types differ from the first one's (both listed).
        """
        from dltoolkit.data.tables.samples import SAMPLE_TABLES, sample_path

        files = list_files(str(sample_path(source)) if source in SAMPLE_TABLES else source)
        kind = _kind(files[0])
        if kind == "parquet":
            from dltoolkit._extras import require

            require("parquet", "Parquet table files")
        reader = _parquet_meta if kind == "parquet" else _csv_meta
        first_schema, units, nbytes = None, [], 0
        for i, file in enumerate(files):
            schema, counts, size = reader(file)
            if first_schema is None:
                first_schema = schema
            elif schema != first_schema:
                _schema_error(files[0], first_schema, file, schema)
            units += [(i, g if kind == "parquet" else -1, n) for g, n in enumerate(counts)]
            nbytes += size
        assert first_schema is not None, "table files: an empty list of files is refused before this"
        columns = [name for name, _ in first_schema]
        return cls(files, kind, columns, units, nbytes)

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_local"}  # workers reopen the files

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._local = threading.local()

    # ------------------------------------------------------------------ reading
    def read_unit(self, unit: int, columns: Sequence[str]) -> pd.DataFrame:
        """The rows of one unit (a Parquet row group or a CSV file), only ``columns``."""
        index, group, _ = self.units[unit]
        try:
            if self.kind == "csv":
                return pd.read_csv(self.files[index], usecols=list(columns))[list(columns)]
            # one open file per reading thread (the trials of a local sweep read the same split
            # from their own threads; a shared handle was replaced under another thread's read)
            held = getattr(self._local, "open", None)
            if held is None or held[0] != index:
                import pyarrow.parquet as pq

                held = self._local.open = (index, pq.ParquetFile(self.files[index]))
            return held[1].read_row_group(group, columns=list(columns)).to_pandas()
        except (OSError, ValueError) as e:  # pyarrow's ArrowInvalid/ArrowIOError are both
            raise DataError(
                message(
                    "Could not read a table file",
                    self.files[index],
                    f"a readable {self.kind} file",
                    f"Replace or remove it ({e}).",
                )
            ) from e

    def batches(self, columns: Sequence[str]) -> Iterator[tuple[int, pd.DataFrame]]:
        """``(first row position, frame)`` for every unit in order, only ``columns``."""
        for unit in range(len(self.units)):
            yield int(self.offsets[unit]), self.read_unit(unit, columns)

    def read(self, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """The whole table (or ``columns`` of it) as one frame, rows in the order of the units."""
        columns = list(columns) if columns is not None else self.columns
        frames = [frame for _, frame in self.batches(columns)]
        return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]

    def require(self, names: Sequence[str], what: str) -> None:
        """A DataError naming the columns found when one of ``names`` is not a column."""
        for name in names:
            if name not in self.columns:
                hint = closest(name, self.columns)
                raise DataError(
                    message(
                        f"{what} not in the table files ({len(self.files)} file(s), e.g. {Path(self.files[0]).name!r})",
                        name,
                        f"one of the columns found: {self.columns}",
                        f"Did you mean {hint!r}?" if hint else "Check task.target / data.features.",
                    )
                )


def _parquet_meta(file: Path) -> tuple[list[tuple[str, str]], list[int], int]:
    import pyarrow.parquet as pq

    try:
        meta = pq.ParquetFile(file).metadata
        schema = meta.schema.to_arrow_schema()
    except (OSError, ValueError) as e:
        raise DataError(
            message(
                "Not a readable Parquet file",
                str(file),
                "a complete Parquet file (its footer names the columns and row groups)",
                f"Rewrite or remove the file ({e}).",
            )
        ) from e
    counts = [meta.row_group(g).num_rows for g in range(meta.num_row_groups)]
    size = sum(meta.row_group(g).total_byte_size for g in range(meta.num_row_groups))
    fields = [(f.name, str(f.type)) for f in schema if not f.name.startswith("__index_level_")]
    return fields, counts, size


def _csv_meta(file: Path) -> tuple[list[tuple[str, str]], list[int], int]:
    """The header and the row count of a CSV file, read in chunks as :meth:`TableFiles.read_unit` reads it."""
    try:
        names = [str(c) for c in pd.read_csv(file, nrows=0).columns]
        rows = sum(len(chunk) for chunk in pd.read_csv(file, usecols=[0], chunksize=1 << 16))
    except (OSError, ValueError, pd.errors.ParserError) as e:
        raise DataError(
            message("Not a readable CSV file", str(file), "a CSV file with a header row", str(e))
        ) from e
    return [(n, "") for n in names], [rows], file.stat().st_size


def _schema_error(first: Path, expected: list, file: Path, found: list) -> None:
    want, got = dict(expected), dict(found)
    missing = [c for c in want if c not in got]
    extra = [c for c in got if c not in want]
    retyped = [f"{c}: {want[c]} -> {got[c]}" for c in want if c in got and want[c] != got[c]]
    diff = "; ".join(
        part
        for part in (
            f"missing {missing}" if missing else "",
            f"extra {extra}" if extra else "",
            f"types {retyped}" if retyped else "",
            "columns in another order" if not (missing or extra or retyped) else "",
        )
        if part
    )
    raise DataError(
        message(
            f"Shard {file.name!r} has another schema than {first.name!r}",
            diff,
            f"the columns of {first.name!r}: {[f'{n} ({t})' if t else n for n, t in expected]}",
            "Write every shard with the same columns and types (e.g. cast integer columns with gaps to float).",
        )
    )
