"""The host's hold on a session's turns: send a message, close a conversation, cancel
one job. Each is one transaction through persistence verbs (see ``actors.conversation``
for what a conversational session does between turns).

Cancelling one job (:func:`cancel_job`): a ``pending`` or ``queued`` job is dropped at
once (a message that never had its turn leaves no trace in the history); a ``running``
one is fenced at once -- its late reply is discarded -- and the scheduler cancels its
call cooperatively. The session then goes on: tool calls its cut-off turn asked for and
never started get an error result (they did not run); a call already started is
finished by the next run under the journal rules (never run twice); then the next
pending message gets its turn, or the session waits ``idle``. A session that is not
conversational has nothing to go on with: it ends ``cancelled`` (``cancelled_by_host``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sessiontree._errors import IllegalTransition, InvalidInput, StoreError
from sessiontree._reasons import Reason
from sessiontree._states import JobState, SessionState, ToolCallState
from sessiontree.actors.conversation import go_on, message_body, queue
from sessiontree.actors.ending import end_session
from sessiontree.actors.journal import write_tool_result
from sessiontree.persistence.records import JobRecord
from sessiontree.persistence.tx import Tx

if TYPE_CHECKING:
    from sessiontree.supervision.scheduler import SchedulerActor

MAX_MESSAGE = 200_000
"""Characters in one sent message (a spawned child's task has the same bound)."""


def send_message(
    tx: Tx, session_id: str, text: str, *, source: str = "host", call_id: str | None = None,
) -> JobRecord:
    """Queue a model_run that answers ``text``: at once if the session is ``idle``,
    else as a ``pending`` job that waits its turn. Raises :class:`InvalidInput` for a
    session that is not conversational or has ended."""
    if not isinstance(text, str) or len(text) > MAX_MESSAGE:
        raise InvalidInput(f"a message is a str of at most {MAX_MESSAGE} characters")
    session = tx.session(session_id)
    if not session.keep_open:
        raise InvalidInput(f"session {session_id} is not conversational (create or spawn "
                           "it with keep_open=True)", session_id=session_id)
    if SessionState(session.state).terminal:
        raise InvalidInput(f"session {session_id} has ended ({session.state})",
                           session_id=session_id)
    digest = tx.put(message_body(text, source=source, call_id=call_id))
    if call_id is not None:
        known = tx.job_by_input(session_id, digest)
        if known is not None:  # the same tool call, run again after a crash
            return known
    idle = session.state == SessionState.IDLE.value
    job = tx.enqueue(session_id, pending=not idle, input_hash=digest)
    if idle:
        tx.set_state(session_id, SessionState.QUEUED, Reason.MESSAGE)
    return job


def close(tx: Tx, session_id: str) -> None:
    """End an ``idle`` conversational session ``completed`` (reason ``closed``), its last
    answer as its summary; it announces back to its parent. Raises
    :class:`IllegalTransition` unless it is idle."""
    session = tx.session(session_id)
    if session.state != SessionState.IDLE.value:
        raise IllegalTransition(session_id, session.state, SessionState.COMPLETED.value)
    end_session(tx, session_id, SessionState.COMPLETED, Reason.CLOSED)


def cancel_job(tx: Tx, job_id: str, note: str | None = None) -> bool:
    """Cancel one job (see the module docstring). False if it had already ended."""
    try:
        job = tx.job(job_id)
    except StoreError:
        raise InvalidInput(f"unknown job {job_id!r}", job_id=job_id) from None
    if JobState(job.state).terminal:
        return False
    sid = job.session_id
    tx.set_job(job.id, JobState.CANCELLED, reason=Reason.CANCELLED_BY_HOST.value)
    tx.event("FR-EVT-SESS-SCHED-CANCELLED", sid, job.id, {
        "attempt": job.attempt, "reason": Reason.CANCELLED_BY_HOST.value,
        "was_running": job.state == JobState.RUNNING, "note": note})
    if job.state == JobState.PENDING:
        return True  # it never had its turn: the session goes on as it was
    started = _settle_open_calls(tx, sid, job.id)
    session = tx.session(sid)
    if started:  # finish the calls already started (journal rules), then go on
        queue(tx, sid, Reason.JOB_CANCELLED)
        tx.enqueue(sid)
    elif session.keep_open:
        go_on(tx, sid, Reason.JOB_CANCELLED)
    else:
        end_session(tx, sid, SessionState.CANCELLED, Reason.CANCELLED_BY_HOST, note=note)
    return True


def _settle_open_calls(tx: Tx, session_id: str, job_id: str) -> list[str]:
    """Give the cut-off turn's never-started calls an error result; return the ids of
    those already started (an intent, or a result the history does not have yet)."""
    checkpoint = tx.latest_checkpoint(session_id)
    started: list[str] = []
    for call_id in checkpoint.open_tool_calls:
        rec = tx.tool_call(call_id)
        if rec.state == ToolCallState.PENDING:
            write_tool_result(tx, rec, False, {
                "error": "the host cancelled this turn before the call ran",
                "reason": Reason.CANCELLED_BY_HOST.value}, job_id=job_id,
                reason=Reason.CANCELLED_BY_HOST.value, source="host")
        else:
            started.append(call_id)
    if len(started) != len(checkpoint.open_tool_calls):
        tx.checkpoint(session_id, open_tool_calls=started, awaited_children=(),
                      job_id=job_id, attempt=0)
    return started


@dataclass(frozen=True)
class CancelJob:
    """Host -> scheduler (an ask): cancel one job (:func:`cancel_job`)."""

    job_id: str
    note: str | None = None


def cancel_job_now(sched: SchedulerActor, message: CancelJob) -> bool:
    """On the scheduler's thread: cancel in the store, then stop a running attempt
    (the shutdown protocol) and drop a queued one from the queue."""
    with sched.ctx.store.transaction() as tx:
        done = cancel_job(tx, message.job_id, message.note)
        summary = tx.summary
    sched._apply(summary)  # at once, not only when the listener's copy arrives
    return done
