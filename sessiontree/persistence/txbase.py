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
from collections.abc import Sequence
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from sessiontree._errors import StoreError
from sessiontree._states import ToolCallState
from sessiontree.persistence.artifacts import canonical_bytes, content_hash
from sessiontree.persistence.events import payload_json
from sessiontree.persistence.groupcommit import PendingView
from sessiontree.persistence.records import CommitSummary
from sessiontree.persistence.rowcache import CACHED_TABLES, RowCache
from sessiontree.persistence.spans import span_id

if TYPE_CHECKING:
    from sessiontree.persistence.models import Models

__all__ = ["TxBase", "event_id", "event_id_bound", "span_id"]

# Job events written before the job's span opens (at dispatch) belong to the session's.
_QUEUE_EVENTS = frozenset({"FR-EVT-SESS-SCHED-ENQUEUED", "FR-EVT-SESS-SCHED-THROTTLED"})

_EVENT_ID_PREFIX = os.urandom(4).hex()
_event_seq = itertools.count()


def event_id(now: float) -> str:
    """An event id, unique and sorting by creation: the store-time ms (``ts``), then
    this process's random prefix and counter."""
    return _event_id(event_id_bound(now))


def _event_id(bound: str) -> str:
    return f"{bound}{_EVENT_ID_PREFIX}{next(_event_seq) % 16**12:012x}"


def event_id_bound(ts: float) -> str:
    """The prefix every event id of an event at ``ts`` starts with (ids sort by it)."""
    return f"{max(0, int(ts * 1000)):012x}"


@functools.lru_cache(maxsize=512)
def _insert_sql(table: str, cols: tuple[str, ...], ignore: bool) -> str:
    verb = "INSERT OR IGNORE" if ignore else "INSERT"
    names = ", ".join(f'"{c}"' for c in cols)
    return f'{verb} INTO "{table}" ({names}) VALUES ({", ".join("?" * len(cols))})'


@functools.lru_cache(maxsize=512)
def _insert_rows_sql(table: str, cols: tuple[str, ...], rows: int, ignore: bool) -> str:
    """One INSERT of ``rows`` rows: one statement step (and one release of the GIL by the
    driver) for a whole buffer, where ``executemany`` steps once a row."""
    verb = "INSERT OR IGNORE" if ignore else "INSERT"
    names = ", ".join(f'"{c}"' for c in cols)
    one = f"({', '.join('?' * len(cols))})"
    return f'{verb} INTO "{table}" ({names}) VALUES {", ".join([one] * rows)}'


_ROWS_PER_INSERT = 256
_ENDED_CALL_STATES = frozenset(s.value for s in ToolCallState if s.ended)
_ARTIFACT_COLS = ("hash", "data", "size", "created_at")
_EVENT_COLS = ("event_id", "ts", "type", "model_session_id", "root_id", "job_id", "trace_id",
               "span_id", "payload")


@functools.lru_cache(maxsize=512)
def _update_sql(table: str, cols: tuple[str, ...], key: str) -> str:
    sets = ", ".join(f'"{c}" = ?' for c in cols)
    return f'UPDATE "{table}" SET {sets} WHERE "{key}" = ?'


