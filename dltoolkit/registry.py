"""One generic registry for layers, optimizers, schedules, datasets, recipes...

Example:
    >>> layers = Registry("layer")
    >>> @layers.register("identity")
    ... def identity(): ...
    >>> layers.get("identity") is identity
    True
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from dltoolkit.errors import DLToolkitError, unknown

T = TypeVar("T")


class Registry(Generic[T]):
    """A name -> object mapping that rejects duplicates and suggests close names."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator that registers an object under ``name``; a duplicate is an error."""

        def deco(obj: T) -> T:
            self.add(name, obj)
            return obj

        return deco

    def add(self, name: str, obj: T) -> None:
        if name in self._items:
            raise DLToolkitError(f"A {self.kind} named {name!r} is already registered; pick another name.")
        self._items[name] = obj

    def get(self, name: str) -> T:
        """Return the object for ``name`` or raise UnknownNameError naming the closest match."""
        try:
            return self._items[name]
        except (KeyError, TypeError):
            raise unknown(self.kind, name, self._items) from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._items)
