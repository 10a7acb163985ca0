"""The store: one small interface over peewee, chosen by :func:`open_store`.

SQLite (WAL) is the default and the only engine today; the interface is engine-neutral
so PostgreSQL can be added behind the same calls. Durability: with the default
``synchronous=NORMAL`` in WAL mode a committed transaction survives the death of the
process (``kill -9``); surviving power loss or an OS crash needs ``durable=True``
(``synchronous=FULL``), at the cost of one fsync per commit.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from types import SimpleNamespace
from typing import Any

import peewee as pw

from sessiontree._clock import Clock
from sessiontree._errors import (
    CorruptStore,
    StoreError,
    UnknownSession,
)
from sessiontree.persistence import convert, migrate
from sessiontree.persistence import sqlite as engine
from sessiontree.persistence.checkpointer import SAFETY_PAGES, WalCheckpointer
from sessiontree.persistence.groupcommit import STRAGGLER_WAIT, CommitGroup, Member
from sessiontree.persistence.models import Models, bind_models
from sessiontree.persistence.records import (
    CheckpointRecord,
    CommitSummary,
    MessageRecord,
    SessionRecord,
)
from sessiontree.persistence.rowcache import RowCache
from sessiontree.persistence.storereads import StoreReads
from sessiontree.persistence.tx import Tx

log = logging.getLogger(__name__)

FaultHook = Callable[[str], None]
Step = Callable[[Any], None]  # an engine step on the raw connection (begin, commit, ...)
Listener = Callable[[CommitSummary], None]


class Store(StoreReads):
    """Thread-safe access to one store. All writes go through :meth:`transaction`."""

    def __init__(self, db: pw.Database, *, path: str, clock: Clock,
                 group_commit: bool = False) -> None:
        self.db = db
        self.path = path
        self.clock = clock
        self.m: Models = bind_models(db)
        self._lock = threading.RLock()
        self._listeners: list[Listener] = []
        self.fault_hook: FaultHook | None = None
        self._closed = False
        self.row_cache: RowCache | None = None  # see enable_row_cache
        self._writing = False  # a transaction is open (on the thread holding the lock)
        self._tx: Tx | None = None  # that transaction
        self._tx_thread: int | None = None  # the thread it is open on
        self._group = CommitGroup(enabled=group_commit)  # see persistence.groupcommit
        self._checkpointer: WalCheckpointer | None = None
        self.wal_problem: str | None = None  # set by open_store (see persistence.wal)

    # -- lifecycle --------------------------------------------------------------------
    def initialize(self) -> None:
        try:
            with self._lock:
                self.db.connect(reuse_if_open=True)
                with self.db.atomic():
                    self.db.create_tables(self.m.all(), safe=True)
                    migrate.bring_up_to_date(self.db, self.m, self.path)
        except engine.ERRORS as exc:
            self._close_quietly()
            if engine.is_not_a_store(exc):
                raise CorruptStore(f"{self.path} is not a sessiontree store: {exc}") from exc
            raise StoreError(f"cannot open store {self.path}: {exc}") from exc
        except StoreError:
            self._close_quietly()
            raise

    def enable_row_cache(self) -> None:
        """Keep committed session and job rows in memory (``persistence.rowcache``).
        Only for the store's one writer: the runtime, once it holds the lease."""
        with self._locked():
            m = self.m
            self.row_cache = RowCache({
                "session": frozenset(m.session._meta.columns),
                "job": frozenset(m.job._meta.columns),
            })

    def start_checkpointer(self) -> None:
        """Checkpoint the WAL from a thread of its own (``persistence.checkpointer``).
        Only for the store's one writer, on a file."""
        if self.path == ":memory:" or self._checkpointer is not None:
            return
        with self._locked():
            self.db.execute_sql(f"PRAGMA wal_autocheckpoint={SAFETY_PAGES}")  # type: ignore[no-untyped-call]
        self._checkpointer = WalCheckpointer(self.path, lambda: self._group.commits)

    def stop_checkpointer(self) -> None:
        found, self._checkpointer = self._checkpointer, None
        if found is not None:
            found.stop()

    def _close_quietly(self) -> None:
        with contextlib.suppress(Exception):
            self.db.close()

    def close(self) -> None:
        self.stop_checkpointer()
        with self._locked():
            if not self._closed:
                self._closed = True
                self._close_quietly()

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        with contextlib.suppress(ValueError):
            self._listeners.remove(listener)

    # -- writes -----------------------------------------------------------------------
    @contextlib.contextmanager
    def transaction(self) -> Iterator[Tx]:
        """One atomic write, committed before this returns. Engine errors surface as
        :class:`StoreError`; nothing of a failed transaction is kept. Listeners hear of
        it only after it committed. Transactions of writers that queue for the lock
        share one engine commit on a durable store (``persistence.groupcommit``)."""
        group = self._group
        if not group.enabled:  # each commits on its own, with nothing to join or wait for
            with self._lock:
                tx = self._open_tx()
                yield from self._body(tx, engine.begin, engine.commit, engine.rollback)
                group.commits += 1
                group.transactions += 1
                tx.publish()
            self._notify(tx.summary)
            return
        group.waiting(+1)
        try:
            self._lock.acquire()
        finally:
            group.waiting(-1)
        member: Member | None = None
        try:
            tx = self._open_tx(group.members)
            if group.open:  # then this one is a savepoint in the group's transaction
                yield from self._body(tx, engine.savepoint, engine.release,
                                      engine.rollback_savepoint)
            else:
                yield from self._body(tx, engine.begin, lambda conn: None, engine.rollback)
            member = Member(tx)
            group.members.append(member)
        finally:
            if member is not None and group.should_wait():
                member.will_wait()  # the next writer, or anyone taking the lock, commits
            elif group.open:
                self._commit_group()
            self._lock.release()
        assert member is not None  # (the body raised otherwise)
        self._await_commit(member)
        self._notify(member.tx.summary)

    def _open_tx(self, group: Sequence[Member] = ()) -> Tx:
        """A new transaction on this thread (the lock is held), joining ``group``."""
        if self._closed:
            raise StoreError("store is closed", path=self.path)
        if self._writing:
            raise StoreError("a transaction is already open on this thread", path=self.path)
        tx = Tx(self.m, self.clock.now(), self.row_cache, group=[m.tx for m in group])
        self._writing = True
        self._tx, self._tx_thread = tx, threading.get_ident()
        return tx

    def _body(self, tx: Tx, start: Step, end: Step, undo: Step) -> Iterator[Tx]:
        """The caller's body on ``tx`` between ``start`` and ``end`` (``undo`` if anything
        fails), its buffered writes flushed; engine errors as :class:`StoreError`."""
        conn = self.db.connection()  # type: ignore[no-untyped-call]
        try:
            try:
                start(conn)
                yield tx
                tx.flush()
                if self.fault_hook is not None:
                    self.fault_hook("store.commit")
                end(conn)
            except BaseException:
                undo(conn)
                raise
        except engine.ERRORS as exc:
            raise StoreError(f"store write failed: {exc}", path=self.path) from exc
        finally:
            self._writing = False
            self._tx = self._tx_thread = None

    def _notify(self, summary: CommitSummary) -> None:
        """Tell the listeners of a committed transaction (unless it changed nothing)."""
        if summary:
            for listener in list(self._listeners):
                try:
                    listener(summary)
                except Exception:
                    log.exception("store listener failed")

    def _commit_group(self) -> None:
        """Commit the open group (``persistence.groupcommit``); the lock is held."""
        conn = self.db.connection()  # type: ignore[no-untyped-call]
        self._group.commit(lambda: engine.commit(conn), lambda: engine.rollback(conn),
                           lambda exc: StoreError(f"store write failed: {exc}", path=self.path))

    def _await_commit(self, member: Member) -> None:
        """Wait until ``member``'s group is committed (committing it if it straggles)."""
        while not member.wait(STRAGGLER_WAIT):
            with self._lock:
                if member in self._group.members:
                    self._commit_group()
        if member.error is not None:
            raise member.error

    # -- reads ------------------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """The store's lock, for a read or a maintenance step: an open commit group is
        committed first, so what it sees is committed -- unless this thread is inside a
        transaction (which sees its own writes and the group's it works in)."""
        with self._lock:
            if self._group.open and self._tx_thread != threading.get_ident():
                self._commit_group()
            yield

    @contextlib.contextmanager
    def _reading(self) -> Iterator[Models]:
        with self._locked():
            if self._closed:
                raise StoreError("store is closed", path=self.path)
            try:
                yield self.m
            except engine.ERRORS as exc:
                raise StoreError(f"store read failed: {exc}", path=self.path) from exc

    def _rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[SimpleNamespace]:
        """Plain SQL for the hot reads (peewee builds each statement anew)."""
        with self._reading():
            cur = self.db.connection().execute(sql, params)  # type: ignore[no-untyped-call]
            names = [d[0] for d in cur.description]
            return [SimpleNamespace(**dict(zip(names, r, strict=True))) for r in cur.fetchall()]

    def _cache(self) -> RowCache | None:
        """The row cache, unless a transaction is open here (its reads see its writes)."""
        return None if self._writing else self.row_cache

    def _token_cache(self) -> RowCache | None:
        """The row cache for capability tokens: also inside a transaction, as long as it
        issued or revoked none and works in no commit group (the committed tokens are
        then the transaction's own view)."""
        tx = self._own_tx()
        if tx is not None and tx.tokens_pending:
            return None  # tokens it or its group changed: read them in the transaction
        return self.row_cache

    def _own_tx(self) -> Tx | None:
        """The transaction open on this thread, if any."""
        return self._tx if self._tx_thread == threading.get_ident() else None

    def _committed(self, session_id: str) -> SessionRecord | None:
        """A session as last committed, from the writer's row cache, without the lock
        (None: not cached, or a transaction is open on this thread). The cache changes
        only after a commit, one row at a time; a row read from it is a committed one."""
        cache = self.row_cache
        if cache is None or self._tx_thread == threading.get_ident():
            return None
        row = cache.get("session", session_id)
        return None if row is None else cache.record("session", session_id, row, convert.session)

    def session(self, session_id: str) -> SessionRecord:
        record = self._committed(session_id)
        if record is not None:
            return record
        with self._locked():
            tx = self._own_tx()
            if tx is not None:  # inside a transaction: its own view (its writes included)
                row = tx._session_row(session_id)
                if row is None:
                    raise UnknownSession(session_id)
                return convert.session(row)
            cache = self.row_cache
            if cache is None:
                return convert.session(self._session_row(session_id))
            row = cache.get("session", session_id)
            if row is None:
                row = self._session_row(session_id)
                cache.put("session", session_id, row)
            return cache.record("session", session_id, row, convert.session)

    def _session_row(self, session_id: str) -> SimpleNamespace:
        rows = self._rows('SELECT * FROM "session" WHERE "id" = ?', (session_id,))
        if not rows:
            raise UnknownSession(session_id)
        return rows[0]

    def artifact(self, digest: str) -> bytes:
        rows = self._rows('SELECT "data" FROM "artifact" WHERE "hash" = ?', (digest,))
        if not rows:
            raise StoreError(f"missing artifact {digest}", artifact=digest)
        return bytes(rows[0].data)

    def artifact_json(self, digest: str) -> Any:
        try:
            return json.loads(self.artifact(digest))
        except ValueError as exc:
            raise CorruptStore(f"artifact {digest} is not JSON", artifact=digest) from exc

    def messages(self, session_id: str, *, from_seq: int = 0) -> list[MessageRecord]:
        rows = self._rows(
            'SELECT m.*, a."data" FROM "message" m JOIN "artifact" a ON a."hash" = m."artifact_hash" '
            'WHERE m."session_id" = ? AND m."seq" >= ? ORDER BY m."seq"', (session_id, from_seq))
        try:
            return [
                MessageRecord(
                    r.session_id, r.seq, r.role, r.artifact_hash, r.chain_hash, r.trust,
                    json.loads(bytes(r.data)), json.loads(r.provenance), r.created_at,
                )
                for r in rows
            ]
        except ValueError as exc:
            raise CorruptStore(f"message of {session_id} is not JSON") from exc

    def turn_state(
        self, session_id: str, known: tuple[int, str] | None = None
    ) -> tuple[SessionRecord, CheckpointRecord, list[MessageRecord]]:
        """A session, its latest checkpoint and its messages, read together (one lock
        hold, so the three agree). ``known`` is the (seq, chain hash) of the last message
        the caller holds: the messages returned are then those from that seq on, or none
        when the session's head is still that message."""
        session = self._committed(session_id)
        cache = self.row_cache
        if session is not None and cache is not None and known == (
                session.message_seq, session.message_head):  # all of it cached: no lock
            checkpoint = cache.latest_checkpoint.get(session_id)
            if checkpoint is not None and checkpoint.seq == session.checkpoint_seq:
                return session, checkpoint, []
        with self._locked():
            session = self.session(session_id)
            cache = self._cache()
            checkpoint = cache.latest_checkpoint.get(session_id) if cache else None
            if checkpoint is None or checkpoint.seq != session.checkpoint_seq:
                checkpoint = self.checkpoint(session_id, session.checkpoint_seq)
                if cache is not None:
                    cache.latest_checkpoint[session_id] = checkpoint
            if known is not None and known == (session.message_seq, session.message_head):
                return session, checkpoint, []
            from_seq = known[0] if known is not None else 0
            return session, checkpoint, self.messages(session_id, from_seq=from_seq)

    def checkpoint(self, session_id: str, seq: int | None = None) -> CheckpointRecord:
        if seq is None:
            rows = self._rows(
                'SELECT c.* FROM "checkpoint" c JOIN "session" s ON s."id" = c."session_id" '
                'AND s."checkpoint_seq" = c."seq" WHERE c."session_id" = ?', (session_id,))
        else:
            rows = self._rows('SELECT * FROM "checkpoint" WHERE "session_id" = ? AND "seq" = ?',
                              (session_id, seq))
        if not rows:
            raise StoreError(f"no checkpoint {seq} for {session_id}")
        return convert.checkpoint(rows[0])

    def execute_raw_for_tests(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        """Run raw SQL (tests and fault injection only: corrupt a row, hold a lock)."""
        with self._locked():
            if self.row_cache is not None:
                self.row_cache.clear()
            return self.db.execute_sql(sql, params)  # type: ignore[no-untyped-call]
