"""The reads a steering console makes of a store it does not own: bounded, indexed,
never a write (WAL readers never block the host's writer), and the host's published
limits (written once at open).

Every read here is sized for a redraw every fraction of a second on a store with
millions of events: the latest events are the last rows of the event table; a
provider's cool-down is looked for among the last :data:`RECENT_EVENTS` only; a
session's time in state is one seek of the event table's session index.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sessiontree.persistence import sqlite as engine

if TYPE_CHECKING:
    from sessiontree.persistence.store import Store
    from sessiontree.persistence.tx import Tx

RECENT_EVENTS = 5000
"""How far back (in events) a console looks for provider cool-downs."""

_HOST_LIMITS = "host.limits"


@dataclass(frozen=True)
class EventLine:
    seq: int
    ts: float
    type: str
    session_id: str | None
    payload: dict[str, Any]


def change_counter(store: Store) -> int:
    """A number that moves whenever another connection committed to the store (a
    reader redraws only when it moved)."""
    with store._reading():
        return engine.data_version(store.db.connection())  # type: ignore[no-untyped-call]


def latest_events(store: Store, limit: int = 8, session_id: str | None = None) -> list[EventLine]:
    """The last ``limit`` events (of one session, if given), oldest first."""
    where, params = ("", ()) if session_id is None else (
        ' WHERE "model_session_id" = ?', (session_id,))
    rows = store._rows(f'SELECT "id", "ts", "type", "model_session_id", "payload" FROM "event"'
                       f'{where} ORDER BY "id" DESC LIMIT ?', (*params, limit))
    return [EventLine(r.id, r.ts, r.type, r.model_session_id, json.loads(r.payload))
            for r in reversed(rows)]


def cooldowns(store: Store, now: float) -> dict[str, float]:
    """Providers cooling down at ``now`` (store time): provider -> until."""
    rows = store._rows(
        'SELECT "payload" FROM "event" WHERE "id" > (SELECT COALESCE(MAX("id"), 0) - ? FROM "event") '
        'AND "type" = ?', (RECENT_EVENTS, "FR-EVT-SESS-SCHED-COOLDOWN"))
    out: dict[str, float] = {}
    for r in rows:
        p = json.loads(r.payload)
        out[p["provider"]] = max(out.get(p["provider"], 0.0), float(p["until"]))
    return {k: v for k, v in out.items() if v > now}


def state_since(store: Store, session_id: str) -> float | None:
    """When the session last changed state (or was created), store time."""
    rows = store._rows('SELECT MAX("ts") AS ts FROM "event" WHERE "model_session_id" = ? AND '
                       '"type" IN (?, ?)', (session_id, "FR-EVT-SESS-STATE", "FR-EVT-SESS-CREATED"))
    return rows[0].ts if rows else None


def publish_limits(tx: Tx, limits: dict[str, Any]) -> None:
    """The host's limits, for consoles to show usage against (written at open)."""
    tx._exec('INSERT OR REPLACE INTO "meta" ("key", "value") VALUES (?, ?)',
             (_HOST_LIMITS, json.dumps(limits, sort_keys=True)))


def host_limits(store: Store) -> dict[str, Any]:
    """What the last host that opened the store published (empty if none did)."""
    rows = store._rows('SELECT "value" FROM "meta" WHERE "key" = ?', (_HOST_LIMITS,))
    return dict(json.loads(rows[0].value)) if rows else {}
