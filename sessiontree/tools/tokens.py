"""Capability tokens: what a child may hold, decided from what its parent holds.

A capability is a name with an optional scope (``fs.write:src/**``, ``session.spawn``,
``tool:send``); :func:`sessiontree.tools.scopes.covers` says whether one covers another.
A child's effective set is the **intersection** of what its spawn request asked for and
what its parent holds *now* (live tokens: not revoked, not expired):

- a request some parent token covers is granted as asked (a narrower scope);
- a request wider than parent tokens is narrowed to those tokens (``fs.write`` asked,
  ``fs.write:src/**`` held: the child gets ``fs.write:src/**``);
- anything else is dropped, and the spawn response names it.

Each granted capability is a new token *derived from* the parent token that covers it,
expiring no later than that token; revoking a token revokes everything derived from it.
So no session ever holds a capability its root was not given. :func:`derive` is a pure
function; the spawn step writes its outcome (``persistence.capabilities.issue``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sessiontree.persistence.capabilities import CapabilityToken
from sessiontree.tools import scopes


@dataclass(frozen=True)
class Grant:
    """One capability a child will hold, derived from one parent token."""

    capability: str
    derived_from: str
    expires_at: float | None


@dataclass(frozen=True)
class Derivation:
    """What a spawn request gets: the grants, and what was asked for and dropped."""

    grants: tuple[Grant, ...]
    dropped: tuple[str, ...]

    @property
    def granted(self) -> tuple[str, ...]:
        return tuple(g.capability for g in self.grants)


def narrow(requested: str, held: str) -> str | None:
    """The part of ``requested`` that ``held`` allows, as one capability, or None."""
    if scopes.covers(held, requested):
        return requested
    if scopes.covers(requested, held):
        return held
    return None


def derive(requested: Iterable[str], parent_tokens: Sequence[CapabilityToken], now: float) -> Derivation:
    """The intersection of ``requested`` with the parent's live tokens (module docstring)."""
    live = [t for t in parent_tokens if t.live(now)]
    grants: dict[str, Grant] = {}
    dropped: list[str] = []
    for asked in dict.fromkeys(requested):
        direct = next((t for t in live if scopes.covers(t.capability, asked)), None)
        found = [(asked, direct)] if direct is not None else [
            (t.capability, t) for t in live if scopes.covers(asked, t.capability)]
        if not found:
            dropped.append(asked)
        for capability, token in found:
            grants.setdefault(capability, Grant(capability, token.id, token.expires_at))
    return Derivation(tuple(grants.values()), tuple(dropped))


def covering(
    tokens: Sequence[CapabilityToken], needed: str, now: float
) -> tuple[CapabilityToken | None, CapabilityToken | None]:
    """``(live token covering needed, or None; a dead one that would have, or None)`` --
    the second names an expired or revoked token in a denial."""
    dead = None
    for t in tokens:
        if scopes.covers(t.capability, needed):
            if t.live(now):
                return t, None
            dead = dead or t
    return None, dead


def holds_family(tokens: Sequence[CapabilityToken], name: str, now: float) -> bool:
    """True if a live token is ``name`` or one of its scopes."""
    return any(t.live(now) and scopes.split(t.capability)[0] == name for t in tokens)
