"""String-keyed registries usable from YAML; unknown keys raise with the closest matches."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from dlworkflow.errors import UnknownKeyError

T = TypeVar("T")


def closest(word: str, choices: list[str], n: int = 3) -> list[str]:
    return difflib.get_close_matches(word, choices, n=n, cutoff=0.4)


class Registry(Generic[T]):
    """A named collection of entries (models, metrics, datasets) addressed by string keys."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def decorator(entry: T) -> T:
            self.add(name, entry)
            return entry

        return decorator

    def add(self, name: str, entry: T) -> None:
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._entries[name] = entry

    def get(self, name: str) -> T:
        try:
            return self._entries[name]
        except KeyError:
            names = sorted(self._entries)
            near = closest(name, names)
            hint = f"did you mean {', '.join(repr(n) for n in near)}?" if near else ""
            raise UnknownKeyError(
                f"Unknown {self.kind} {name!r}.",
                expected=f"one of: {', '.join(names)}",
                received=repr(name),
                fix=hint or f"pick one of the registered {self.kind}s",
            ) from None

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
