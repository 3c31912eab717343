"""The one live spec every panel reads and writes, with change listeners and an undo stack.

Example:
    >>> from dltoolkit.recipes import load_recipe
    >>> state = SpecState(load_recipe("wine"))
    >>> _ = state.update({"train.epochs": 3})
    >>> state.spec.train.epochs, state.undo().train.epochs
    (3, 40)
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from dltoolkit.spec import Spec

Listener = Callable[[Spec], None]


class SpecState:
    """Holds the current spec (plus a DataFrame for ``source: frame``); nothing else keeps a copy.

    Args:
        spec: the starting spec.
        data: the data passed to training when the spec's source is ``frame``.
    """

    def __init__(self, spec: Spec, data: Any = None) -> None:
        self._spec = spec
        self.data = data
        self._undo: list[Spec] = []
        self._listeners: list[Listener] = []
        self._lock = threading.RLock()

    @property
    def spec(self) -> Spec:
        return self._spec

    def observe(self, listener: Listener) -> None:
        """Call ``listener(spec)`` after every change."""
        self._listeners.append(listener)

    def set(self, spec: Spec) -> Spec:
        """Make ``spec`` the current spec (the previous one can be restored with :meth:`undo`)."""
        with self._lock:
            if spec == self._spec:
                return spec
            self._undo.append(self._spec)
            self._spec = spec
        self._notify()
        return spec

    def update(self, values: dict[str, Any]) -> Spec:
        """Apply dotted-path values (validated: a bad value raises SpecError and changes nothing)."""
        return self.set(self._spec.with_values(values))

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    def undo(self) -> Spec:
        """Restore the spec before the last change (no-op when there is none)."""
        with self._lock:
            if self._undo:
                self._spec = self._undo.pop()
        self._notify()
        return self._spec

    def _notify(self) -> None:
        for listener in list(self._listeners):
            listener(self._spec)
