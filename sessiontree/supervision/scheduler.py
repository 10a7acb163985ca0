"""SchedulerActor: one per Runtime, the root of the supervision tree.

It owns the model_run queue and dispatches under the limits: a global cap on runs in
flight, a cap per provider, at most one running job per session, round-robin across
root trees. It reserves budget before dispatch and the run settles it after.

**Reservation rule.** Before dispatch the scheduler (a single thread, so the check and
the reservation are one atomic step) requires that the session's available budget --
``budget - own usage - children's spend - budget carved to live children - in-flight
reservation`` -- admits one model run plus ``Limits.reserve_tokens`` tokens and
``Limits.reserve_cost``. A run is charged its actual usage when its reply is stored.
``model_runs`` therefore never overshoots; tokens and cost overshoot only when a single
run uses more than it reserved, by at most that excess. Children are carved out of
what is available, so a tree never spends more than its root budget plus the excess
of its runs in flight over their reservations.

The scheduler never dies of bad input: every message handler catches and logs, and a
store error while handling a message is retried after a back-off.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pykka

from sessiontree.actors.context import RuntimeContext
from sessiontree.actors.messages import SessionSpawnRequest
from sessiontree.budget import Usage
from sessiontree.cancellation import CancelToken
from sessiontree.errors import StoreError
from sessiontree.persistence.records import CommitSummary
from sessiontree.reasons import Reason
from sessiontree.states import SessionState
from sessiontree.supervision import restart, spawn
from sessiontree.supervision.queue import FairQueue, QueuedJob

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobsChanged:
    summary: CommitSummary


@dataclass(frozen=True)
class JobFinished:
    session_id: str
    job_id: str
    attempt: int
    outcome: str


@dataclass(frozen=True)
class ActorCrashed:
    session_id: str
    job_id: str
    attempt: int
    error: BaseException


@dataclass(frozen=True)
class Wake:
    pass


@dataclass(frozen=True)
class Spawn:
    request: SessionSpawnRequest


@dataclass(frozen=True)
class Cancel:
    session_id: str
    reason: str


@dataclass(frozen=True)
class Load:
    pass


@dataclass(frozen=True)
class Stats:
    pass


@dataclass(frozen=True)
class Shutdown:
    timeout: float


@dataclass
class Running:
    job_id: str
    attempt: int
    session_id: str
    provider: str
    token: CancelToken
    reservation: Usage
    actor: Any = None


@dataclass
class SchedulerStats:
    running: int = 0
    queued: int = 0
    max_running: int = 0
    dispatched: int = 0
    max_by_provider: dict[str, int] = field(default_factory=dict)


class SchedulerActor(pykka.ThreadingActor):
    use_daemon_thread = True

    def __init__(self, ctx: RuntimeContext) -> None:
        super().__init__()
        self.ctx = ctx
        self.queue = FairQueue()
        self.running: dict[str, Running] = {}  # by session id
        self.by_provider: Counter[str] = Counter()
        self.stats = SchedulerStats()
        self.closing = False
        self._timer: Any = None
        self._timer_due: float | None = None
        self._throttled: set[str] = set()
        self._throttle_events: list[tuple[str, str, str]] = []
        self.idle = threading.Condition()

    # -- message loop -----------------------------------------------------------------
    def on_receive(self, message: Any) -> Any:
        try:
            return self._handle(message)
        except StoreError as exc:
            if isinstance(message, Spawn | Cancel | Load | Stats | Shutdown):
                raise  # an ask: the caller gets the error
            log.warning("store error handling %s; retrying: %s", type(message).__name__, exc)
            me = self.actor_ref

            def retry() -> None:
                with contextlib.suppress(pykka.ActorDeadError):
                    me.tell(message)

            self.ctx.clock.call_later(self.ctx.limits.restart.backoff_initial, retry)
            return None
        except Exception:
            if isinstance(message, Spawn | Cancel | Load | Stats | Shutdown):
                raise
            log.exception("scheduler: unexpected error handling %s", type(message).__name__)
            return None
        finally:
            with self.idle:
                self.idle.notify_all()

    def _handle(self, message: Any) -> Any:
        if isinstance(message, JobsChanged):
            self._apply(message.summary)
        elif isinstance(message, JobFinished):
            self._finished(message)
        elif isinstance(message, ActorCrashed):
            self._release(message.session_id, message.job_id, message.attempt)
            restart.on_crash(self, message)
        elif isinstance(message, Wake):
            pass
        elif isinstance(message, Spawn):
            return spawn.decide(self, message.request)
        elif isinstance(message, Cancel):
            self._cancel(message.session_id, message.reason)
        elif isinstance(message, Load):
            for job in self.ctx.store.jobs(states=["queued"]):
                self._push(QueuedJob(job.id, job.attempt, job.session_id, job.root_id,
                                     job.provider, job.order), job.not_before)
        elif isinstance(message, Stats):
            self.stats.running = len(self.running)
            self.stats.queued = len(self.queue)
            return SchedulerStats(**vars(self.stats))
        elif isinstance(message, Shutdown):
            return self._shutdown(message.timeout)
        self._pump()
        return None

    # -- queue ------------------------------------------------------------------------
    def _push(self, job: QueuedJob, not_before: float | None) -> None:
        self.queue.push(job, not_before, self.ctx.clock.now())

    def _apply(self, summary: CommitSummary) -> None:
        for job in summary.jobs:
            if job.state == "queued":
                self._push(QueuedJob(job.id, job.attempt, job.session_id, job.root_id,
                                     job.provider, job.order), job.not_before)
        for job_id in summary.cancelled_jobs:
            self.queue.discard(job_id)
            for run in list(self.running.values()):
                if run.job_id == job_id:
                    run.token.cancel("cancelled")

    def _release(self, session_id: str, job_id: str, attempt: int) -> Running | None:
        run = self.running.get(session_id)
        if run is None or run.job_id != job_id or run.attempt != attempt:
            return None
        del self.running[session_id]
        self.by_provider[run.provider] -= 1
        return run

    def _finished(self, message: JobFinished) -> None:
        self._release(message.session_id, message.job_id, message.attempt)

    def _eligible(self, job: QueuedJob) -> bool:
        if job.session_id in self.running:
            return False
        if job.provider not in self.ctx.providers:
            # Providers live in code: a store opened without this one keeps the job
            # queued (not failed) for a runtime that registers it.
            self._note_throttle(job, Reason.PROVIDER_UNAVAILABLE)
            return False
        if self.by_provider[job.provider] >= self.ctx.limits.provider_limit(job.provider):
            self._note_throttle(job, Reason.PROVIDER_LIMIT)
            return False
        return True

    def _note_throttle(self, job: QueuedJob, limit: Reason) -> None:
        if job.job_id in self._throttled:
            return
        self._throttled.add(job.job_id)
        # Written with the next dispatch (or at the end of this pump): one commit, not one
        # per throttled job.
        self._throttle_events.append((job.session_id, job.job_id, limit.value))

    def _write_throttles(self, tx: Any) -> None:
        for session_id, job_id, limit in self._throttle_events:
            tx.event("FR-EVT-SESS-SCHED-THROTTLED", session_id, job_id, {"limit": limit})
        self._throttle_events.clear()

    def _pump(self) -> None:
        if self.closing:
            return
        next_due = self.queue.release_due(self.ctx.clock.now())
        self._arm_timer(next_due)
        while len(self.running) < self.ctx.limits.max_concurrent_runs:
            job = self.queue.pop_next(self._eligible)
            if job is None:
                self._flush_throttles()
                return
            self._throttled.discard(job.job_id)
            self._dispatch(job)
        head = self.queue.first()
        if head is not None:
            self._note_throttle(head, Reason.GLOBAL_LIMIT)
        self._flush_throttles()

    def _flush_throttles(self) -> None:
        if self._throttle_events:
            with self.ctx.store.transaction() as tx:
                self._write_throttles(tx)

    def _arm_timer(self, due: float | None) -> None:
        if due is None or (self._timer_due is not None and self._timer_due <= due):
            return
        if self._timer is not None:
            self._timer.cancel()
        me = self.actor_ref
        self._timer_due = due

        def fire() -> None:
            self._timer_due = None
            with contextlib.suppress(pykka.ActorDeadError):
                me.tell(Wake())

        self._timer = self.ctx.clock.call_later(due - self.ctx.clock.now(), fire)

    # -- dispatch ---------------------------------------------------------------------
    def _dispatch(self, job: QueuedJob) -> None:
        from sessiontree.actors.session import RunJob, SessionActor

        reservation = self.ctx.limits.reservation()
        with self.ctx.store.transaction() as tx:
            self._write_throttles(tx)
            row = tx.job(job.job_id)
            if row.state != "queued" or row.attempt != job.attempt:
                return  # cancelled or superseded meanwhile
            session = tx.session(job.session_id)
            if session.state != SessionState.QUEUED.value:
                return  # paused or held: leave the job queued in the store
            if job.provider not in self.ctx.providers:
                tx.set_job(job.job_id, "failed", reason=Reason.PROVIDER_UNAVAILABLE.value)
                tx.event("FR-EVT-SESS-SCHED-FAILED", job.session_id, job.job_id,
                         {"attempt": job.attempt, "reason": Reason.PROVIDER_UNAVAILABLE.value,
                          "error": f"provider {job.provider!r} is not registered"})
                tx.set_state(job.session_id, SessionState.FAILED,
                             Reason.PROVIDER_UNAVAILABLE.value)
                return
            dimension = session.available().exhausted_dimension(reservation)
            if dimension is not None:
                tx.event("FR-EVT-SESS-BUDGET-EXCEEDED", job.session_id, job.job_id,
                         {"dimension": dimension,
                          "budget": session.budget.model_dump(mode="json"),
                          "spent": session.spent.model_dump(mode="json")})
                tx.set_job(job.job_id, "failed", reason=Reason.BUDGET_EXCEEDED.value)
                tx.event("FR-EVT-SESS-SCHED-FAILED", job.session_id, job.job_id,
                         {"attempt": job.attempt, "reason": Reason.BUDGET_EXCEEDED.value})
                tx.set_state(job.session_id, SessionState.FAILED, Reason.BUDGET_EXCEEDED.value)
                return
            tx.set_job(job.job_id, "running")
            tx.set_state(job.session_id, SessionState.RUNNING)
            tx.event("FR-EVT-SESS-SCHED-DISPATCHED", job.session_id, job.job_id,
                     {"attempt": job.attempt, "provider": job.provider,
                      "reservation": reservation.model_dump(mode="json")})
        run = Running(job.job_id, job.attempt, job.session_id, job.provider, CancelToken(),
                      reservation)
        self.running[job.session_id] = run
        self.by_provider[job.provider] += 1
        self.stats.dispatched += 1
        self.stats.max_running = max(self.stats.max_running, len(self.running))
        self.stats.max_by_provider[job.provider] = max(
            self.stats.max_by_provider.get(job.provider, 0), self.by_provider[job.provider]
        )
        run.actor = SessionActor.start(self.ctx, job.session_id)
        run.actor.tell(RunJob(job.job_id, job.attempt, job.session_id, run.token))

    def reserved(self, session_id: str) -> Usage:
        run = self.running.get(session_id)
        return run.reservation if run else Usage()

    # -- cancel and shutdown ----------------------------------------------------------
    def _cancel(self, session_id: str, reason: str) -> None:
        with self.ctx.store.transaction() as tx:
            session = tx.session(session_id)
            if SessionState(session.state).terminal:
                return
            tx.set_state(session_id, SessionState.CANCELLED, reason)
            summary = tx.summary
        # Apply now (not only when the listener's copy arrives) so the cancel is
        # visible to the caller as soon as this ask returns.
        self._apply(summary)

    def _shutdown(self, timeout: float) -> list[Any]:
        """Stop dispatching and signal every running job; return the live actors for the
        caller to join (joining here would block a running actor's spawn ask)."""
        self.closing = True
        if self._timer is not None:
            self._timer.cancel()
        for run in self.running.values():
            run.token.cancel("shutdown")
        actors = [run.actor for run in self.running.values() if run.actor is not None]
        self.running.clear()
        return actors
