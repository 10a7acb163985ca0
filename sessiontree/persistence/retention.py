"""Retention: compact the Flight Recorder under a policy, never losing what must stay.

Two policies (:class:`RetentionPolicy`, exactly one):

- ``older_than_days=N``: the events of every tree whose sessions have *all* ended, the
  last of them more than N days ago, are removed;
- ``keep_last=N``: every ended session keeps its last N events; older ones are removed.

What compaction never does: remove an event of a session that has not ended (a live
tree keeps its whole record); touch messages, artifacts, checkpoints, tool calls or
spans (so every message chain still verifies, and a tree's spans remain); remove a
``FR-EVT-SESS-COMPACTED`` event. What it removed is recorded, in the same transaction,
as one ``FR-EVT-SESS-COMPACTED`` event per session it touched (the policy, how many,
the time span and the count of each type removed).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from sessiontree._states import TERMINAL_VALUES
from sessiontree.persistence.store import Store
from sessiontree.persistence.tx import Tx

COMPACTED = "FR-EVT-SESS-COMPACTED"
DAY = 86_400.0


class RetentionPolicy(BaseModel):
    """What :meth:`Runtime.compact` (``sessiontree compact``) removes: the events of
    trees that ended more than ``older_than_days`` ago, or all but the ``keep_last``
    newest events of each ended session. Exactly one of the two."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    older_than_days: float | None = Field(default=None, ge=0)
    keep_last: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _exactly_one(self) -> RetentionPolicy:
        if (self.older_than_days is None) == (self.keep_last is None):
            raise ValueError("give exactly one of older_than_days and keep_last")
        return self

    def describe(self) -> str:
        if self.keep_last is not None:
            return f"keep_last={self.keep_last}"
        return f"older_than_days={self.older_than_days:g}"


class CompactionReport(BaseModel):
    """What a compaction removed (or, with ``dry_run``, would remove): events in all,
    the sessions they belonged to, and the count of each type."""

    model_config = ConfigDict(frozen=True)

    policy: str
    dry_run: bool
    removed: int = 0
    sessions: list[str] = []
    types: dict[str, int] = {}

    def describe(self) -> str:
        verb = "would remove" if self.dry_run else "removed"
        return (f"{verb} {self.removed} events of {len(self.sessions)} ended sessions "
                f"({self.policy})")


def _doomed(tx: Tx, policy: RetentionPolicy) -> dict[str, str]:
    """Session id -> the SQL that selects its events to remove (one ``?``: the id)."""
    not_compacted = f'"model_session_id" = ? AND "type" != \'{COMPACTED}\''
    marks = ", ".join("?" * len(TERMINAL_VALUES))
    if policy.keep_last is not None:
        rows = tx._exec(f'SELECT "id" FROM "session" WHERE "state" IN ({marks})', TERMINAL_VALUES)
        keep = int(policy.keep_last)
        select = (f'SELECT "id" FROM "event" WHERE {not_compacted} '
                  f'ORDER BY "id" DESC LIMIT -1 OFFSET {keep}')
        return {r[0]: select for r in rows.fetchall()}
    assert policy.older_than_days is not None
    cutoff = tx.now - policy.older_than_days * DAY
    roots = tx._exec(
        f'SELECT "root_id" FROM "session" GROUP BY "root_id" HAVING '
        f'SUM(CASE WHEN "state" IN ({marks}) THEN 0 ELSE 1 END) = 0 AND MAX("ended_at") <= ?',
        (*TERMINAL_VALUES, cutoff)).fetchall()
    select = f'SELECT "id" FROM "event" WHERE {not_compacted}'
    out: dict[str, str] = {}
    for (root,) in roots:
        for (sid,) in tx._exec('SELECT "id" FROM "session" WHERE "root_id" = ?', (root,)).fetchall():
            out[sid] = select
    return out


def compact(store: Store, policy: RetentionPolicy, *, dry_run: bool = False) -> CompactionReport:
    """Apply ``policy`` in one transaction (see the module docstring); with ``dry_run``
    only count. Returns what was (or would be) removed."""
    removed, sessions, types = 0, [], dict[str, int]()
    with store.transaction() as tx:
        for sid, select in _doomed(tx, policy).items():
            stats = tx._exec(f'SELECT "type", COUNT(*), MIN("ts"), MAX("ts") FROM "event" '
                             f'WHERE "id" IN ({select}) GROUP BY "type"', (sid,)).fetchall()
            if not stats:
                continue
            counts: dict[str, int] = {t: n for t, n, _, _ in stats}
            count = sum(counts.values())
            removed += count
            sessions.append(sid)
            for t, n in counts.items():
                types[t] = types.get(t, 0) + n
            if dry_run:
                continue
            tx._exec(f'DELETE FROM "event" WHERE "id" IN ({select})', (sid,))
            payload: dict[str, Any] = {
                "policy": policy.describe(), "removed": count, "types": counts,
                "oldest_ts": min(s[2] for s in stats), "newest_ts": max(s[3] for s in stats)}
            tx.event(COMPACTED, sid, None, payload)
    return CompactionReport(policy=policy.describe(), dry_run=dry_run, removed=removed,
                            sessions=sessions, types=dict(sorted(types.items())))
