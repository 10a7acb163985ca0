"""THROTTLED events, noted by the scheduler and written in batches.

A queued job held back by a limit is recorded once per job and limit until it is
dispatched. The events wait to share the next dispatch commit, or at most
:data:`THROTTLE_FLUSH_DELAY` (at once when no run is in flight): one commit for many
throttled jobs, not one each.
"""

from __future__ import annotations

from typing import Any

from sessiontree._reasons import Reason

THROTTLE_FLUSH_DELAY = 0.05
"""Seconds a THROTTLED event may wait to share a commit with a dispatch."""


class ThrottleNotes:
    def __init__(self) -> None:
        self._noted: dict[str, set[Reason]] = {}  # job id -> the limits recorded
        self._events: list[tuple[str, str, str]] = []
        self._since = 0.0  # when the oldest unwritten one was noted

    def __bool__(self) -> bool:
        """Are there events not yet written?"""
        return bool(self._events)

    def note(self, session_id: str, job_id: str, limit: Reason, now: float) -> None:
        noted = self._noted.setdefault(job_id, set())
        if limit in noted:
            return
        noted.add(limit)
        if not self._events:
            self._since = now
        self._events.append((session_id, job_id, limit.value))

    def dispatched(self, job_id: str) -> None:
        """The job left the queue: a later hold is recorded again."""
        self._noted.pop(job_id, None)

    def due_at(self) -> float:
        return self._since + THROTTLE_FLUSH_DELAY

    def write(self, tx: Any) -> None:
        """Write the noted events in ``tx`` (a dispatch's commit, or one of their own)."""
        for session_id, job_id, limit in self._events:
            tx.event("FR-EVT-SESS-SCHED-THROTTLED", session_id, job_id, {"limit": limit})
        self._events.clear()
