"""Scoped capabilities: ``fs.read:<glob>`` and ``fs.write:<glob>``.

A capability is a name, optionally followed by ``:`` and a scope. In the scoped
families (:data:`SCOPED`) the scope is a path glob of the session's workspace
(``sessiontree.workspace.globs``):

- an unscoped holding (``fs.write``) covers every scope of its family;
- a scoped holding covers a scoped need when its glob covers the need's
  (``globs.subsumes``: sound, so a scope is never widened);
- a scoped holding never covers an unscoped need: a tool that declares no scope may
  touch any path.

Every other capability is matched exactly. :func:`covers` is a pure function of two
strings; the Tool Gate, spawn and the workspace tools all decide through it.
"""

from __future__ import annotations

from collections.abc import Iterable

from sessiontree._errors import InvalidInput
from sessiontree.workspace import globs

SCOPED = frozenset({"fs.read", "fs.write"})
"""The capability families whose scope is a path glob."""


def split(capability: str) -> tuple[str, str | None]:
    """``"fs.write:src/**"`` -> ``("fs.write", "src/**")``; no scope -> ``(name, None)``."""
    name, sep, scope = capability.partition(":")
    return (name, scope) if sep else (name, None)


def covers(held: str, needed: str) -> bool:
    """True if holding ``held`` allows what ``needed`` asks for (module docstring)."""
    if held == needed:
        return True
    held_name, held_scope = split(held)
    need_name, need_scope = split(needed)
    if held_name != need_name or held_name not in SCOPED:
        return False
    if held_scope is None:
        return True
    if need_scope is None:
        return False
    try:
        return globs.subsumes(globs.check_pattern(held_scope), globs.check_pattern(need_scope))
    except InvalidInput:  # a malformed scope covers nothing
        return False


def covered(held: Iterable[str], needed: str) -> bool:
    """True if any of the capabilities ``held`` covers ``needed``."""
    return any(covers(h, needed) for h in held)


def holds_family(held: Iterable[str], name: str) -> bool:
    """True if some capability of ``held`` is ``name`` or one of its scopes."""
    return any(split(h)[0] == name for h in held)


def scoped(name: str, scope: str) -> str:
    return f"{name}:{scope}"