class TxBase:
    def __init__(
        self, models: Models, now: float, cache: RowCache | None = None, *,
        group: Sequence[Any] = (),  # SpanTx: the commit group's earlier members
    ) -> None:
        self.m = models
        # The raw DB-API connection: the hot statements skip peewee's per-call wrapper.
        self._conn = models.session._meta.database.connection()
        self.now = now
        self.summary = CommitSummary()
        self._events: list[tuple[Any, ...]] = []
        self._roots: dict[str, str] = {}
        self._artifacts: dict[str, bytes] = {}  # written at commit, with the events
        # This transaction's own copies of the session and job rows it read or wrote.
        # Every write to those tables goes through ``_insert``/``_update``, which keep
        # the copies current, so a row is read once; at commit they go to the cache.
        self._cache = cache  # published to at commit
        # Read from, too -- through the writes of the commit group this transaction
        # joins, which the cache does not hold yet (``persistence.groupcommit``).
        self._shared: RowCache | PendingView | None = (
            PendingView(cache, group) if cache is not None and group else cache)
        self._rows: dict[tuple[str, Any], SimpleNamespace] = {}
        self._dropped: set[tuple[str, Any]] = set()  # changed, but no copy held here
        self._dropped_tables: set[str] = set()
        self._checkpoints: dict[str, Any] = {}  # session id -> the checkpoint written here
        self._job_order: int | None = None  # the last job order given out here
        self.tokens_changed = False  # capability tokens issued or revoked here
        self.tokens_revoked = False
        self.token_sessions: set[str] = set()  # the sessions whose tokens changed here
        # Sessions that had no token before this transaction -> all their tokens now
        # (``capabilities.issue``): the writer's cache starts with them.
        self.fresh_tokens: dict[str, list[Any]] = {}
        self._calls: dict[str, tuple[Any, ...]] = {}  # tool-call heads written here
        self.created_sessions: set[str] = set()  # sessions this transaction created
        # The model_run each session's events of this transaction belong to, and the run
        # whose commit this is (see ``on_job``).
        self._jobs: dict[str, str] = {}
        self._cause_job: str | None = None
        self._id_bound = event_id_bound(now)  # every event of it is at ``now``

    # -- plain SQL for the hot path (peewee builds each statement anew: ~200 us a time) --
    def _exec(self, sql: str, params: tuple[Any, ...] | list[Any] = ()) -> Any:
        return self._conn.execute(sql, params)

    def _get(self, table: str, key: str, value: Any) -> SimpleNamespace | None:
        cur = self._exec(f'SELECT * FROM "{table}" WHERE "{key}" = ?', (value,))
        row = cur.fetchone()
        if row is None:
            return None
        return SimpleNamespace(**dict(zip([d[0] for d in cur.description], row, strict=True)))

    def _held(self, table: str, key: Any) -> SimpleNamespace | None:
        """This transaction's copy of a row, made from the cache if need be (no SQL)."""
        row = self._rows.get((table, key))
        if row is None and self._shared is not None and (table, key) not in self._dropped and (
                table not in self._dropped_tables):
            shared = self._shared.get(table, key)
            if shared is not None:
                row = self._rows[(table, key)] = SimpleNamespace(**vars(shared))
        return row

    def _cached_row(self, table: str, key: Any) -> SimpleNamespace | None:
        """A session or job row as of now in this transaction (the transaction's copy:
        read it, don't keep it)."""
        row = self._held(table, key)
        if row is None:
            row = self._get(table, "id", key)
            if row is not None:
                self._rows[(table, key)] = row
                self._dropped.discard((table, key))
        return row

    def _session_row(self, session_id: str) -> SimpleNamespace | None:
        return self._cached_row("session", session_id)

    def _next_job_order(self) -> int:
        """Jobs are numbered in enqueue order, under the write lock."""
        last = self._job_order
        if last is None and self._shared is not None:
            last = self._shared.job_order()
        if last is None:
            last = self._exec('SELECT MAX("order") FROM "job"').fetchone()[0] or 0
        self._job_order = last + 1
        return self._job_order

    @property
    def tokens_pending(self) -> bool:
        """Capability tokens issued or revoked here, or by the group this joined."""
        return self.tokens_changed or (self._shared is not None and self._shared.tokens_pending())

    def publish(self) -> None:
        """After commit: hand the rows this transaction holds to the store's cache."""
        cache = self._cache
        if cache is None:
            return
        for session_id in self.token_sessions:
            cache.tokens_changed(session_id)
        if not self.tokens_revoked:
            for session_id, held in self.fresh_tokens.items():
                cache.tokens[session_id] = (cache.token_key(session_id), list(held))
        for table in self._dropped_tables:
            cache.clear(table)
        for table, key in self._dropped:
            cache.drop(table, key)
        for (table, key), row in self._rows.items():
            if table not in self._dropped_tables:
                cache.put(table, key, row)
        cache.latest_checkpoint.update(self._checkpoints)
        if self._calls:
            calls = cache.calls
            if len(calls) > cache.size:
                calls.clear()
            for call_id, head in self._calls.items():
                if head[0] in _ENDED_CALL_STATES:
                    calls.pop(call_id, None)
                else:
                    calls[call_id] = head
        if self._job_order is not None and "job" not in self._dropped_tables:
            cache.last_job_order = self._job_order

    def _insert(self, table: str, fields: dict[str, Any], *, ignore: bool = False) -> int:
        cur = self._exec(_insert_sql(table, tuple(fields), ignore), tuple(fields.values()))
        if table in CACHED_TABLES:
            key = (table, fields["id"])
            if cur.rowcount == 1 and self._cache and fields.keys() == self._cache.columns[table]:
                self._rows[key] = SimpleNamespace(**fields)  # every column: the row as stored
                self._dropped.discard(key)
            else:
                self._rows.pop(key, None)
                self._dropped.add(key)
        return int(cur.rowcount)

    def _insert_rows(
        self, table: str, cols: tuple[str, ...], rows: list[tuple[Any, ...]], *, ignore: bool = False
    ) -> None:
        for start in range(0, len(rows), _ROWS_PER_INSERT):
            chunk = rows[start : start + _ROWS_PER_INSERT]
            self._exec(_insert_rows_sql(table, cols, len(chunk), ignore),
                       [v for row in chunk for v in row])

    def _update(self, table: str, fields: dict[str, Any], key: str, value: Any) -> int:
        cur = self._exec(_update_sql(table, tuple(fields), key), (*fields.values(), value))
        if table in CACHED_TABLES:
            held = self._held(table, value) if key == "id" else None
            if held is not None:
                held.__dict__.update(fields)
            elif key == "id":
                self._dropped.add((table, value))
            else:
                self._dropped_tables.add(table)
                self._rows = {k: v for k, v in self._rows.items() if k[0] != table}
        return int(cur.rowcount)

    # -- artifacts ---------------------------------------------------------------------
    def put(self, value: Any) -> str:
        """Store ``value`` as canonical JSON; return its blake3 hash (stored once)."""
        return self.put_bytes(canonical_bytes(value))

    def put_bytes(self, data: bytes) -> str:
        digest = content_hash(data)
        self._artifacts.setdefault(digest, data)
        return digest

    def artifact_json(self, digest: str) -> Any:
        data = self._artifacts.get(digest)
        if data is None:
            row = self._get("artifact", "hash", digest)
            if row is None:
                raise StoreError(f"missing artifact {digest}", artifact=digest)
            data = bytes(row.data)
        return json.loads(data)

    # -- events -----------------------------------------------------------------------
    def on_job(self, job_id: str, session_id: str, *, cause: bool = False) -> None:
        """From now on in this transaction, ``session_id``'s events belong to ``job_id``.

        ``cause``: this transaction is that job's run (its fence, or a spawn it asked
        for), so events of *other* sessions it writes (a child created, a parent woken)
        carry the job too, as the run that wrote them."""
        self._jobs[session_id] = job_id
        if cause:
            self._cause_job = job_id

    def event(
        self, event_type: str, session_id: str | None, job_id: str | None, payload: dict[str, Any]
    ) -> None:
        """Record a Flight Recorder event (validated now, written at commit).

        ``job_id`` defaults to the job this transaction works for (``on_job``). The span
        is the tool call's (``payload["call_id"]``), else the session's own model_run's,
        else the session's."""
        data = payload_json(event_type, payload)
        self.summary.events += 1
        root = self._roots.get(session_id) if session_id else None
        if session_id and root is None:
            found = self._session_row(session_id)
            root = found.root_id if found else None
            if root:
                self._roots[session_id] = root
        own = job_id
        if session_id is not None and job_id is None:
            own = self._jobs.get(session_id)
            job_id = own or self._cause_job
        call = payload.get("call_id")
        if call:
            span: str | None = span_id(call, 16)
        elif own and event_type not in _QUEUE_EVENTS:
            span = span_id(own, 16)
        else:
            span = span_id(session_id, 16) if session_id else None
        self._events.append((  # in the order of _EVENT_COLS
            _event_id(self._id_bound), self.now, event_type, session_id, root, job_id,
            span_id(root, 32) if root else None, span, data,
        ))

    def flush(self) -> None:
        """Write what the transaction buffered: its artifacts, then its events."""
        if self._artifacts:
            now = self.now
            self._insert_rows("artifact", _ARTIFACT_COLS,
                              [(h, d, len(d), now) for h, d in self._artifacts.items()],
                              ignore=True)
            self._artifacts.clear()
        if self._events:
            self._insert_rows("event", _EVENT_COLS, self._events)
            self._events.clear()
