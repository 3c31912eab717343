"""Error types with one message shape: what was wrong, what was received, what was expected, how to fix it."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class DLToolkitError(Exception):
    """Base class of every error dltoolkit raises on purpose."""


class SpecError(DLToolkitError, ValueError):
    """The experiment spec (or a value in it) is invalid."""


class UnknownNameError(DLToolkitError, KeyError):
    """A name (recipe, layer, optimizer, option...) is not registered."""

    def __str__(self) -> str:  # KeyError would otherwise repr() the message
        return str(self.args[0]) if self.args else ""


class DataError(DLToolkitError, ValueError):
    """The data does not fit the spec (missing file, column, bad values)."""


class GraphError(DLToolkitError, ValueError):
    """The computation graph is malformed or its shapes do not fit."""


class TrainingError(DLToolkitError, RuntimeError):
    """Training stopped because something went wrong (e.g. a NaN loss)."""


class DataWarning(UserWarning):
    """The data can be used but probably not as meant (an ID-like column, too many categories)."""


def closest(name: str, choices: Iterable[str]) -> str | None:
    """Return the registered name closest to ``name``, or None."""
    matches = difflib.get_close_matches(str(name), list(choices), n=1, cutoff=0.5)
    return matches[0] if matches else None


def message(what: str, received: object, expected: str, fix: str | None = None) -> str:
    """Build an error message in the project's one shape."""
    text = f"{what}: received {received!r}; expected {expected}."
    if fix:
        text += f" {fix}"
    return text


def unknown(kind: str, name: str, choices: Iterable[str]) -> UnknownNameError:
    """An UnknownNameError for ``name`` among ``choices`` with a 'did you mean' hint."""
    choices = sorted(choices)
    hint = closest(name, choices)
    fix = f"Did you mean {hint!r}?" if hint else "Use one of the names listed."
    return UnknownNameError(message(f"Unknown {kind}", name, f"one of {choices}", fix))
