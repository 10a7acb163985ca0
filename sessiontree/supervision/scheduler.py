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
store error while handling a message is retried after a back-off. No ``BaseException``
reaches pykka either (its loop would stop every actor in the process). Stopped anyway
(from outside), it tells the runtime, whose calls then raise ``SchedulerDied``.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections import Counter
from typing import Any

import pykka

from sessiontree._budget import Usage
from sessiontree._cancellation import CancelToken
from sessiontree._errors import SessionTreeError, StoreError
from sessiontree._reasons import Reason
from sessiontree._safe_text import exception_text
from sessiontree._states import TERMINAL_VALUES, JobState, SessionState
from sessiontree.actors.context import RuntimeContext
from sessiontree.actors.conversation import append_input
from sessiontree.actors.ending import end_session
from sessiontree.actors.messages import ActorCrashed, JobFinished, RunJob
from sessiontree.actors.session import SessionActor
from sessiontree.actors.threads import simple_inbox
from sessiontree.persistence.records import CommitSummary
from sessiontree.supervision import budget, consent, provider_failures, restart, spawn, turns
from sessiontree.supervision.backpressure import Backpressure, decide_admission
from sessiontree.supervision.groups import AdvanceGroup, GroupRestarts
from sessiontree.supervision.pause import Pause, Pauses, Resume
from sessiontree.supervision.queue import FairQueue, QueuedJob
from sessiontree.supervision.schedmsgs import (
    _ASKS,
    Cancel,
    JobsChanged,
    Load,
    Running,
    SchedulerStats,
    Shutdown,
    Spawn,
    Stats,
    Wake,
)
from sessiontree.supervision.stopping import StopExpired, Stops
from sessiontree.supervision.throttles import ThrottleNotes
from sessiontree.supervision.turns import CancelJob

# The messages live in schedmsgs; callers name them here.
__all__ = ["Cancel", "JobsChanged", "Load", "Running", "SchedulerActor", "SchedulerStats",
           "Shutdown", "Spawn", "Stats", "Wake"]

log = logging.getLogger(__name__)


