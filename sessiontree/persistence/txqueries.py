"""Reads inside a write transaction: a session's children, sessions and jobs by state.

They see the transaction's own writes. :class:`~sessiontree.persistence.tx.Tx` mixes
them in; they are apart from the verbs that change rows.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from sessiontree._errors import StoreError, UnknownSession
from sessiontree._states import LIVE_JOB_STATES, TERMINAL_VALUES, JobState, SessionState
from sessiontree.persistence import convert
from sessiontree.persistence.records import JobRecord, SessionRecord
from sessiontree.persistence.txjournal import JournalTx


class QueryTx(JournalTx):
    """Reads that see this transaction's writes (see the module docstring)."""

    def _row(self, session_id: str) -> Any:
        """The session's row as of now in this transaction (shared: read, don't keep)."""
        row = self._session_row(session_id)
        if row is None:
            raise UnknownSession(session_id)
        return row

    def session(self, session_id: str) -> SessionRecord:
        return convert.session(self._row(session_id))

    def _job_row(self, job_id: str) -> Any:
        """The job's row as of now in this transaction (shared: read, don't keep)."""
        row = self._cached_row("job", job_id)
        if row is None:
            raise StoreError(f"unknown job {job_id}", job_id=job_id)
        return row

    def job(self, job_id: str) -> JobRecord:
        return convert.job(self._job_row(job_id))

    def children_of(self, session_id: str, *, live_only: bool = False) -> list[SessionRecord]:
        """The session's children in spawn order (only those not yet ended, if asked)."""
        sql = 'SELECT "id" FROM "session" WHERE "parent_id" = ?'
        params: tuple[Any, ...] = (session_id,)
        if live_only:
            sql += ' AND "state" NOT IN (?, ?, ?)'
            params += TERMINAL_VALUES
        ids = [r[0] for r in self._exec(sql + ' ORDER BY "spawn_index"', params).fetchall()]
        return [self.session(i) for i in ids]

    def child_ids(self, session_id: str) -> list[str]:
        """Ids of all the session's children, in spawn order."""
        cur = self._exec('SELECT "id" FROM "session" WHERE "parent_id" = ? ORDER BY "spawn_index"',
                         (session_id,))
        return [r[0] for r in cur.fetchall()]

    def session_by_spawn_key(self, spawn_key: str) -> SessionRecord | None:
        """The child a spawn call with this idempotency key created, if any."""
        found = self._exec('SELECT "id" FROM "session" WHERE "spawn_key" = ?', (spawn_key,)).fetchone()
        return None if found is None else self.session(found[0])

    def sessions_in(
        self, states: tuple[SessionState, ...], root_id: str | None = None,
    ) -> list[SessionRecord]:
        """Every session in one of ``states`` (of one tree, if given), oldest first:
        state has no index, so without ``root_id`` this reads every session."""
        marks = ", ".join("?" * len(states))
        tree, params = ("", ()) if root_id is None else (' AND "root_id" = ?', (root_id,))
        cur = self._exec(f'SELECT "id" FROM "session" WHERE "state" IN ({marks}){tree} '
                         'ORDER BY "created_at", "id"', (*(str(s) for s in states), *params))
        return [self.session(r[0]) for r in cur.fetchall()]

    def live_children(self, session_id: str) -> list[str]:
        """Ids of the session's children not yet in a terminal state, in spawn order."""
        cur = self._exec(
            'SELECT "id" FROM "session" WHERE "parent_id" = ? AND "state" NOT IN (?, ?, ?) '
            'ORDER BY "spawn_index"', (session_id, *TERMINAL_VALUES))
        return [r[0] for r in cur.fetchall()]

    def jobs_in(self, states: tuple[JobState, ...]) -> list[JobRecord]:
        """Every job in one of ``states``, in enqueue order."""
        marks = ", ".join("?" * len(states))
        cur = self._exec(f'SELECT "id" FROM "job" WHERE "state" IN ({marks}) ORDER BY "order"',
                         tuple(str(s) for s in states))
        return [self.job(r[0]) for r in cur.fetchall()]

    def jobs_of(self, session_id: str) -> list[JobRecord]:
        """Every job of the session, in enqueue order."""
        cur = self._exec('SELECT "id" FROM "job" WHERE "session_id" = ? ORDER BY "order"',
                         (session_id,))
        return [self.job(r[0]) for r in cur.fetchall()]

    def job_by_input(self, session_id: str, input_hash: str) -> JobRecord | None:
        """The session's job that answers this message, if one was queued for it."""
        found = self._exec('SELECT "id" FROM "job" WHERE "session_id" = ? AND "input_hash" = ?',
                           (session_id, input_hash)).fetchone()
        return None if found is None else self.job(found[0])

    def live_jobs(self, session_id: str) -> list[JobRecord]:
        """The session's pending, queued and running jobs, in enqueue order."""
        marks = ", ".join("?" * len(LIVE_JOB_STATES))
        # sorted here: an ORDER BY made SQLite build a temporary B-tree for a row or two
        cur = self._exec(f'SELECT * FROM "job" WHERE "session_id" = ? AND "state" IN ({marks})',
                         (session_id, *LIVE_JOB_STATES))
        names = [d[0] for d in cur.description]
        rows = [SimpleNamespace(**dict(zip(names, r, strict=True))) for r in cur]
        return [convert.job(r) for r in sorted(rows, key=lambda r: r.order)]
