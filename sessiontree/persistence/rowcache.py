"""Committed rows of the hot tables, kept in memory by the store that writes them.

A model_run reads its session's row and its job's row several times (dispatch, the
fence of every commit, the turn's state); reading them from SQLite each time costs a
statement and a record conversion each. This cache holds the rows as last committed,
and the records made from them:

- It is written only at commit (:meth:`TxBase.publish`), with the transaction's own
  copies of the rows it read or wrote; a rolled-back transaction leaves it untouched.
- A write the transaction could not follow (an update of a row it never read, an
  update by another key) drops the row, or the whole table, instead.
- It is switched on only by the runtime, once it holds the store's lease
  (``persistence.lease``): then this process is the store's only writer. An observer
  (the CLI, a console in another process) reads the file every time, since another
  process writes it.

Rows and records handed out are shared: read them, never change them.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any, TypeVar

R = TypeVar("R")

CACHED_TABLES = ("session", "job")


class RowCache:
    def __init__(self, columns: dict[str, frozenset[str]], size: int = 16_384) -> None:
        self.columns = columns  # a row inserted with every column can be cached as written
        self.size = size
        # OrderedDict: evicting the oldest of a plain dict rescans its deleted slots
        self._rows: dict[str, OrderedDict[Any, SimpleNamespace]] = {
            t: OrderedDict() for t in CACHED_TABLES}
        self._records: dict[tuple[str, Any], tuple[SimpleNamespace, Any]] = {}
        self.latest_checkpoint: dict[str, Any] = {}  # session id -> CheckpointRecord
        self.last_job_order: int | None = None  # the highest job order committed
        # Capability tokens by session, each under the (epoch, generation) it was read
        # at: a session's generation is bumped after every commit that issued or revoked
        # one of its tokens, the epoch when the cache is cleared; a reader that cached a
        # session's tokens under older values reads them again.
        self.token_epoch = 0
        self.token_gens: dict[str, int] = {}
        self.tokens: dict[str, tuple[tuple[int, int], list[Any]]] = {}
        # tool call id -> (state, session_id, job_id, tool, effect, created_at) of each
        # call not yet ended, as last committed (``JournalTx.set_tool_call``)
        self.calls: dict[str, tuple[Any, ...]] = {}
        # job id -> usage its run was charged, until its span is written (``txspans``)
        self.run_usage: dict[str, Any] = {}

    def get(self, table: str, key: Any) -> SimpleNamespace | None:
        return self._rows[table].get(key)

    # -- what a transaction reads (``PendingView`` answers the same over a commit group)
    def job_order(self) -> int | None:
        return self.last_job_order

    def call_head(self, call_id: str) -> tuple[Any, ...] | None:
        return self.calls.get(call_id)

    def run_charged(self, job_id: str) -> Any:
        return self.run_usage.get(job_id)

    def tokens_pending(self) -> bool:
        return False

    def put(self, table: str, key: Any, row: SimpleNamespace) -> None:
        rows = self._rows[table]
        rows[key] = row
        rows.move_to_end(key)
        if len(rows) > self.size:
            oldest, _ = rows.popitem(last=False)
            self._records.pop((table, oldest), None)
            if table == "session":
                self.latest_checkpoint.pop(oldest, None)

    def drop(self, table: str, key: Any) -> None:
        self._rows[table].pop(key, None)
        self._records.pop((table, key), None)
        if table == "session":
            self.latest_checkpoint.pop(key, None)

    def clear(self, table: str | None = None) -> None:
        for name in CACHED_TABLES if table is None else (table,):
            self._rows[name].clear()
            self._records = {k: v for k, v in self._records.items() if k[0] != name}
        if table in (None, "session"):
            self.latest_checkpoint.clear()
        if table in (None, "job"):
            self.last_job_order = None
        if table is None:
            self.forget_tokens()
            self.calls.clear()

    def token_key(self, session_id: str) -> tuple[int, int]:
        return self.token_epoch, self.token_gens.get(session_id, 0)

    def tokens_changed(self, session_id: str) -> None:
        if len(self.token_gens) >= self.size:
            self.forget_tokens()
        self.token_gens[session_id] = self.token_gens.get(session_id, 0) + 1
        self.tokens.pop(session_id, None)

    def forget_tokens(self) -> None:
        self.token_epoch += 1
        self.token_gens.clear()
        self.tokens.clear()

    def record(self, table: str, key: Any, row: SimpleNamespace, make: Callable[[Any], R]) -> R:
        """The record made from ``row``, made once per committed version of the row."""
        memo = self._records.get((table, key))
        if memo is not None and memo[0] is row:
            return memo[1]  # type: ignore[no-any-return]
        record = make(row)
        if self._rows[table].get(key) is row:
            self._records[(table, key)] = (row, record)
        return record
