"""The capability-token and consent tables' verbs.

The decisions (what a child may hold, whether a call is covered, whether a run may go
to a cloud provider) are made in ``sessiontree.tools.tokens``, ``tools.gate`` and
``supervision.consent``; this module only reads and writes the rows, inside the caller's
transaction, with the Flight Recorder events that go with them.

A token is never deleted: revoking marks it (and, in the same transaction, every token
derived from it, transitively) ``revoked`` with a reason. Expiry is a time on the row;
whoever decides compares it with the clock.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from sessiontree._errors import InvalidInput
from sessiontree._ids import new_id

if TYPE_CHECKING:
    from sessiontree.persistence.rowcache import RowCache
    from sessiontree.persistence.store import Store
    from sessiontree.persistence.tx import Tx

CONSENT_STATES = ("granted", "denied", "revoked")


@dataclass(frozen=True)
class CapabilityToken:
    """One capability issued to one session (see ``sessiontree.tools.tokens``)."""

    id: str
    session_id: str
    root_id: str
    capability: str
    derived_from: str | None
    expires_at: float | None
    revoked: bool
    revoked_reason: str | None
    created_at: float

    def live(self, now: float) -> bool:
        """Not revoked and not expired at ``now``."""
        return not self.revoked and (self.expires_at is None or self.expires_at > now)


def _token(row: Any) -> CapabilityToken:
    return CapabilityToken(row.id, row.session_id, row.root_id, row.capability, row.derived_from,
                           row.expires_at, bool(row.revoked), row.revoked_reason, row.created_at)


# -- tokens -------------------------------------------------------------------------------
def issue(
    tx: Tx, session_id: str, grants: Iterable[tuple[str, str | None, float | None]],
) -> list[CapabilityToken]:
    """Issue one token per ``(capability, derived_from, expires_at)`` to ``session_id``
    and record them in one ``FR-EVT-SESS-CAPABILITY-ISSUED`` event (none: no event)."""
    root_id = tx._row(session_id).root_id  # the row: no record built for one field
    # plain SQL: this runs in every spawn's transaction
    tx.tokens_changed = True
    tx.token_sessions.add(session_id)
    if session_id in tx.created_sessions and session_id not in tx.fresh_tokens:
        start = 0  # created in this transaction: it holds no token yet
    else:
        (start,) = tx._exec('SELECT COUNT(*) FROM "capability_token" WHERE "session_id" = ?',
                            (session_id,)).fetchone()
    made = []
    for seq, (capability, derived_from, expires_at) in enumerate(grants, start):
        row = dict(id=new_id("tok"), session_id=session_id, root_id=root_id,
                   capability=capability, derived_from=derived_from, expires_at=expires_at,
                   revoked=False, revoked_reason=None, created_at=tx.now)
        tx._insert("capability_token", row | {"seq": seq})
        made.append(CapabilityToken(**row))
    if start == 0 or session_id in tx.fresh_tokens:  # these are all its tokens
        tx.fresh_tokens.setdefault(session_id, []).extend(made)
    if made:
        tx.event("FR-EVT-SESS-CAPABILITY-ISSUED", session_id, None, {"tokens": [
            {"token_id": t.id, "capability": t.capability, "derived_from": t.derived_from,
             "expires_at": t.expires_at} for t in made]})
    return made


_BY_SESSION = 'SELECT * FROM "capability_token" WHERE "session_id" = ? ORDER BY "created_at", "seq"'


def tokens_of(tx: Tx, session_id: str) -> list[CapabilityToken]:
    """Every token issued to ``session_id`` (live or not), in issue order: the writer's
    cached copy while neither this transaction nor its group changed a token."""
    if tx._cache is not None and not tx.tokens_pending:
        held = _cached(tx._cache, session_id, tx._cache.token_key(session_id))
        if held is not None:
            return held
    cur = tx._exec(_BY_SESSION, (session_id,))
    names = [d[0] for d in cur.description]
    return [_token(SimpleNamespace(**dict(zip(names, r, strict=True)))) for r in cur.fetchall()]


_TOKEN_CACHE_SIZE = 8192
"""Sessions whose tokens the store's writer keeps at once (then it starts again empty)."""


def _cached(cache: RowCache, session_id: str, key: object) -> list[CapabilityToken] | None:
    """A copy of the session's cached tokens if they are of generation ``key``."""
    hit = cache.tokens.get(session_id)
    return list(hit[1]) if hit is not None and hit[0] == key else None


def _session_tokens(store: Store, session_id: str) -> list[CapabilityToken]:
    """One session's tokens as committed. The store's one writer keeps them until a
    commit issues or revokes one of them (``RowCache.tokens_changed``, after that
    commit; a new session's first tokens are kept from the commit that issued them);
    expiry is judged against the clock by each reader, so the cache never delays it.
    An observer (no row cache), or a read inside a transaction that issued or revoked
    tokens, reads the table every time."""
    cache = store._token_cache()
    if cache is None:
        return [_token(r) for r in store._rows(_BY_SESSION, (session_id,))]
    key = cache.token_key(session_id)  # read first: a change meanwhile only refetches
    cached = _cached(cache, session_id, key)
    if cached is not None:
        return cached
    held = [_token(r) for r in store._rows(_BY_SESSION, (session_id,))]
    if len(cache.tokens) >= _TOKEN_CACHE_SIZE:
        cache.tokens.clear()
    cache.tokens[session_id] = (key, held)
    return list(held)


