"""The model_run queue: FIFO within a root tree, round-robin across root trees.

One tree with a thousand queued runs cannot starve another with one: each dispatch
takes the next eligible job of the next tree in turn.

Cost: push, a pop whose first tree's head is eligible, and discard are O(1) (amortised)
in the number of queued jobs and trees; len() is O(1). A cancelled job is dropped
lazily: its entry stays where it is until a pop or a release walks past it, and is
then thrown away (``_known`` holds what is live). Only a pop that meets ineligible
heads (a busy session, a provider at its limit) walks further, one step per such head.
"""

from __future__ import annotations

import heapq
from collections import Counter, OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass

from sessiontree.persistence.records import JobRecord


@dataclass(frozen=True)
class QueuedJob:
    job_id: str
    attempt: int
    session_id: str
    root_id: str
    provider: str
    order: int

    @classmethod
    def of(cls, job: JobRecord) -> QueuedJob:
        """The queue's entry for a stored job."""
        return cls(job.id, job.attempt, job.session_id, job.root_id, job.provider, job.order)


class FairQueue:
    """FIFO per root tree, round-robin across trees; delayed jobs wait in a heap."""

    def __init__(self) -> None:
        self._trees: OrderedDict[str, deque[QueuedJob]] = OrderedDict()  # next in turn first
        self._delayed: list[tuple[float, int, QueuedJob]] = []
        self._known: dict[str, int] = {}  # live job_id -> attempt; anything else is stale
        self._session_of: dict[str, str] = {}  # live job_id -> its session
        self._sessions: Counter[str] = Counter()  # live jobs held, by session

    def __len__(self) -> int:
        return len(self._known)

    def _live(self, job: QueuedJob) -> bool:
        return self._known.get(job.job_id) == job.attempt

    def push(self, job: QueuedJob, not_before: float | None = None, now: float = 0.0) -> bool:
        """Add a job (ignored if the same attempt is already queued). True if added."""
        if self._live(job):
            return False
        if job.job_id not in self._known:
            self._sessions[job.session_id] += 1
            self._session_of[job.job_id] = job.session_id
        self._known[job.job_id] = job.attempt
        if not_before is not None and not_before > now:
            heapq.heappush(self._delayed, (not_before, job.order, job))
        else:
            self._trees.setdefault(job.root_id, deque()).append(job)
        return True

    def release_due(self, now: float) -> float | None:
        """Move due delayed jobs into their trees; return the next due time, if any."""
        while self._delayed and (self._delayed[0][0] <= now or not self._live(self._delayed[0][2])):
            _, _, job = heapq.heappop(self._delayed)
            if self._live(job):
                self._trees.setdefault(job.root_id, deque()).append(job)
        return self._delayed[0][0] if self._delayed else None

    def discard(self, job_id: str) -> None:
        """Forget a queued job (cancelled): it is never popped."""
        if self._known.pop(job_id, None) is not None:
            self._forget(job_id)

    def _forget(self, job_id: str) -> None:
        session_id = self._session_of.pop(job_id)
        self._sessions[session_id] -= 1
        if self._sessions[session_id] <= 0:
            del self._sessions[session_id]

    def has_session(self, session_id: str) -> bool:
        """True if a job of this session is queued here (ready or delayed)."""
        return session_id in self._sessions

    def pop_next(self, eligible: Callable[[QueuedJob], bool]) -> QueuedJob | None:
        """The first eligible job of the first tree that has one; that tree goes last."""
        emptied: list[str] = []
        found: QueuedJob | None = None
        for root, q in self._trees.items():
            while q and not self._live(q[0]):
                q.popleft()  # a discarded job: drop it now
            for i, job in enumerate(q):
                if self._live(job) and eligible(job):
                    found = job
                    del q[i]
                    break
            if found is not None:
                self._trees.move_to_end(root)
                if not q:
                    emptied.append(root)
                break
            if not q:
                emptied.append(root)
        for root in emptied:
            del self._trees[root]
        if found is not None:
            del self._known[found.job_id]
            self._forget(found.job_id)
        return found

    def first(self) -> QueuedJob | None:
        """The job that will be considered first (the head of the next tree in turn)."""
        for q in self._trees.values():
            for job in q:
                if self._live(job):
                    return job
        return None
