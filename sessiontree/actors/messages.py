"""Messages between the SchedulerActor and the session actors (both directions).

They live here, in the lower of the two layers: the scheduler (``supervision``) imports
them; the actors never import the scheduler.
"""

from __future__ import annotations

from dataclasses import dataclass

from sessiontree._cancellation import CancelToken


@dataclass(frozen=True)
class RunJob:
    """Scheduler -> actor: run this attempt of this model_run job."""

    job_id: str
    attempt: int
    session_id: str
    token: CancelToken


@dataclass(frozen=True)
class JobFinished:
    """Actor -> scheduler: the attempt ended without a crash (``outcome`` says how)."""

    session_id: str
    job_id: str
    attempt: int
    outcome: str


@dataclass(frozen=True)
class ActorCrashed:
    """Actor -> scheduler: the attempt died of ``error``; supervision decides what next."""

    session_id: str
    job_id: str
    attempt: int
    error: BaseException


@dataclass(frozen=True)
class ProviderUsed:
    """Actor -> scheduler: a provider call returned. The tokens it used feed the
    provider's tokens-per-minute window, and the success grows the provider's
    effective concurrency (``supervision.backpressure``)."""

    provider: str
    job_id: str
    tokens: int
