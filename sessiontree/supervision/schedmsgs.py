"""The SchedulerActor's messages and records: what callers send it (and which of them
they wait on), a run it holds in flight, and its counters.

``scheduler`` re-exports them, so ``scheduler.JobsChanged`` and the like stay where
callers look for them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sessiontree._budget import Usage
from sessiontree._cancellation import CancelToken
from sessiontree._limits import DEFAULT_SHUTDOWN
from sessiontree._messages import SessionSpawnRequest
from sessiontree._reasons import Reason
from sessiontree.persistence.records import CommitSummary
from sessiontree.supervision.pause import Pause, Resume
from sessiontree.supervision.queue import QueuedJob
from sessiontree.supervision.turns import CancelJob

__all__ = ["_ASKS", "Cancel", "JobsChanged", "Load", "Running", "SchedulerStats", "Shutdown",
           "Spawn", "Stats", "Wake"]


@dataclass(frozen=True)
class JobsChanged:
    summary: CommitSummary


@dataclass(frozen=True)
class Wake:
    """Pump the queue; ``timer`` marks the scheduler's own timer firing."""

    timer: bool = False


@dataclass(frozen=True)
class Spawn:
    request: SessionSpawnRequest


@dataclass(frozen=True)
class Cancel:
    session_id: str
    reason: Reason
    note: str | None = None


@dataclass(frozen=True)
class Load:
    pass


@dataclass(frozen=True)
class Stats:
    pass


@dataclass(frozen=True)
class Shutdown:
    timeout: float


_ASKS = (Spawn, Cancel, CancelJob, Load, Stats, Shutdown, Pause, Resume)
"""The messages a caller waits on: an error handling one is raised to the caller."""


@dataclass
class Running:
    job_id: str
    attempt: int
    session_id: str
    provider: str
    token: CancelToken
    reservation: Usage
    job: QueuedJob | None = None  # while claimed and not yet dispatched
    actor: Any = None
    shutdown: float = DEFAULT_SHUTDOWN  # the session's, read at dispatch


@dataclass
class SchedulerStats:
    """The scheduler's counters (:meth:`Runtime.stats`): jobs running and queued now,
    the most that ran at once (overall and per provider), dispatches so far."""

    running: int = 0
    queued: int = 0
    max_running: int = 0
    dispatched: int = 0
    max_by_provider: dict[str, int] = field(default_factory=dict)
    abandoned: int = 0  # stopped attempts no longer waited for, still in a call
