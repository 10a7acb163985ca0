"""The model_run queue: FIFO within a root tree, round-robin across root trees.

One tree with a thousand queued runs cannot starve another with one: each dispatch
takes the next eligible job of the next tree in turn.
"""

from __future__ import annotations

import heapq
from collections import Counter, OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class QueuedJob:
    job_id: str
    attempt: int
    session_id: str
    root_id: str
    provider: str
    order: int


class FairQueue:
    def __init__(self) -> None:
        self._trees: OrderedDict[str, deque[QueuedJob]] = OrderedDict()
        self._delayed: list[tuple[float, int, QueuedJob]] = []
        self._known: dict[str, int] = {}  # job_id -> attempt, to ignore duplicates
        self._sessions: Counter[str] = Counter()  # jobs held, by session

    def __len__(self) -> int:
        return sum(len(q) for q in self._trees.values()) + len(self._delayed)

    def push(self, job: QueuedJob, not_before: float | None = None, now: float = 0.0) -> bool:
        """Add a job (ignored if the same attempt is already queued). True if added."""
        if self._known.get(job.job_id) == job.attempt:
            return False
        self._known[job.job_id] = job.attempt
        self._sessions[job.session_id] += 1
        if not_before is not None and not_before > now:
            heapq.heappush(self._delayed, (not_before, job.order, job))
        else:
            self._trees.setdefault(job.root_id, deque()).append(job)
        return True

    def release_due(self, now: float) -> float | None:
        """Move due delayed jobs into their trees; return the next due time, if any."""
        while self._delayed and self._delayed[0][0] <= now:
            _, _, job = heapq.heappop(self._delayed)
            self._trees.setdefault(job.root_id, deque()).append(job)
        return self._delayed[0][0] if self._delayed else None

    def discard(self, job_id: str) -> None:
        self._known.pop(job_id, None)
        for root in list(self._trees):
            q = self._trees[root]
            for gone in (j for j in q if j.job_id == job_id):
                self._forget(gone)
            kept = deque(j for j in q if j.job_id != job_id)
            if kept:
                self._trees[root] = kept
            else:
                del self._trees[root]
        for _, _, gone in (d for d in self._delayed if d[2].job_id == job_id):
            self._forget(gone)
        self._delayed = [d for d in self._delayed if d[2].job_id != job_id]
        heapq.heapify(self._delayed)

    def _forget(self, job: QueuedJob) -> None:
        self._sessions[job.session_id] -= 1
        if self._sessions[job.session_id] <= 0:
            del self._sessions[job.session_id]

    def has_session(self, session_id: str) -> bool:
        """True if a job of this session is queued here (ready or delayed)."""
        return session_id in self._sessions

    def pop_next(self, eligible: Callable[[QueuedJob], bool]) -> QueuedJob | None:
        """The first eligible job of the first tree that has one; that tree goes last."""
        for root in list(self._trees):
            q = self._trees[root]
            for i, job in enumerate(q):
                if eligible(job):
                    del q[i]
                    self._known.pop(job.job_id, None)
                    self._forget(job)
                    self._trees.move_to_end(root)
                    if not q:
                        del self._trees[root]
                    return job
        return None

    def heads(self) -> list[QueuedJob]:
        return [q[0] for q in self._trees.values() if q]

    def first(self) -> QueuedJob | None:
        """The job that will be considered first (the head of the next tree in turn)."""
        for q in self._trees.values():
            if q:
                return q[0]
        return None
