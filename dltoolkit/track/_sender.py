"""One background thread per tracking sink: training only enqueues, it never waits on a server.

A tracking call that fails (a server gone, a disk full) turns that sink off for the rest of the run
with one warning; the calls still queued are dropped. ``close`` waits a bounded time for what is
queued, so a stalled server cannot hold a finished run for long.
"""

from __future__ import annotations

import queue
import threading
import warnings
from collections.abc import Callable
from typing import Any


class TrackingWarning(UserWarning):
    """Tracking could not start or stopped; the run or sweep goes on without it."""


def warn(text: str) -> None:
    """One :class:`TrackingWarning` (shown once in a notebook, on stderr from the CLI)."""
    warnings.warn(text, TrackingWarning, stacklevel=3)


class Sender:
    """Runs the submitted calls in order on a daemon thread; the first failure turns it off.

    Args:
        name: the sink's name (the thread's name, and in the warning).
        explain: turns the failure into the warning's text.
    """

    def __init__(self, name: str, explain: Callable[[BaseException], str]) -> None:
        self.name, self.explain = name, explain
        self.failed: BaseException | None = None
        self._queue: queue.SimpleQueue[tuple[Callable[..., Any], tuple[Any, ...]] | None] = (
            queue.SimpleQueue()
        )
        self._thread = threading.Thread(target=self._loop, name=f"dltoolkit-track-{name}", daemon=True)
        self._thread.start()

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        """Queue ``fn(*args)`` (dropped once the sink has failed)."""
        if self.failed is None:
            self._queue.put((fn, args))

    def _loop(self) -> None:
        while (item := self._queue.get()) is not None:
            fn, args = item
            if self.failed is not None:
                continue
            try:
                fn(*args)
            except Exception as e:  # noqa: BLE001 - tracking must never break the run
                self.failed = e
                warn(self.explain(e))

    def close(self, timeout: float) -> bool:
        """Send what is queued, waiting at most ``timeout`` seconds; False (and a warning) if not done."""
        self._queue.put(None)
        self._thread.join(timeout)
        if self._thread.is_alive():
            warn(
                f"{self.name} tracking had not finished sending after {timeout:.0f} s (a slow or stalled "
                "tracking server): what was not sent yet is lost. Check the server, or raise "
                "DLTOOLKIT_TRACK_TIMEOUT (seconds)."
            )
            return False
        return self.failed is None
