"""Group commit: the write transactions of many sessions share one engine commit.

Every write is a :meth:`Store.transaction <sessiontree.persistence.store.Store.transaction>`,
and each commits before its writer goes on (a tool runs only after its intent is
durable). Committing each alone costs one engine commit each (a WAL append, an fsync
when durable) while every other writer waits for the store's lock. So a transaction
whose body is done while another writer is already waiting for the lock does not commit
at once: it releases the lock with its writes applied but uncommitted, inside a savepoint
of its own, and waits. The next writer works in the same engine transaction (its own
savepoint: its failure rolls back only its writes), and the last of the line -- a
writer that finds nobody waiting, a group of :data:`MAX_GROUP`, or anyone else who
takes the lock, a reader included -- commits them all at once. Only then is each
member's transaction handed to the row cache and its writer let go (its listeners run
on its own thread, as for a transaction committed alone).

What anyone can see is unchanged: a reader that takes the lock commits the open group
first, so no read ever sees a write that is not committed; the row cache holds only
committed rows; a member whose commit fails gets the :class:`StoreError` a lone commit
would have raised. A member that waits longer than :data:`STRAGGLER_WAIT` takes the
lock and commits the group itself, so no writer waits on another's progress.

It is on for a durable store (``synchronous=FULL``), where an engine commit is an fsync
and one of them serves a whole group. On the default store (``NORMAL``) a commit is a
WAL append of microseconds and grouping costs more than it saves (the savepoints, the
waits, the wake-ups): there each transaction commits on its own. Measured on the
dispatch benchmark's tool loop (200 sessions x 5 model_runs, rounds alternated in one
process, medians of 5, 2026-11-29): durable 760 model_runs/s grouped vs 638 not;
default 864 not grouped vs 803 grouped. ``open_store(group_commit=...)`` overrides
either default.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from sessiontree._budget import Usage
from sessiontree.persistence.rowcache import RowCache

if TYPE_CHECKING:
    from sessiontree.persistence.txspans import SpanTx

MAX_GROUP = 32
"""At most this many transactions in one engine commit."""

STRAGGLER_WAIT = 0.05
"""Seconds a member waits for someone else to commit its group before it does so."""


class Member:
    """One transaction whose body is done, waiting for its group's commit."""

    __slots__ = ("_gate", "error", "finished", "tx")

    def __init__(self, tx: SpanTx) -> None:
        self.tx = tx
        self.finished = False
        self.error: BaseException | None = None
        self._gate: threading.Lock | None = None  # made only by a member that waits

    def will_wait(self) -> None:
        """Called under the store's lock by a member leaving its group open."""
        self._gate = threading.Lock()
        self._gate.acquire()

    def finish(self, error: BaseException | None = None) -> None:
        """Called under the store's lock by whoever commits the group."""
        self.error = error
        self.finished = True
        if self._gate is not None:
            self._gate.release()

    def wait(self, timeout: float) -> bool:
        """True once the group is committed (or failed); False after ``timeout``."""
        if self.finished:
            return True
        assert self._gate is not None, "only a member that left its group open waits"
        if self._gate.acquire(timeout=timeout):
            self._gate.release()
            return True
        return self.finished


class CommitGroup:
    """The transactions applied but not yet committed (all under the store's lock),
    and how many writers wait for that lock."""

    def __init__(self, *, enabled: bool = True) -> None:
        self.enabled = enabled  # False: every transaction commits on its own
        self.members: list[Member] = []
        self._count_lock = threading.Lock()
        self.writers_waiting = 0
        self.commits = 0  # engine commits (for benchmarks and tests)
        self.transactions = 0  # transactions committed

    @property
    def open(self) -> bool:
        return bool(self.members)

    def waiting(self, delta: int) -> None:
        with self._count_lock:
            self.writers_waiting += delta

    def should_wait(self) -> bool:
        """After a body: leave the group open for the writer already waiting?"""
        return self.enabled and self.writers_waiting > 0 and len(self.members) < MAX_GROUP

    def commit(self, commit: Callable[[], None], rollback: Callable[[], None],
               wrap: Callable[[BaseException], BaseException]) -> None:
        """Commit the open group (the caller holds the store's lock): publish each
        member's rows in order and let them go, or hand each the error."""
        members, self.members = self.members, []
        if not members:
            return
        try:
            commit()
        except BaseException as exc:
            rollback()
            error = wrap(exc)
            for m in members:
                m.finish(error)
            return
        self.commits += 1
        self.transactions += len(members)
        for m in members:
            m.tx.publish()
        for m in members:
            m.finish()


class PendingView:
    """What a transaction joining a group reads where a lone one reads the row cache:
    the rows and counters its group's earlier members wrote (newest first, as each
    would publish them at commit), over the cache. Rows handed out are shared: the
    transaction copies them (``TxBase._held``)."""

    def __init__(self, cache: RowCache, members: Sequence[SpanTx]) -> None:
        self.cache = cache
        self.members = tuple(members)

    def get(self, table: str, key: Any) -> SimpleNamespace | None:
        for tx in reversed(self.members):
            if table in tx._dropped_tables:
                return None
            row = tx._rows.get((table, key))
            if row is not None:
                return row
            if (table, key) in tx._dropped:
                return None
        return self.cache.get(table, key)

    def job_order(self) -> int | None:
        for tx in reversed(self.members):
            if "job" in tx._dropped_tables:
                return None
            if tx._job_order is not None:
                return tx._job_order
        return self.cache.last_job_order

    def call_head(self, call_id: str) -> tuple[Any, ...] | None:
        for tx in reversed(self.members):
            head = tx._calls.get(call_id)
            if head is not None:
                return head
        return self.cache.calls.get(call_id)

    def run_charged(self, job_id: str) -> Usage | None:
        charged: Usage | None = self.cache.run_usage.get(job_id)
        for tx in self.members:  # in commit order, as ``SpanTx.publish`` applies them
            if job_id in tx._ended_runs:
                charged = None
            here = tx._run_usage.get(job_id)
            if here is not None:
                charged = here if charged is None else charged + here
        return charged

    def tokens_pending(self) -> bool:
        """Did an earlier member issue or revoke capability tokens?"""
        return any(tx.tokens_changed for tx in self.members)