class SchedulerActor(pykka.ThreadingActor):
    use_daemon_thread = True
    _create_actor_inbox = staticmethod(simple_inbox)

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
        self._throttles = ThrottleNotes()
        self.idle = ctx.scheduler_idle = threading.Condition()
        self.pressure = Backpressure(ctx.limits.provider_limit)  # per-provider back-pressure
        self.stops = Stops(self)  # the shutdown protocol (supervision.stopping)
        self.groups = GroupRestarts(self)  # group restarts in order (supervision.groups)
        self.pauses = Pauses(self, Wake())  # operators' holds (supervision.pause)
        self._want_notes(ctx.clock.now())  # with a rate limit, every success matters

    # -- message loop -----------------------------------------------------------------
    def on_receive(self, message: Any) -> Any:
        try:
            return self._handle(message)
        except StoreError as exc:
            if isinstance(message, _ASKS):
                raise  # an ask: the caller gets the error
            if self.closing:  # not retried: the next open's recovery picks it up
                log.warning("store error handling %s while closing: %s", type(message).__name__, exc)
                return None
            log.warning("store error handling %s; retrying: %s", type(message).__name__, exc)
            self._retry_later(message)
            return None
        except BaseException as exc:  # not only Exception: pykka would stop every actor
            if isinstance(message, _ASKS):
                if isinstance(exc, Exception):
                    raise
                raise SessionTreeError(f"scheduler: {exception_text(exc)}") from exc
            log.exception("scheduler: unexpected error handling %s", type(message).__name__)
            return None
        finally:
            # Dispatch once the inbox is drained: under load one pump (and one dispatch
            # commit) serves every message that arrived meanwhile.
            if self.actor_inbox.empty():
                self._pump_guarded()
            with self.idle:
                self.idle.notify_all()

    def on_stop(self) -> None:  # however it stops (even from outside): the runtime must know
        if self.ctx.on_scheduler_stopped is not None:
            self.ctx.on_scheduler_stopped()

    def on_failure(self, *_exc_info: Any) -> None:
        self.on_stop()

    def _retry_later(self, message: Any) -> None:
        self.ctx.clock.call_later(self.ctx.limits.restart.backoff_initial,
                                  lambda: _tell(self.actor_ref, message))

    def _pump_guarded(self) -> None:
        try:
            self._pump()
        except StoreError as exc:
            log.warning("store error dispatching; retrying: %s", exc)
            self._retry_later(Wake())
        except Exception:
            log.exception("scheduler: unexpected error dispatching")

    def _drain_provider_notes(self) -> None:
        """Count the provider calls that returned (``RuntimeContext.provider_used``)."""
        if self.ctx.provider_notes:
            now = self.ctx.clock.now()
            self.pressure.drain(self.ctx.provider_notes, now)
            self._want_notes(now)

    def _want_notes(self, now: float) -> None:
        """Whether a success should wake us, after a change to some provider's pressure."""
        self.ctx.provider_notes_wanted = self.pressure.wants_notes(now, self.ctx.limits.rate_limits)

    def _handle(self, message: Any) -> Any:
        self._drain_provider_notes()  # a ProviderUsed message only wakes us for this
        if isinstance(message, JobsChanged):
            self._apply(message.summary)
        elif isinstance(message, JobFinished):
            self._finished(message)
        elif isinstance(message, ActorCrashed):
            run = self._release(message.session_id, message.job_id, message.attempt)
            if run is not None:
                self.stops.ended(run, crashed=True)
            self._crashed(message)
        elif isinstance(message, Spawn):
            return spawn.decide(self, message.request)
        elif isinstance(message, Cancel):
            self._cancel(message.session_id, message.reason, message.note)
        elif isinstance(message, CancelJob):
            return turns.cancel_job_now(self, message)
        elif isinstance(message, StopExpired):
            self.stops.expired(message)
        elif isinstance(message, AdvanceGroup):
            self.groups.advance_parent(message)
        elif isinstance(message, Pause | Resume):
            return self.pauses.handle(message)
        elif isinstance(message, Load):
            self.pauses.load()
            for job in self.ctx.store.jobs(states=[JobState.QUEUED]):
                self._push(QueuedJob.of(job), job.not_before)
        elif isinstance(message, Stats):
            self.stats.running = len(self.running)
            self.stats.queued = len(self.queue)
            self.stats.abandoned = len(self.stops.abandoned)
            return SchedulerStats(**vars(self.stats))
        elif isinstance(message, Shutdown):
            return self._shutdown(message.timeout)
        elif isinstance(message, Wake) and message.timer:
            self._timer_due = None  # the armed timer fired; the pump below re-arms it
        return None

    # -- queue ------------------------------------------------------------------------
    def _push(self, job: QueuedJob, not_before: float | None) -> None:
        self.queue.push(job, not_before, self.ctx.clock.now())

    def _apply(self, summary: CommitSummary) -> None:
        for job in summary.jobs:
            if job.state == JobState.QUEUED:
                self._push(QueuedJob.of(job), job.not_before)
        for job_id in summary.cancelled_jobs:
            self.queue.discard(job_id)
            for run in list(self.running.values()):
                if run.job_id == job_id:
                    self.stops.begin(run, summary.cancel_reasons.get(job_id, "cancelled"))
        if self.groups.member_of or self.groups.by_parent:
            for session_id, state in summary.states:
                if state in TERMINAL_VALUES:
                    self.groups.forget(session_id)

    def _release(self, session_id: str, job_id: str, attempt: int) -> Running | None:
        run = self.running.get(session_id)
        if run is None or run.job_id != job_id or run.attempt != attempt:
            return self.stops.release(session_id, job_id, attempt)  # abandoned, if it was
        del self.running[session_id]
        self.by_provider[run.provider] -= 1
        self.pressure.released(run.provider, job_id)
        return run

    def _finished(self, message: JobFinished) -> None:
        run = self._release(message.session_id, message.job_id, message.attempt)
        if run is not None:
            self.stops.ended(run, crashed=False)

    def _crashed(self, message: ActorCrashed) -> None:
        if provider_failures.is_provider_error(message):  # back-pressure's, not a crash
            summary = provider_failures.apply_provider_error(
                self.ctx.store, self.ctx.limits, self.pressure, self.ctx.clock.now(), message)
            self._want_notes(self.ctx.clock.now())  # cooling down: a success now matters
            if summary is not None:
                self._apply(summary)
            return
        outcome = restart.apply_crash(self.ctx.store, self.ctx.limits.restart, message,
                                      self.groups.phase_of(message.session_id))
        if outcome is None:
            return
        self._apply(outcome.summary)
        if outcome.group is not None:
            self.groups.begin(outcome.group)

    def _eligible(self, job: QueuedJob) -> bool:
        if job.session_id in self.running or not self.groups.may_start(job.session_id):
            return False
        if job.provider not in self.ctx.providers:
            # Providers live in code: a store opened without this one keeps the job
            # queued (not failed) for a runtime that registers it.
            self._note_throttle(job, Reason.PROVIDER_UNAVAILABLE)
            return False
        verdict = decide_admission(  # cool-down, AIMD concurrency, rate limits
            self.pressure.of(job.provider), self.ctx.clock.now(), self.by_provider[job.provider],
            self.ctx.limits.rate_limits.get(job.provider), self.ctx.limits.reserve_tokens)
        if verdict.reason is not None:
            self._note_throttle(job, verdict.reason)
            self._arm_timer(verdict.retry_at)
            return False
        return True

    def _pump(self) -> None:
        if self.closing:
            return
        self._drain_provider_notes()
        now = self.ctx.clock.now()
        self._arm_timer(self.queue.release_due(now))
        self._arm_timer(self.groups.next_due(now))
        picked: list[Running] = []
        while len(self.running) + len(self.stops.abandoned) < self.ctx.limits.max_concurrent_runs:
            job = self.queue.pop_next(self._eligible)
            if job is None:
                break
            self._throttles.dispatched(job.job_id)
            picked.append(self._claim(job))
        if len(self.running) + len(self.stops.abandoned) >= self.ctx.limits.max_concurrent_runs:
            head = self.queue.first()
            if head is not None:
                self._note_throttle(head, Reason.GLOBAL_LIMIT)
        if picked:
            self._dispatch(picked)
        elif self._throttles and (not self.running or now >= self._throttles.due_at()):
            self._flush_throttles()
        elif self._throttles:
            self._arm_timer(self._throttles.due_at())

    def _note_throttle(self, job: QueuedJob, limit: Reason) -> None:
        self._throttles.note(job.session_id, job.job_id, limit, self.ctx.clock.now())

    def _flush_throttles(self) -> None:
        if self._throttles:
            with self.ctx.store.transaction() as tx:
                self._throttles.write(tx)

    def _arm_timer(self, due: float | None) -> None:
        if due is None or (self._timer_due is not None and self._timer_due <= due):
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_due = due
        me = self.actor_ref  # the timer fires on the clock's thread: it only sends a message
        self._timer = self.ctx.clock.call_later(max(0.0, due - self.ctx.clock.now()),
                                                lambda: _tell(me, Wake(timer=True)))

    # -- dispatch ---------------------------------------------------------------------
    def _claim(self, job: QueuedJob) -> Running:
        """Take a slot for ``job`` (so the limits count it) until its dispatch commits."""
        run = Running(job.job_id, job.attempt, job.session_id, job.provider, CancelToken(),
                      self.ctx.limits.reservation(), job=job)
        self.running[job.session_id] = run
        self.by_provider[job.provider] += 1
        self.groups.claimed(job.session_id)
        return run

    def _dispatch(self, picked: list[Running]) -> None:
        """Check and mark every picked job running in one commit, then start its actor."""
        started: list[Running] = []
        try:
            with self.ctx.store.transaction() as tx:
                self._throttles.write(tx)
                started = [run for run in picked if self._dispatch_one(tx, run)]
                self.groups.flush(tx)
        except BaseException:
            self.groups.rollback()
            for run in picked:  # nothing was dispatched: the jobs go back to the queue
                self._release(run.session_id, run.job_id, run.attempt)
                if run.job is not None:
                    self._push(run.job, None)
            raise
        self.groups.committed()
        for run in picked:
            if run not in started:
                self._release(run.session_id, run.job_id, run.attempt)
        now = self.ctx.clock.now()
        for run in started:
            self.pressure.dispatched(run.provider, now, run.job_id, self.ctx.limits.reserve_tokens)
            self.stats.dispatched += 1
            self.stats.max_by_provider[run.provider] = max(
                self.stats.max_by_provider.get(run.provider, 0), self.by_provider[run.provider]
            )
            run.job = None
            run.actor = SessionActor.start(self.ctx, run.session_id)
            run.actor.tell(RunJob(run.job_id, run.attempt, run.session_id, run.token))
        self.stats.max_running = max(self.stats.max_running, len(self.running))

    def _dispatch_one(self, tx: Any, run: Running) -> bool:
        job_id, session_id, attempt = run.job_id, run.session_id, run.attempt
        row = tx.job(job_id)
        if row.state != JobState.QUEUED or row.attempt != attempt:
            return False  # cancelled or superseded meanwhile
        if self.pauses.holds(tx, session_id):
            return False  # paused by an operator (supervision.pause)
        session = tx.session(session_id)
        if session.state != SessionState.QUEUED.value:
            return False  # paused or held: leave the job queued in the store
        if not consent.admit(tx, session, job_id, attempt, self.ctx.providers.get(run.provider)):
            return False  # a cloud provider without the tree's consent: held or failed
        if not budget.admit(tx, session, job_id, attempt, run.reservation):
            return False  # over budget: the session failed in this commit
        run.shutdown = session.shutdown
        tx.set_job(job_id, JobState.RUNNING, **append_input(tx, row))  # a sent message
        tx.set_state(session_id, SessionState.RUNNING)
        tx.event("FR-EVT-SESS-SCHED-DISPATCHED", session_id, job_id,
                 {"attempt": attempt, "provider": run.provider,
                  "reservation": run.reservation.model_dump(mode="json")})
        return True

    def reserved(self, session_id: str) -> Usage:
        run = self.running.get(session_id)
        return run.reservation if run else Usage()

    # -- cancel and shutdown ----------------------------------------------------------
    def _cancel(self, session_id: str, reason: Reason, note: str | None) -> None:
        with self.ctx.store.transaction() as tx:
            session = tx.session(session_id)
            if SessionState(session.state).terminal:
                return
            end_session(tx, session_id, SessionState.CANCELLED, reason, note=note)
            summary = tx.summary
        # Apply now (not only when the listener's copy arrives) so the cancel is
        # visible to the caller as soon as this ask returns.
        self._apply(summary)

    def _shutdown(self, timeout: float) -> list[Any]:
        """Stop dispatching and signal every running job; return the live actors for the
        caller to join (joining here would block a running actor's spawn ask)."""
        self.closing = True
        with contextlib.suppress(StoreError):
            self._flush_throttles()
        if self._timer is not None:
            self._timer.cancel()
        for run in self.running.values():
            run.token.cancel("shutdown")
        actors = [run.actor for run in self.running.values() if run.actor is not None]
        self.running.clear()
        return actors + self.stops.close()


def _tell(ref: Any, message: Any) -> None:
    """Send the scheduler a message from another thread (a timer), unless it is gone."""
    with contextlib.suppress(pykka.ActorDeadError):
        ref.tell(message)
