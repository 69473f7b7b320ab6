"""Checking input files so that every problem is reported at once, each as ``"path: why"``,
an unknown key with a "did you mean". World files (emulator/world.py) and scenario files
(simulator/scenario.py) are both checked this way, as ``eni_conf`` is (terway/config/).

A check function raises ``InputError`` (or a subclass) for what it cannot accept; ``Problems``
runs each independent check through ``guard`` and keeps going, then raises them all together.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Self, TypeVar

T = TypeVar("T")
Problem = tuple[str, str]   # (field path, why)


class InputError(ValueError):
    """Bad input: ``problems`` lists every ``"path: why"`` found; the first is also ``field``
    and ``problem``."""

    def __init__(self, field: str, problem: str, more: Sequence[Problem] = ()) -> None:
        self.field = field
        self.problem = problem
        self.pairs: tuple[Problem, ...] = ((field, problem), *more)
        self.problems = tuple(f"{f}: {p}" if f else p for f, p in self.pairs)
        super().__init__("; ".join(self.problems))

    @classmethod
    def many(cls, pairs: Sequence[Problem]) -> Self:
        """One error carrying every (path, why) of ``pairs`` (at least one)."""
        return cls(pairs[0][0], pairs[0][1], pairs[1:])


def did_you_mean(name: object, known: Iterable[object]) -> str:
    """`` (did you mean 'x'?)`` for the known name closest to a misspelt one, else ``""``."""
    close = difflib.get_close_matches(str(name), [str(k) for k in known], n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def join(path: str, key: object) -> str:
    """``path.key`` (``key`` alone at the top)."""
    return f"{path}.{key}" if path else str(key)


class Problems:
    """Collects problems from independent checks; ``raise_as`` reports them all."""

    def __init__(self) -> None:
        self.pairs: list[Problem] = []

    def add(self, path: str, why: str) -> None:
        self.pairs.append((path, why))

    def guard(self, check: Callable[..., T], *args: Any, default: T) -> T:
        """``check(*args)``, or ``default`` once what it raised is recorded."""
        try:
            return check(*args)
        except InputError as exc:
            self.pairs.extend(exc.pairs)
            return default

    def unknown_keys(self, data: Mapping[str, Any], allowed: Iterable[str], path: str) -> None:
        """Record every key of ``data`` not in ``allowed``, each with a suggestion."""
        known = sorted(allowed)
        for key in data:
            if key not in known:
                self.add(join(path, key), f"unknown field{did_you_mean(key, known)} "
                                          f"(allowed: {', '.join(known)})")

    def raise_as(self, error: type[InputError]) -> None:
        """Raise ``error`` carrying every problem recorded, if there is any."""
        if self.pairs:
            raise error.many(self.pairs)
