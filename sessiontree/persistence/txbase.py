"""The plumbing under a write transaction: plain SQL, artifacts, the event buffer.

:class:`~sessiontree.persistence.tx.Tx` adds the domain's verbs on top. Hot statements
are plain SQL because peewee rebuilds each statement anew (~200 us on the wide session
table); peewee still owns the schema.
"""

from __future__ import annotations

import functools
import itertools
import json
import os
import time
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import blake3

from sessiontree.errors import StoreError
from sessiontree.persistence.artifacts import canonical_bytes, content_hash
from sessiontree.persistence.events import validate_payload
from sessiontree.persistence.records import CommitSummary

if TYPE_CHECKING:
    from sessiontree.persistence.models import Models


@functools.lru_cache(maxsize=8192)
def span_id(text: str, size: int) -> str:
    """A stable id derived from ``text`` (trace and span ids; idempotency keys)."""
    return blake3.blake3(text.encode()).hexdigest()[:size]


_EVENT_ID_PREFIX = os.urandom(4).hex()
_event_seq = itertools.count()


def event_id() -> str:
    """An event id that sorts by creation (ms clock, then this process's counter), so
    the unique index on it appends instead of touching a random page each event."""
    return f"{time.time_ns() // 1_000_000:012x}{_EVENT_ID_PREFIX}{next(_event_seq) % 16**12:012x}"


@functools.lru_cache(maxsize=512)
def _insert_sql(table: str, cols: tuple[str, ...], ignore: bool) -> str:
    verb = "INSERT OR IGNORE" if ignore else "INSERT"
    names = ", ".join(f'"{c}"' for c in cols)
    return f'{verb} INTO "{table}" ({names}) VALUES ({", ".join("?" * len(cols))})'


@functools.lru_cache(maxsize=512)
def _update_sql(table: str, cols: tuple[str, ...], key: str) -> str:
    sets = ", ".join(f'"{c}" = ?' for c in cols)
    return f'UPDATE "{table}" SET {sets} WHERE "{key}" = ?'


class TxBase:
    def __init__(self, models: Models, now: float) -> None:
        self.m = models
        # The raw DB-API connection: the hot statements skip peewee's per-call wrapper.
        self._conn = models.session._meta.database.connection()
        self.now = now
        self.summary = CommitSummary()
        self._events: list[dict[str, Any]] = []
        self._roots: dict[str, str] = {}
        self._artifacts_seen: set[str] = set()
        # Session rows read in this transaction. Every session write goes through
        # ``_insert``/``_update``, which keep these current, so a row is read once.
        self._session_rows: dict[str, SimpleNamespace] = {}

    # -- plain SQL for the hot path (peewee builds each statement anew: ~200 us a time) --
    def _exec(self, sql: str, params: tuple[Any, ...] | list[Any] = ()) -> Any:
        return self._conn.execute(sql, params)

    def _get(self, table: str, key: str, value: Any) -> SimpleNamespace | None:
        cur = self._exec(f'SELECT * FROM "{table}" WHERE "{key}" = ?', (value,))
        row = cur.fetchone()
        if row is None:
            return None
        return SimpleNamespace(**dict(zip([d[0] for d in cur.description], row, strict=True)))

    def _session_row(self, session_id: str) -> SimpleNamespace | None:
        row = self._session_rows.get(session_id)
        if row is None:
            row = self._get("session", "id", session_id)
            if row is not None:
                self._session_rows[session_id] = row
        return row

    def _insert(self, table: str, fields: dict[str, Any], *, ignore: bool = False) -> int:
        cur = self._exec(_insert_sql(table, tuple(fields), ignore), tuple(fields.values()))
        return int(cur.rowcount)

    def _update(self, table: str, fields: dict[str, Any], key: str, value: Any) -> int:
        cur = self._exec(_update_sql(table, tuple(fields), key), (*fields.values(), value))
        if table == "session":
            cached = self._session_rows.get(value) if key == "id" else None
            if cached is not None:
                cached.__dict__.update(fields)
            elif key != "id":
                self._session_rows.clear()
        return int(cur.rowcount)

    # -- artifacts ---------------------------------------------------------------------
    def put(self, value: Any) -> str:
        """Store ``value`` as canonical JSON; return its blake3 hash (stored once)."""
        return self.put_bytes(canonical_bytes(value))

    def put_bytes(self, data: bytes) -> str:
        digest = content_hash(data)
        if digest not in self._artifacts_seen:
            self._insert("artifact", {"hash": digest, "data": data, "size": len(data),
                                      "created_at": self.now}, ignore=True)
            self._artifacts_seen.add(digest)
        return digest

    def artifact_json(self, digest: str) -> Any:
        row = self._get("artifact", "hash", digest)
        if row is None:
            raise StoreError(f"missing artifact {digest}", artifact=digest)
        return json.loads(bytes(row.data))

    # -- events -----------------------------------------------------------------------
    def event(
        self, event_type: str, session_id: str | None, job_id: str | None, payload: dict[str, Any]
    ) -> None:
        """Record a Flight Recorder event (validated now, written at commit)."""
        data = validate_payload(event_type, payload)
        root = self._roots.get(session_id) if session_id else None
        if session_id and root is None:
            found = self._session_row(session_id)
            root = found.root_id if found else None
            if root:
                self._roots[session_id] = root
        self._events.append(
            {
                "event_id": event_id(),
                "ts": self.now,
                "type": event_type,
                "model_session_id": session_id,
                "root_id": root,
                "job_id": job_id,
                "trace_id": span_id(root, 32) if root else None,
                "span_id": span_id(job_id or session_id or event_type, 16),
                "payload": json.dumps(data, separators=(",", ":"), sort_keys=True),
            }
        )

    def flush(self) -> None:
        if self._events:
            cols = list(self._events[0])
            self._conn.executemany(
                f'INSERT INTO "event" ({", ".join(cols)}) VALUES ({", ".join("?" * len(cols))})',
                [tuple(e[c] for c in cols) for e in self._events],
            )
            self._events.clear()
