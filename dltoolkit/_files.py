"""Writing files safely: the one place for atomic writes and output folders.

Every file and folder dltoolkit writes goes through here:

* :func:`atomic_path` / :func:`atomic_write_text` write a temporary file beside the target and
  rename it into place, so a reader never sees half a file;
* :func:`atomic_dir` builds a whole directory (a model bundle) beside its target and swaps it in;
* both give the result the permissions the process's umask asks for (``0o666 & ~umask`` for
  files, ``0o777 & ~umask`` for folders), as ``open()`` and ``mkdir()`` would, not the private
  ``0600`` / ``0700`` of :mod:`tempfile`;
* :func:`new_out_dir` makes a fresh, unique output folder (``runs/<stem>-<time>-<suffix>``) and
  :func:`claim_out` refuses to write into a non-empty one unless told to overwrite it.

Example:
    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp())
    >>> atomic_write_text(root / "a.txt", "hi")
    >>> (root / "a.txt").read_text()
    'hi'
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from dltoolkit.errors import DLToolkitError, message


class OutputExistsError(DLToolkitError, FileExistsError):
    """An output folder already holds results and overwriting was not asked for."""


def umask() -> int:
    """The process's current umask (read from /proc where possible: no moment with another umask)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    old = os.umask(0o022)
    os.umask(old)
    return old


def _publish(path: str | os.PathLike, directory: bool = False) -> None:
    """Give a temporary file or folder the mode a plain ``open()`` / ``mkdir()`` would have."""
    os.chmod(path, (0o777 if directory else 0o666) & ~umask())


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary file path beside ``path``; on success it is renamed onto ``path``.

    Whatever the block writes to the yielded path replaces ``path`` whole when the block ends
    without an exception; on any exception (Ctrl-C too) the temporary file is removed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        _publish(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically (temporary file beside it, then rename)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temporary file beside it, then rename)."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary sibling directory; on success it replaces ``path`` whole, else it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.tmp-"))
    try:
        yield tmp
        _publish(tmp, directory=True)
        swap_in(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def swap_in(tmp: Path, path: Path) -> None:
    """Rename ``tmp`` onto ``path``, moving an existing ``path`` aside first and removing it after."""
    old = None
    if path.exists():
        old = path.with_name(f".{path.name}.old-{os.getpid()}-{secrets.token_hex(2)}")
        os.replace(path, old)
    os.replace(tmp, path)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def new_out_dir(stem: str, root: str | os.PathLike = "runs") -> Path:
    """Create and return a fresh output folder ``<root>/<stem>-<YYYYmmdd-HHMMSS>-<4 hex digits>``.

    The folder is created exclusively (a name taken in the meantime is drawn again), so two
    launches in the same second, in one process or several, never share a folder.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    for _ in range(100):
        folder = root / f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"
        try:
            folder.mkdir()
            return folder
        except FileExistsError:
            continue
    raise DLToolkitError(f"Could not create a fresh output folder under {str(root)!r}: every name was taken.")


def is_empty_dir(path: Path) -> bool:
    """True when ``path`` does not exist or is a folder with nothing in it."""
    return not path.exists() or (path.is_dir() and not any(path.iterdir()))


def check_out(out: str | os.PathLike, overwrite: bool = False, *, sweep: bool = False) -> None:
    """Refuse ``out`` when it is a file, or a non-empty folder and ``overwrite`` is false.

    Nothing is created or removed: call it before any work, then :func:`claim_out`. For a sweep
    whose folder holds an earlier sweep the message points to resuming it instead.

    Raises:
        OutputExistsError: what is wrong, what is there and the ways out.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise OutputExistsError(
            message(
                "The output folder is a file", str(out), "a folder (or a new name)", "Choose another --out."
            )
        )
    if overwrite or is_empty_dir(out):
        return
    if sweep and (out / "spec.yaml").is_file() and ((out / "tune").is_dir() or (out / "study.log").is_file()):
        fix = (
            f"It holds an earlier sweep: continue it with `dltoolkit tune --resume {out}` "
            f"(API: dltoolkit.tune.resume({str(out)!r})), choose another --out, or pass "
            "--overwrite (API: overwrite=True) to replace it."
        )
    else:
        fix = "Choose another --out, or pass --overwrite (API: overwrite=True) to replace what is there."
    shown = sorted(p.name for p in out.iterdir())[:5]
    raise OutputExistsError(
        message(f"The output folder {str(out)!r} is not empty", shown, "a new or empty folder", fix)
    )


def claim_out(out: str | os.PathLike, overwrite: bool = False, *, sweep: bool = False) -> Path:
    """Make ``out`` an empty folder ready for fresh results (:func:`check_out` first).

    With ``overwrite`` the folder's old contents are removed.
    """
    check_out(out, overwrite, sweep=sweep)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for child in out.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()
    return out