def read_tokens(
    store: Store, *, session_ids: Iterable[str] | None = None, token_id: str | None = None,
) -> list[CapabilityToken]:
    """Tokens as stored (live or not): of some sessions, one token, or all."""
    ids = None if session_ids is None else list(session_ids)
    if ids is not None and len(ids) == 1 and token_id is None:  # the gate's read, each call
        return _session_tokens(store, ids[0])
    with store._reading() as m:
        q = m.capability_token.select()
        if ids is not None:
            q = q.where(m.capability_token.session_id.in_(ids))
        if token_id is not None:
            q = q.where(m.capability_token.id == token_id)
        return [_token(r) for r in q.order_by(m.capability_token.created_at, m.capability_token.seq)]


def revoke(tx: Tx, token_id: str, reason: str) -> list[CapabilityToken]:
    """Revoke ``token_id`` and every token derived from it, transitively; return the
    tokens this revoked (already revoked ones are left as they are). Each is an
    ``FR-EVT-SESS-CAPABILITY-REVOKED`` event on its session. Raises
    :class:`InvalidInput` for an unknown token."""
    m = tx.m
    tx.tokens_changed = tx.tokens_revoked = True
    first = m.capability_token.get_or_none(m.capability_token.id == token_id)
    if first is None:
        raise InvalidInput(f"unknown capability token {token_id!r}", token_id=token_id)
    done: list[CapabilityToken] = []
    frontier = [_token(first)]
    while frontier:
        token = frontier.pop(0)
        if not token.revoked:
            m.capability_token.update(revoked=True, revoked_reason=reason).where(
                m.capability_token.id == token.id).execute()
            tx.event("FR-EVT-SESS-CAPABILITY-REVOKED", token.session_id, None, {
                "token_id": token.id, "capability": token.capability, "reason": reason,
                "cascade_from": None if token.id == token_id else token_id})
            done.append(token)
            tx.token_sessions.add(token.session_id)
        frontier.extend(_token(r) for r in m.capability_token.select().where(
            m.capability_token.derived_from == token.id).order_by(m.capability_token.id))
    for session_id in dict.fromkeys(t.session_id for t in done):
        # the session row lists what it still holds (the workspace tools read it)
        tx.update_session(session_id, capabilities=[
            t.capability for t in tokens_of(tx, session_id) if not t.revoked])
    return done


def note_expired(tx: Tx, token: CapabilityToken, call_id: str) -> None:
    """Record that a gate decision found ``token`` expired (``FR-EVT-SESS-CAPABILITY-
    EXPIRED``, on its session, with the call it was needed for)."""
    tx.event("FR-EVT-SESS-CAPABILITY-EXPIRED", token.session_id, None, {
        "token_id": token.id, "capability": token.capability,
        "expires_at": token.expires_at or 0.0, "call_id": call_id})


def backfill(store: Store) -> int:
    """Issue tokens to live sessions of a store written before tokens existed: each gets
    one per capability its row lists, derived from its parent's token that covers it
    exactly (parents first). Sessions that already have tokens are left alone. Returns
    how many sessions it issued to (0 on any store this version wrote)."""
    rows = store._rows(
        'SELECT "id", "capabilities" FROM "session" WHERE "capabilities" != \'[]\' AND "state" '
        'NOT IN (\'completed\', \'failed\', \'cancelled\') AND "id" NOT IN '
        '(SELECT "session_id" FROM "capability_token") ORDER BY "depth", "created_at"')
    if not rows:
        return 0
    with store.transaction() as tx:
        for row in rows:
            parent_id = tx.session(row.id).parent_id
            held = {t.capability: t for t in tokens_of(tx, parent_id)} if parent_id else {}
            issue(tx, row.id, [(c, held[c].id if c in held else None,
                                held[c].expires_at if c in held else None)
                               for c in json.loads(row.capabilities)])
    return len(rows)


# -- consent ------------------------------------------------------------------------------
def consent_in(tx: Tx, root_id: str, provider: str) -> str | None:
    """The tree's consent state for ``provider``: granted, denied, revoked or None."""
    m = tx.m
    row = m.consent.get_or_none((m.consent.root_id == root_id) & (m.consent.provider == provider))
    return None if row is None else str(row.state)


def read_consents(store: Store, root_id: str) -> dict[str, str]:
    """provider -> consent state, for one tree."""
    with store._reading() as m:
        return {r.provider: r.state for r in m.consent.select().where(m.consent.root_id == root_id)}


def set_consent(tx: Tx, root_id: str, provider: str, state: str, by: str) -> None:
    """Record the tree's consent decision for ``provider`` and say so (an event on the
    root: ``FR-EVT-SESS-CONSENT-GRANTED|DENIED|REVOKED``)."""
    if state not in CONSENT_STATES:
        raise InvalidInput(f"consent state must be one of {CONSENT_STATES}")
    m = tx.m
    m.consent.insert(root_id=root_id, provider=provider, state=state, by=by,
                     updated_at=tx.now).on_conflict_replace().execute()
    tx.event(f"FR-EVT-SESS-CONSENT-{state.upper()}", root_id, None,
             {"provider": provider, "root_id": root_id, "by": by})
