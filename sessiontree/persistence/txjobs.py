"""The job verbs of a write transaction: enqueue a model_run, fence an attempt, move a
job along its state machine, and write its span when it ends.

:class:`~sessiontree.persistence.tx.Tx` inherits them (``tx.py`` holds sessions,
messages and checkpoints).
"""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

from sessiontree._budget import Usage
from sessiontree._ids import new_id
from sessiontree._states import (
    JobState,
    check_job_transition,
)
from sessiontree.persistence import convert
from sessiontree.persistence.records import (
    JobRecord,
)
from sessiontree.persistence.spans import (
    CANCELLED,
    ERROR,
    MODEL_RUN,
    OK,
    span_id,
)
from sessiontree.persistence.txqueries import QueryTx

_SPAN_STATUS = {"completed": OK, "failed": ERROR, "cancelled": CANCELLED}

__all__ = ["JobFenced", "JobTx"]


class JobFenced(Exception):
    """The job is no longer the session's current running attempt; discard its work."""

    def __init__(self, job_id: str, attempt: int, state: str) -> None:
        super().__init__(f"job {job_id} attempt {attempt} is fenced (job is {state})")
        self.job_id = job_id
        self.attempt = attempt
        self.state = state


class JobTx(QueryTx):
    """Job verbs (see the module docstring)."""

    # -- jobs -------------------------------------------------------------------------
    def enqueue(
        self, session_id: str, *, attempt: int = 1, not_before: float | None = None,
        pending: bool = False, input_hash: str | None = None,
    ) -> JobRecord:
        """Add a model_run job: ``queued``, or ``pending`` (a message for a busy session,
        waiting its turn). ``input_hash`` is the host's message the run answers: it is
        appended to the history when the job is dispatched."""
        row = self._row(session_id)
        job_id = new_id("job")
        order = self._next_job_order()
        state = JobState.PENDING if pending else JobState.QUEUED
        fields = {
            "id": job_id, "order": order, "session_id": session_id, "root_id": row.root_id,
            "kind": "model_run", "state": state.value, "attempt": attempt, "provider": row.provider,
            "not_before": not_before, "reason": None, "created_at": self.now,
            "started_at": None, "ended_at": None, "input_hash": input_hash, "input_seq": None,
        }
        self._insert("job", fields)
        job = convert.job(SimpleNamespace(**fields))
        self._roots[session_id] = row.root_id
        self.event(
            "FR-EVT-SESS-SCHED-ENQUEUED",
            session_id,
            job_id,
            {"attempt": attempt, "provider": row.provider, "not_before": not_before}
            | ({"pending": True} if pending else {}),
        )
        if not pending:
            self.summary.jobs.append(job)
        return job

    def fence(self, job_id: str, attempt: int) -> None:
        """Raise :class:`JobFenced` unless ``job_id`` is running at ``attempt``."""
        row = self._job_row(job_id)
        if row.state != JobState.RUNNING or row.attempt != attempt:
            raise JobFenced(job_id, attempt, row.state)
        self.on_job(job_id, row.session_id, cause=True)  # this commit is that run's

    def set_job(self, job_id: str, state: JobState, **fields: Any) -> None:
        """Move a job along its state machine (:data:`~sessiontree._states.JOB_TRANSITIONS`)."""
        row = self._job_row(job_id)
        src, started, session_id = row.state, row.started_at, row.session_id
        dst = check_job_transition(job_id, src, str(state))
        fields["state"] = dst.value
        if dst is JobState.RUNNING:
            fields["started_at"] = self.now
        elif dst.terminal:
            fields["ended_at"] = self.now
        self._update("job", fields, "id", job_id)
        self.on_job(job_id, session_id)
        self._job_span(job_id, src, dst, started, session_id, row.attempt, fields.get("reason"))
        if dst is JobState.QUEUED:
            self.summary.jobs.append(self.job(job_id))
        elif dst is JobState.CANCELLED:
            self.summary.cancelled_jobs.append(job_id)
            if fields.get("reason"):
                self.summary.cancel_reasons[job_id] = fields["reason"]

    def _job_span(
        self, job_id: str, src: str, dst: JobState, started: float | None, session_id: str,
        attempt: int, reason: str | None,
    ) -> None:
        """A model_run's span starts at its first dispatch and ends with the job (a job
        that never ran has none). Its row is written whole when the job ends (with all
        it was charged) or is restarted (so its start survives) -- never by a dispatch
        or a charge, one row a run (a read shows a running job's span from the job
        row: ``recorder.spans``)."""
        if dst is JobState.RUNNING:
            if started is None:  # its first dispatch: this process sees all its charges
                self.charge_run(job_id, Usage())
            return
        if started is None:
            return
        if dst.terminal:
            self._run_span(job_id, session_id, started, attempt)
            known, here = self.take_run_usage(job_id)
            if known is None:  # charged before this process started: read what it was
                known = self._charged_to(job_id, session_id)
            self.close_span(MODEL_RUN, job_id, session_id=session_id,
                            root_id=self._row(session_id).root_id,
                            status=_SPAN_STATUS[dst.value], detail=reason or dst.value,
                            attempt=attempt, usage=known + here if here else known)
        elif src == JobState.RUNNING and dst is JobState.QUEUED:
            self._run_span(job_id, session_id, started, attempt)

    def _charged_to(self, job_id: str, session_id: str) -> Usage:
        total = Usage()
        for (payload,) in self._exec(
                'SELECT "payload" FROM "event" WHERE "model_session_id" = ? AND "job_id" = ? '
                'AND "type" = ?', (session_id, job_id, "FR-EVT-SESS-USAGE")).fetchall():
            total = total + Usage.model_validate(json.loads(payload)["run"])
        return total

    def _run_span(self, job_id: str, session_id: str, started: float, attempt: int) -> None:
        """This transaction's row for a model_run's span, whole (stored or not)."""
        session = self._row(session_id)
        self.open_span(MODEL_RUN, job_id, session_id=session_id, root_id=session.root_id,
                       parent=span_id(session_id, 16), name=session.model, job_id=job_id,
                       attempt=attempt, start=started,
                       attributes={"provider": session.provider, "model": session.model,
                                   "role": session.role})

