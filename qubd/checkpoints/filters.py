"""``--include`` / ``--exclude``: which tensor names are looked at."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase

WILDCARDS = frozenset("*?[")


def matches(name: str, pattern: str) -> bool:
    """A glob (``*``, ``?``, ``[...]``) matches the whole name; a pattern without wildcards matches
    any name that contains it (``layers.0.`` matches ``model.layers.0.mlp.up_proj.weight``)."""
    if WILDCARDS.isdisjoint(pattern):
        return pattern in name
    return fnmatchcase(name, pattern)


@dataclass(frozen=True)
class NameFilter:
    """A name passes when it matches some include pattern (or there are none) and no exclude pattern."""

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()

    @classmethod
    def of(cls, include: str | Iterable[str] | None, exclude: str | Iterable[str] | None) -> NameFilter:
        return cls(_patterns(include), _patterns(exclude))

    def __call__(self, name: str) -> bool:
        if self.include and not any(matches(name, p) for p in self.include):
            return False
        return not any(matches(name, p) for p in self.exclude)


def _patterns(patterns: str | Iterable[str] | None) -> tuple[str, ...]:
    if patterns is None:
        return ()
    if isinstance(patterns, str):
        return (patterns,)
    return tuple(patterns)
