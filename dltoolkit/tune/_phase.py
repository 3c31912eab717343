"""What a sweep is doing while it starts, for whoever launched it (the Tuning panel's status line).

Launching a sweep is one call that checks the spec, starts Ray, starts trial workers and submits
the trials; a thread that wants to show those steps wraps the call in :func:`reporting`, and the
launch code announces each step with :func:`phase`. Without a listener, ``phase`` does nothing.

Example:
    >>> seen = []
    >>> with reporting(seen.append):
    ...     phase("starting Ray")
    >>> seen
    ['starting Ray']
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

_LOCAL = threading.local()


@contextmanager
def reporting(listener: Callable[[str], None]) -> Iterator[None]:
    """Send the phases announced in this thread to ``listener`` while the block runs."""
    before = getattr(_LOCAL, "listener", None)
    _LOCAL.listener = listener
    try:
        yield
    finally:
        _LOCAL.listener = before


def phase(text: str) -> None:
    """Announce a step of starting a sweep to this thread's listener, if any."""
    listener = getattr(_LOCAL, "listener", None)
    if listener is not None:
        listener(text)
