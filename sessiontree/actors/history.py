"""A read-side cache of sessions' histories, as the provider sees them.

A model_run sends the session's whole history to the provider. Reading and decoding it
from the store every turn costs O(n) a turn, O(n^2) over a long session; this cache
keeps the decoded messages of recently run or created sessions, and takes the messages
each commit appends from the store's listener (a new session's first message starts its
entry: its first run reads no message). It is never a source of truth: every load reads the
session row and its checkpoint; the cached history is used as is only when the
session's head (last message seq and chain hash) is the cached one. Otherwise the
messages from the cached last one on are read, and that message's stored chain hash
must equal the cached head, or the entry is dropped and the history read in full.

It holds at most ``size`` sessions and ``max_messages`` messages in all, dropping the
least recently used first, and drops a session's entry when the session ends (nothing
runs it again). The default holds a thousand short sessions' histories: a host that
round-robins more sessions than that reads each one's history at each of its runs
(about a tenth of a run's CPU in ``bench/scale.py``'s curve).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from sessiontree._states import TERMINAL_VALUES
from sessiontree.persistence.records import CheckpointRecord, CommitSummary, SessionRecord
from sessiontree.persistence.store import Store
from sessiontree.providers.base import ModelMessage, ToolCall


def to_model_message(
    body: dict[str, Any], trust: str, provenance: dict[str, Any] | None = None,
) -> ModelMessage:
    calls = tuple(
        ToolCall(id=c["id"], name=c["name"], arguments=c["arguments"])
        for c in body.get("tool_calls", ())
    )
    return ModelMessage(
        role=body["role"],
        content=body.get("content", ""),
        tool_calls=calls,
        tool_call_id=body.get("tool_call_id"),
        name=body.get("name"),
        trust="untrusted" if trust == "untrusted" else "trusted",
        is_error=body.get("ok") is False,
        provenance=provenance or {},
    )


@dataclass(frozen=True)
class _Entry:
    seq: int
    head: str
    messages: tuple[ModelMessage, ...]


@dataclass(frozen=True)
class TurnState:
    session: SessionRecord
    checkpoint: CheckpointRecord
    history: tuple[ModelMessage, ...]


class HistoryCache:
    def __init__(self, store: Store, size: int = 1024, max_messages: int = 32_768) -> None:
        self.store = store
        self.size = size
        self.max_messages = max_messages
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._messages = 0  # in all entries
        self._lock = threading.Lock()

    def load(self, session_id: str) -> TurnState:
        """The session, its latest checkpoint and its whole history, read together."""
        with self._lock:
            cached = self._entries.get(session_id)
        known = (cached.seq, cached.head) if cached else None
        session, checkpoint, rows = self.store.turn_state(session_id, known)
        messages: tuple[ModelMessage, ...] = ()
        if cached is not None:
            if known == (session.message_seq, session.message_head):
                return TurnState(session, checkpoint, cached.messages)  # nothing appended
            if rows and rows[0].seq == cached.seq and rows[0].chain_hash == cached.head:
                messages = cached.messages
                rows = rows[1:]
            else:  # not the history we cached: read it whole
                session, checkpoint, rows = self.store.turn_state(session_id)
        if rows:
            messages += tuple(to_model_message(r.body, r.trust, r.provenance) for r in rows)
            with self._lock:
                self._remember(session_id, _Entry(rows[-1].seq, rows[-1].chain_hash, messages))
        return TurnState(session, checkpoint, messages)

    def on_commit(self, summary: CommitSummary) -> None:
        """Store listener: extend a cached history with the messages a commit appended
        right after its head (any other append drops the entry)."""
        if not summary.messages and not summary.states:
            return
        with self._lock:
            for m in summary.messages:
                entry = self._entries.get(m.session_id)
                if entry is None:
                    if m.seq == 1:  # a new session's first message: its whole history
                        self._remember(m.session_id, _Entry(
                            1, m.chain_hash, (to_model_message(m.body, m.trust, m.provenance),)))
                    continue
                if entry.seq != m.seq - 1:
                    self._forget(m.session_id)
                    continue
                self._replace(m.session_id, _Entry(
                    m.seq, m.chain_hash, (*entry.messages, to_model_message(m.body, m.trust, m.provenance))))
                self._trim()
            for session_id, state in summary.states:
                if state in TERMINAL_VALUES:
                    self._forget(session_id)

    def _remember(self, session_id: str, entry: _Entry) -> None:
        """Cache ``entry`` as the most recent (under ``_lock``), dropping the oldest."""
        self._replace(session_id, entry)
        self._entries.move_to_end(session_id)
        self._trim()

    def _trim(self) -> None:
        while len(self._entries) > self.size or (
                self._messages > self.max_messages and len(self._entries) > 1):
            _, oldest = self._entries.popitem(last=False)
            self._messages -= len(oldest.messages)

    def _replace(self, session_id: str, entry: _Entry) -> None:
        old = self._entries.get(session_id)
        self._messages += len(entry.messages) - (len(old.messages) if old else 0)
        self._entries[session_id] = entry

    def _forget(self, session_id: str) -> None:
        old = self._entries.pop(session_id, None)
        if old is not None:
            self._messages -= len(old.messages)
