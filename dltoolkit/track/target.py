"""Where tracking goes: the MLflow tracking URI and TensorBoard folder a ``track:`` section names.

``track.mlflow`` may be ``true`` (a SQLite store beside the run folders), a folder or ``.db`` file
(a SQLite store there), or any MLflow tracking URI (``http://host:5000``, ``sqlite:///path.db``,
``databricks``). A server's URI is probed once, quickly, before any work: one that does not answer
turns tracking off for the run with one warning instead of stalling it in MLflow's retries.

Example:
    >>> mlflow_uri(True, Path("/tmp/runs/wine-1"))
    'sqlite:////tmp/runs/mlflow.db'
    >>> mlflow_uri("http://127.0.0.1:5000/", Path("runs/x"))
    'http://127.0.0.1:5000'
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from pathlib import Path

from dltoolkit.errors import message

DB_FILE = "mlflow.db"  # the local store's file, in the runs folder
ARTIFACTS = "mlartifacts"  # the local store's artifact folder, beside it (as `mlflow server` names it)
PROBE_TIMEOUT_S = 3.0


def mlflow_uri(value: bool | str | None, out: Path) -> str | None:
    """The tracking URI for ``track.mlflow`` and a run writing into ``out`` (None: off)."""
    if value is None or value is False or (isinstance(value, str) and value.strip().lower() in ("", "false")):
        return None
    if value is True or (isinstance(value, str) and value.strip().lower() == "true"):
        return sqlite_uri(Path(out).resolve().parent / DB_FILE)
    text = str(value).strip()
    if "://" in text or text == "databricks" or text.startswith("databricks:"):
        return text.rstrip("/")
    path = Path(text).expanduser()  # a folder or a .db file: a local store there
    return sqlite_uri(path if path.suffix == ".db" else path / DB_FILE)


def sqlite_uri(path: Path) -> str:
    """``sqlite:///`` plus an absolute path (four slashes in all on POSIX)."""
    return "sqlite:///" + Path(path).expanduser().resolve().as_posix()


def local_store(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI (None for other stores)."""
    return Path(uri[len("sqlite:///") :]) if uri.startswith("sqlite:///") else None


def artifact_root(uri: str) -> str | None:
    """Where a new experiment of a local store keeps its artifacts: ``mlartifacts/`` beside the
    database (MLflow's default, ``./mlruns``, would follow the working directory)."""
    db = local_store(uri)
    return (db.parent / ARTIFACTS).resolve().as_uri() if db is not None else None


def tensorboard_dir(value: bool | str | None, out: Path) -> Path | None:
    """The TensorBoard folder of the run writing into ``out``: ``<root>/<out's name>`` (None: off)."""
    if value is None or value is False or (isinstance(value, str) and value.strip().lower() in ("", "false")):
        return None
    out = Path(out).resolve()
    root = out.parent / "tensorboard" if value is True or str(value).lower() == "true" else Path(value)
    return root.expanduser().resolve() / out.name


def unreachable(uri: str) -> str | None:
    """Why the tracking server at ``uri`` cannot be used now (None: it answers, or is not a server).

    Any HTTP answer counts (an error status means the server is there and MLflow's own calls will
    say what is wrong); a refused connection, an unknown host or a timeout does not.
    """
    if not uri.startswith(("http://", "https://")):
        db = local_store(uri)
        if db is not None and not os.access(_existing(db.parent), os.W_OK):
            return f"the folder {str(db.parent)!r} of the SQLite store cannot be written"
        return None
    try:
        with urllib.request.urlopen(f"{uri}/health", timeout=PROBE_TIMEOUT_S):
            return None
    except urllib.error.HTTPError:
        return None
    except (OSError, ValueError) as e:  # URLError, timeouts, refused connections; a malformed URL
        reason = getattr(e, "reason", e)
        return f"{type(reason).__name__}: {reason}"


def _existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def off_message(uri: str, why: str) -> str:
    """The warning when MLflow tracking cannot start: what URI, what failed, how to fix it."""
    return message(
        f"MLflow tracking is off for this run: the tracking store {uri!r} cannot be used ({why})",
        uri,
        "a running MLflow server (e.g. `mlflow server --host 127.0.0.1 --port 5000`) or a local store "
        "(track.mlflow: true, a folder, or sqlite:///path/mlflow.db)",
        "Start the server or correct track.mlflow / --track; the run goes on without MLflow tracking.",
    )
