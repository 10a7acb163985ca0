"""Path globs: the patterns of path leases and of ``fs.read:<glob>`` / ``fs.write:<glob>``
capabilities.

A pattern is a relative POSIX path whose segments may use ``*`` (any characters within
one segment), ``?`` (one character) and ``**`` (a whole segment: zero or more segments).
Nothing else is special: ``[``, ``]`` and ``\\`` are plain characters. ``.`` is the
workspace root; ``**`` matches everything, the root included; ``src/**`` matches
``src`` and everything under it.

Three questions, each a pure function:

- :func:`match` -- does a path fall under a pattern?
- :func:`overlaps` -- can some path fall under both patterns? (two leases conflict)
- :func:`subsumes` -- does every path under ``needed`` fall under ``held``? (a held
  capability covers a requested one). Sound, not complete: when unsure it says no,
  so a scope is never widened by accident.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from sessiontree._errors import InvalidInput

_WILD = frozenset("*?")
MAX_PATH_BYTES = 4096
"""Longest path or pattern accepted (Linux PATH_MAX)."""


def is_glob(pattern: str) -> bool:
    return any(c in _WILD for c in pattern)


def segments(pattern: str) -> tuple[str, ...]:
    """The pattern's segments; ``.`` and empty segments dropped (``.`` is the root)."""
    return tuple(s for s in pattern.split("/") if s not in ("", "."))


def check_pattern(pattern: str) -> str:
    """Return ``pattern`` normalized (``./a//b`` -> ``a/b``, root ``.``); raise
    :class:`InvalidInput` for an absolute pattern, a ``..`` segment, a NUL byte, or a
    ``**`` that is not a whole segment."""
    if not isinstance(pattern, str) or not pattern.strip():
        raise InvalidInput("a path pattern must be a non-empty string")
    if "\x00" in pattern:
        raise InvalidInput(f"NUL byte in path pattern {pattern!r}")
    if pattern.startswith("/"):
        raise InvalidInput(f"absolute path pattern refused: {pattern!r}")
    if len(pattern.encode("utf-8", "surrogatepass")) > MAX_PATH_BYTES:
        raise InvalidInput(f"path pattern longer than {MAX_PATH_BYTES} bytes")
    segs = segments(pattern)
    for seg in segs:
        if seg == "..":
            raise InvalidInput(f"'..' refused in path pattern {pattern!r}")
        if "**" in seg and seg != "**":
            raise InvalidInput(f"'**' must be a whole segment in {pattern!r}")
    return "/".join(segs) or "."


@functools.lru_cache(maxsize=4096)
def _seg_match(pattern: str, name: str) -> bool:
    """One segment: ``*`` any run of characters, ``?`` one character."""
    p, n = len(pattern), len(name)
    star, star_at, i, j = -1, 0, 0, 0
    while j < n:  # the classic linear wildcard matcher with one backtrack point
        if i < p and (pattern[i] == "?" or pattern[i] == name[j]):
            i, j = i + 1, j + 1
        elif i < p and pattern[i] == "*":
            star, star_at, i = i, j, i + 1
        elif star >= 0:
            star_at += 1
            i, j = star + 1, star_at
        else:
            return False
    return all(c == "*" for c in pattern[i:])


def match(pattern: str, path: str) -> bool:
    """True if the normalized relative ``path`` falls under ``pattern``."""
    return _match(segments(pattern), segments(path))


@functools.lru_cache(maxsize=4096)
def _match(pat: tuple[str, ...], path: tuple[str, ...]) -> bool:
    if not pat:
        return not path
    if pat[0] == "**":
        return any(_match(pat[1:], path[k:]) for k in range(len(path) + 1))
    return bool(path) and _seg_match(pat[0], path[0]) and _match(pat[1:], path[1:])


def overlaps(a: str, b: str) -> bool:
    """True if some path falls under both patterns."""
    return _overlap(segments(a), segments(b), _seg_overlap, "**")


def _overlap(
    a: tuple[str, ...], b: tuple[str, ...], same: Callable[[str, str], bool], star: str
) -> bool:
    """Intersection of two star patterns over units (segments, or characters), by a DP
    on positions (each step moves one side on, so it ends): a star either ends or
    absorbs one unit of the other side. ``same`` compares two non-star units."""
    seen: dict[tuple[int, int], bool] = {}

    def go(i: int, j: int) -> bool:
        key = (i, j)
        if key in seen:
            return seen[key]
        if i == len(a) and j == len(b):
            found = True
        elif i < len(a) and a[i] == star:
            found = go(i + 1, j) or (j < len(b) and go(i, j + 1))
        elif j < len(b) and b[j] == star:
            found = go(i, j + 1) or (i < len(a) and go(i + 1, j))
        else:
            found = i < len(a) and j < len(b) and same(a[i], b[j]) and go(i + 1, j + 1)
        seen[key] = found
        return found

    return go(0, 0)


@functools.lru_cache(maxsize=4096)
def _seg_overlap(a: str, b: str) -> bool:
    def chars(x: str, y: str) -> bool:
        return x == "?" or y == "?" or x == y

    return _overlap(tuple(a), tuple(b), chars, "*")


def subsumes(held: str, needed: str) -> bool:
    """True if every path under ``needed`` falls under ``held`` (sound: False when
    unsure). A plain path is the pattern that matches only itself."""
    return _subsumes(segments(held), segments(needed), "**", _seg_subsumes)


def _subsumes(
    h: tuple[str, ...], n: tuple[str, ...], star: str, same: Callable[[str, str], bool]
) -> bool:
    seen: dict[tuple[int, int], bool] = {}

    def go(i: int, j: int) -> bool:
        key = (i, j)
        if key in seen:
            return seen[key]
        if j == len(n):
            found = all(x == star for x in h[i:])
        elif i == len(h):
            found = False
        elif h[i] == star:  # the held star ends here, or absorbs all of n[j]
            found = go(i + 1, j) or go(i, j + 1)
        elif n[j] == star:  # only a held star covers a needed star
            found = False
        else:
            found = same(h[i], n[j]) and go(i + 1, j + 1)
        seen[key] = found
        return found

    return go(0, 0)


@functools.lru_cache(maxsize=4096)
def _seg_subsumes(held: str, needed: str) -> bool:
    def chars(x: str, y: str) -> bool:
        if x == "?":
            return y != "*"  # one character covers one literal or a '?', never a run
        return y not in _WILD and x == y

    return _subsumes(tuple(held), tuple(needed), "*", chars)
