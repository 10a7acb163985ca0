"""The store's listing reads: sessions, jobs, tool calls, mailboxes and Flight Recorder
events, each one query under the store's lock (``Store._reading``).

:class:`~sessiontree.persistence.store.Store` inherits them; the reads of a model_run's
hot path (a session, its checkpoint and messages, through the writer's row cache) stay
in ``store.py``.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import peewee as pw

from sessiontree._errors import CorruptStore
from sessiontree.persistence import convert
from sessiontree.persistence.models import Models
from sessiontree.persistence.records import (
    EventRecord,
    JobRecord,
    MailboxEntry,
    SessionRecord,
    ToolCallRecord,
)


class StoreReads:
    """Listing reads (see the module docstring)."""

    db: pw.Database
    path: str

    def _reading(self) -> contextlib.AbstractContextManager[Models]:
        raise NotImplementedError

    def _rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[SimpleNamespace]:
        raise NotImplementedError

    def artifact_json(self, digest: str) -> Any:
        raise NotImplementedError

    def sessions(
        self, *, root_id: str | None = None, states: list[str] | None = None
    ) -> list[SessionRecord]:
        with self._reading() as m:
            q = m.session.select()
            if root_id is not None:
                q = q.where(m.session.root_id == root_id)
            if states is not None:
                q = q.where(m.session.state.in_(states))
            return [convert.session(r) for r in q.order_by(m.session.created_at, m.session.id)]

    def count_sessions(self, states: Sequence[str] | None = None) -> int:
        with self._reading() as m:
            q = m.session.select()
            if states is not None:
                q = q.where(m.session.state.in_(states))
            return int(q.count())

    def children(self, session_id: str) -> list[SessionRecord]:
        with self._reading() as m:
            q = m.session.select().where(m.session.parent_id == session_id)
            return [convert.session(r) for r in q.order_by(m.session.spawn_index)]

    def jobs(
        self, *, states: list[str] | None = None, session_id: str | None = None
    ) -> list[JobRecord]:
        with self._reading() as m:
            q = m.job.select()
            if states is not None:
                q = q.where(m.job.state.in_(states))
            if session_id is not None:
                q = q.where(m.job.session_id == session_id)
            return [convert.job(r) for r in q.order_by(m.job.order)]

    def tool_calls(
        self, session_id: str | None = None, *, ids: list[str] | None = None,
        states: list[str] | None = None,
    ) -> list[ToolCallRecord]:
        where, params = [], []
        for column, values in (("session_id", None if session_id is None else [session_id]),
                               ("id", ids), ("state", states)):
            if values is not None:
                where.append(f'"{column}" IN ({", ".join("?" * len(values))})')
                params.extend(values)
        sql = 'SELECT * FROM "tool_call"' + (" WHERE " + " AND ".join(where) if where else "")
        rows = self._rows(sql + ' ORDER BY "message_seq", "idx"', tuple(params))
        return [convert.tool_call(r) for r in rows]

    def mailbox(self, session_id: str, *, unconsumed_only: bool = False) -> list[MailboxEntry]:
        with self._reading() as m:
            q = m.mailbox.select().where(m.mailbox.session_id == session_id)
            if unconsumed_only:
                q = q.where(m.mailbox.consumed_at.is_null())
            rows = list(q.order_by(m.mailbox.id))
        return [
            MailboxEntry(
                r.id, r.session_id, r.kind, r.sender_id, r.body_hash,
                self.artifact_json(r.body_hash), r.created_at, r.consumed_at,
            )
            for r in rows
        ]

    def events(
        self, *, session_id: str | None = None, root_id: str | None = None,
        type_prefix: str | None = None, job_id: str | None = None, since: float | None = None,
        until: float | None = None, after: int = 0, limit: int | None = None,
    ) -> list[EventRecord]:
        """Events in the order they were written, every given filter applied (``since``
        inclusive, ``until`` exclusive, in store time); see :meth:`events_sql`."""
        with self._reading():
            conn = self.db.connection()  # type: ignore[no-untyped-call]
            job = None
            if job_id is not None:
                job = self._job_window(conn, job_id)
                if job is None:
                    return []
            sql, params = self.events_sql(
                session_id=session_id, root_id=root_id, type_prefix=type_prefix,
                job=job, since=since, until=until, after=after, limit=limit,
                ids=self._ids_at(conn, since, until))
            rows = conn.execute(sql, params).fetchall()
        try:
            return [convert.event(r, json.loads(r[9])) for r in rows]
        except ValueError as exc:
            raise CorruptStore("an event payload is not JSON", path=self.path) from exc

    @classmethod
    def _ids_at(cls, conn: Any, since: float | None, until: float | None) -> tuple[int, int] | None:
        """A time range as a range of ids: the first event at or after each bound (ids
        grow with store time: a transaction takes its time under the store's lock).
        ``until`` gets a second's slack: older stores took the ms a little later."""
        if since is None and until is None:
            return None
        end = 2**63 - 1
        lo = 0 if since is None else cls._first_id_at(conn, since)
        hi = end if until is None else cls._first_id_at(conn, until + 1.0)
        return (end if lo is None else lo), (end if hi is None else hi)

    @staticmethod
    def _first_id_at(conn: Any, at: float) -> int | None:
        """The least id from which on every event is at or after store time ``at`` (None:
        no event is): a binary search of the primary key, one seek a probe. There is no
        index on time: that would be one more B-tree to write every commit."""
        # two subqueries: SQLite seeks a lone MIN or MAX, but scans for both at once
        lo, top = conn.execute('SELECT (SELECT MIN("id") FROM "event"), '
                               '(SELECT MAX("id") FROM "event")').fetchone()
        if lo is None:
            return None
        probe = 'SELECT "id", "ts" FROM "event" WHERE "id" >= ? ORDER BY "id" LIMIT 1'
        hi = top + 1  # the answer's id is in [lo, hi); hi itself: none
        while lo < hi:
            found, ts = conn.execute(probe, ((lo + hi) // 2,)).fetchone()
            if ts >= at:
                hi = (lo + hi) // 2  # no id between the probe and ``found`` exists
            else:
                lo = found + 1
        return None if lo > top else lo

    @classmethod
    def _job_window(cls, conn: Any, job_id: str) -> tuple[str, str, int, int] | None:
        """(job id, its session, ids of its lifetime): every event a job's run wrote is
        its session's or was written between its enqueue and its end."""
        found = conn.execute('SELECT "session_id", "created_at", "ended_at" FROM "job" '
                             'WHERE "id" = ?', (job_id,)).fetchone()
        if found is None:
            return None
        session_id, created, ended = found
        ids = cls._ids_at(conn, created, ended)
        assert ids is not None
        return job_id, session_id, ids[0], ids[1]

    @staticmethod
    def events_sql(
        *, session_id: str | None = None, root_id: str | None = None,
        type_prefix: str | None = None, job: tuple[str, str, int, int] | None = None,
        since: float | None = None, until: float | None = None, after: int = 0,
        limit: int | None = None, ids: tuple[int, int] | None = None,
    ) -> tuple[str, tuple[Any, ...]]:
        """The statement :meth:`events` runs. Each filter rides an index: a session's on
        model_session_id; a tree's through its sessions (``session.root_id``); a job's
        (``job``: :meth:`_job_window`) on its session's, or-ed with the ids of its
        lifetime (a run also writes its children's and its parent's events, always while
        it runs); a time range is the range of ids ``ids`` (found by
        :meth:`_ids_at`), checked on ``ts`` exactly; a type prefix is a range of names
        within the rest."""
        # one range on the primary key (two would leave the planner the looser one)
        where: list[str] = ['"id" > ?'] if ids is None else ['"id" >= ? AND "id" < ?']
        params: list[Any] = [after] if ids is None else [max(after + 1, ids[0]), ids[1]]
        for clause, value in (('"model_session_id" = ?', session_id),
                              ('"model_session_id" IN (SELECT "id" FROM "session" '
                               'WHERE "root_id" = ?)', root_id),
                              ('"ts" >= ?', since), ('"ts" < ?', until)):
            if value is not None:
                where.append(clause)
                params.append(value)
        if job is not None:  # its session's (any time), or another's during its life
            where.append('"id" IN (SELECT "id" FROM "event" WHERE "model_session_id" = ? '
                         'AND "job_id" = ? UNION ALL SELECT "id" FROM "event" WHERE "id" >= ? '
                         'AND "id" < ? AND "job_id" = ? AND "model_session_id" != ?)')
            job_id, job_session, lo, hi = job
            params.extend([job_session, job_id, lo, hi, job_id, job_session])
        if type_prefix:
            where.append('"type" >= ? AND "type" < ?')
            params.extend([type_prefix, type_prefix[:-1] + chr(ord(type_prefix[-1]) + 1)])
        sql = ('SELECT "id", "event_id", "ts", "type", "model_session_id", "root_id", "job_id", '
               f'"trace_id", "span_id", "payload" FROM "event" WHERE {" AND ".join(where)} '
               'ORDER BY "id"')
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return sql, tuple(params)
