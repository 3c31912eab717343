"""Quiet libraries: users see dltoolkit's own progress, not Lightning's, ONNX's or Ray's chatter.

Lightning announces the accelerators, gives tips and says why ``fit`` stopped (INFO records of its
``rank_zero`` logger); torch's ONNX exporter logs one warning per missing torchvision op; and the
libraries emit deprecation warnings about each other. None of it is actionable by a dltoolkit user,
so :func:`quiet_libraries` silences it while dltoolkit trains or exports, unless the user asks for it
with ``--verbose`` or ``DLTOOLKIT_VERBOSE=1`` (inherited by Ray's workers). dltoolkit's own
messages and every error are unaffected.

Example:
    >>> with quiet_libraries():
    ...     pass
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import warnings
from collections.abc import Iterator

VERBOSE_ENV = "DLTOOLKIT_VERBOSE"
LOGGERS = (
    "pytorch_lightning",
    "lightning",
    "lightning_fabric",
    "lightning.pytorch",
    "lightning.fabric",
    "torch.onnx",
)
WARNING_MODULES = (
    r"(pytorch_lightning|lightning|lightning_fabric|torch|torchmetrics|onnx|onnxscript|ray)(\.|$)"
)


def verbose() -> bool:
    """Whether the user asked for the libraries' own output (``DLTOOLKIT_VERBOSE=1``)."""
    return os.environ.get(VERBOSE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def set_verbose(on: bool) -> None:
    """Turn the libraries' output on or off for this process and the Ray workers it starts later."""
    os.environ[VERBOSE_ENV] = "1" if on else "0"


_LOCK = threading.Lock()
_inside = 0  # blocks of quiet_libraries() open now, in any thread
_saved: tuple[list[int], list] | None = None  # the logger levels and warning filters before the first


@contextlib.contextmanager
def quiet_libraries() -> Iterator[None]:
    """Raise the libraries' loggers to ERROR and ignore their warnings inside the block (unless verbose).

    Safe in threads (a local sweep's trials train side by side): the first block to open saves the
    loggers' levels and the warning filters and quiets them, the last one to close restores them; a
    block closing while another is still open changes nothing.
    """
    if verbose():
        yield
        return
    _enter()
    try:
        yield
    finally:
        _leave()


def _enter() -> None:
    global _inside, _saved
    with _LOCK:
        _inside += 1
        if _inside > 1:
            return
        loggers = [logging.getLogger(name) for name in LOGGERS]
        _saved = ([lg.level for lg in loggers], list(warnings.filters))
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        warnings.filterwarnings("ignore", module=WARNING_MODULES)


def _leave() -> None:
    global _inside, _saved
    with _LOCK:
        _inside -= 1
        if _inside > 0 or _saved is None:
            return
        levels, filters = _saved
        _saved = None
        for name, level in zip(LOGGERS, levels, strict=True):
            logging.getLogger(name).setLevel(level)
        warnings.filters[:] = filters  # type: ignore[index]  # a list at run time
        warnings._filters_mutated()  # type: ignore[attr-defined]  # what catch_warnings calls on exit


RAY_LOGGERS = ("ray._private", "ray.tune", "ray.train", "ray.air", "ray.util")


def quiet_ray() -> None:
    """Keep Ray's start-up banners (token authentication, "Started a local Ray instance"), Tune's
    experiment box and INFO lines out of the driver's output, for the rest of the process (unless
    verbose).

    ``ray.init`` resets the level of the ``ray`` logger itself, so the levels are set on its
    children, which it leaves alone; their errors still show.
    """
    if verbose():
        return
    # Tune's newer console output prints a "Configuration for experiment" box and result paths
    # whatever its verbosity; the classic reporter with verbose=0 (what build_tuner asks) prints none.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    for name in RAY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
