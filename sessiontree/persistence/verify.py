"""Integrity check: recompute every artifact hash and every session's message chain."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from sessiontree._errors import InvalidInput
from sessiontree.persistence.artifacts import chain_hash, content_hash
from sessiontree.persistence.engine import open_store
from sessiontree.persistence.store import Store


class VerifyReport(BaseModel):
    """What :func:`verify_store` (or :func:`verify_export`) found: ``ok`` with the counts
    checked, or the first bad row in ``first_bad``."""

    ok: bool
    artifacts: int = 0
    messages: int = 0
    sessions: int = 0
    events: int = 0  # an export's: its events' payloads checked against the catalogue
    spans: int = 0  # an export's: its spans' parents found
    first_bad: str | None = None

    def describe(self) -> str:
        if self.ok:
            extra = (f", {self.events} events and {self.spans} spans"
                     if self.events or self.spans else "")
            return (f"ok: {self.artifacts} artifacts, {self.messages} messages in "
                    f"{self.sessions} sessions{extra} verified")
        return f"CORRUPT: {self.first_bad}"


def verify_store(store: Store | str | Path) -> VerifyReport:
    """Check every artifact (``blake3(data) == hash``), every message chain, and that no
    committed transaction was dropped from a damaged ``-wal`` when the store was opened
    (``persistence.wal``).

    ``store`` is an open :class:`Store` or the path of one (opened without the owner
    lease, so it works beside a live host, and closed again). Returns a report naming
    the first bad row; never raises for corruption itself. Raises :class:`InvalidInput`
    for anything else, :class:`StoreError` when there is no store at the path.
    """
    if isinstance(store, str | Path):
        opened = open_store(store, create=False)
        try:
            return verify_store(opened)
        finally:
            opened.close()
    if not isinstance(store, Store):
        raise InvalidInput(f"verify_store needs a store or a path, not {type(store).__name__}")
    report = _verify_rows(store)
    if store.wal_problem is not None and report.ok:
        return report.model_copy(update={"ok": False, "first_bad": f"WAL: {store.wal_problem}"})
    return report


def _verify_rows(store: Store) -> VerifyReport:
    n_art = n_msg = 0
    with store._reading() as m:
        for row in m.artifact.select().order_by(m.artifact.hash).iterator():
            n_art += 1
            data = bytes(row.data)
            if content_hash(data) != row.hash or len(data) != row.size:
                return VerifyReport(ok=False, artifacts=n_art,
                                    first_bad=f"artifact {row.hash}: content does not match hash")
        prev: dict[str, tuple[int, str]] = {}
        for row in m.message.select().order_by(m.message.session_id, m.message.seq).iterator():
            n_msg += 1
            last_seq, last_head = prev.get(row.session_id, (0, ""))
            where = f"message {row.session_id}#{row.seq}"
            if row.seq != last_seq + 1:
                return VerifyReport(ok=False, artifacts=n_art, messages=n_msg,
                                    first_bad=f"{where}: sequence gap after {last_seq}")
            if chain_hash(last_head, row.artifact_hash) != row.chain_hash:
                return VerifyReport(ok=False, artifacts=n_art, messages=n_msg,
                                    first_bad=f"{where}: chain hash does not verify")
            if m.artifact.get_or_none(m.artifact.hash == row.artifact_hash) is None:
                return VerifyReport(ok=False, artifacts=n_art, messages=n_msg,
                                    first_bad=f"{where}: artifact {row.artifact_hash} missing")
            prev[row.session_id] = (row.seq, row.chain_hash)
        for s in m.session.select(m.session.id, m.session.message_seq, m.session.message_head):
            seq, head = prev.get(s.id, (0, ""))
            if (seq, head) != (s.message_seq, s.message_head):
                return VerifyReport(ok=False, artifacts=n_art, messages=n_msg,
                                    first_bad=f"session {s.id}: head does not match its messages")
        return VerifyReport(ok=True, artifacts=n_art, messages=n_msg, sessions=len(prev))
