"""The reads a steering console makes of a store it does not own: bounded, indexed,
never a write (WAL readers never block the host's writer), and the host's published
limits (written once at open).

Every read here is sized for a redraw every fraction of a second on a store with
millions of events: the latest events are the last rows of the event table; a
provider's cool-downs and sessions' state changes are read from the events not seen yet
(a range of the primary key, at most the last :data:`RECENT_EVENTS`); times in state at
the first look and open tool calls are one indexed query for a few hundred sessions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sessiontree.persistence import convert
from sessiontree.persistence import sqlite as engine
from sessiontree.persistence.records import SessionRecord

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


STATE_TYPES = ("FR-EVT-SESS-CREATED", "FR-EVT-SESS-STATE")
COOLDOWN = "FR-EVT-SESS-SCHED-COOLDOWN"


def events_after(store: Store, after: int, types: tuple[str, ...]) -> tuple[list[EventLine], int]:
    """Events of ``types`` written after event id ``after`` (at most the last
    :data:`RECENT_EVENTS`; ``after=0``: just those), oldest first, and the last event id
    now (pass it back next time: a reader reads each event once, by the primary key)."""
    (top,) = store._rows('SELECT COALESCE(MAX("id"), 0) AS id FROM "event"')
    start = max(after, int(top.id) - RECENT_EVENTS)
    marks = ", ".join("?" * len(types))
    rows = store._rows(f'SELECT "id", "ts", "type", "model_session_id", "payload" FROM "event" '
                       f'WHERE "id" > ? AND "id" <= ? AND "type" IN ({marks}) ORDER BY "id"',
                       (start, top.id, *types))
    return [EventLine(r.id, r.ts, r.type, r.model_session_id, json.loads(r.payload))
            for r in rows], int(top.id)


def _chunks(ids: list[str], size: int = 500) -> list[list[str]]:
    return [ids[i:i + size] for i in range(0, len(ids), size)]


def states_since(store: Store, session_ids: list[str]) -> dict[str, float]:
    """When each session last changed state (or was created), store time: one indexed
    query a few hundred sessions."""
    out: dict[str, float] = {}
    for chunk in _chunks(session_ids):
        marks = ", ".join("?" * len(chunk))
        for r in store._rows(
                f'SELECT "model_session_id" AS sid, MAX("ts") AS ts FROM "event" WHERE '
                f'"model_session_id" IN ({marks}) AND "type" IN (?, ?) GROUP BY "model_session_id"',
                (*chunk, "FR-EVT-SESS-STATE", "FR-EVT-SESS-CREATED")):
            out[r.sid] = r.ts
    return out


def open_calls(store: Store, session_ids: list[str]) -> dict[str, str]:
    """The tool each session is running now (a call journaled, not yet ended)."""
    out: dict[str, str] = {}
    for chunk in _chunks(session_ids):
        marks = ", ".join("?" * len(chunk))
        for r in store._rows(f'SELECT "session_id", "tool" FROM "tool_call" WHERE "session_id" IN '
                             f'({marks}) AND "state" IN (?, ?)', (*chunk, "intent", "waiting")):
            out[r.session_id] = r.tool
    return out


def sessions_changed(store: Store, since: float | None) -> list[tuple[SessionRecord, float]]:
    """Sessions whose row changed at or after ``since`` (store time; None: all), each
    with its ``updated_at``: a reader that keeps the rows it saw reads only what moved."""
    where, params = ("", ()) if since is None else (' WHERE "updated_at" >= ?', (since,))
    return [(convert.session(r), r.updated_at)
            for r in store._rows(f'SELECT * FROM "session"{where}', params)]


def job_counts(store: Store) -> dict[str, int]:
    """How many jobs are queued and running now (one indexed count)."""
    rows = store._rows('SELECT "state", COUNT(*) AS n FROM "job" WHERE "state" IN (?, ?) '
                       'GROUP BY "state"', ("queued", "running"))
    return {r.state: r.n for r in rows}


def publish_limits(tx: Tx, limits: dict[str, Any]) -> None:
    """The host's limits, for consoles to show usage against (written at open)."""
    tx._exec('INSERT OR REPLACE INTO "meta" ("key", "value") VALUES (?, ?)',
             (_HOST_LIMITS, json.dumps(limits, sort_keys=True)))


def host_limits(store: Store) -> dict[str, Any]:
    """What the last host that opened the store published (empty if none did)."""
    rows = store._rows('SELECT "value" FROM "meta" WHERE "key" = ?', (_HOST_LIMITS,))
    return dict(json.loads(rows[0].value)) if rows else {}
