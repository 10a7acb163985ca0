"""Conversational sessions: what happens when one of their turns ends.

A session created or spawned with ``keep_open=True`` does not end when it answers: its
answer is kept as the session's latest answer (``SessionInfo.summary``) and it waits
``idle`` -- no job, no thread -- for the host's next message. Messages sent while it is
busy wait as ``pending`` jobs and get their turn one at a time, in the order sent; a
message is appended to the history when its job is dispatched, never earlier, so a
message cancelled before its turn leaves no trace and the history stays in order.
Only an ended session announces back to its parent (``actors.ending``).
"""

from __future__ import annotations

from typing import Any

from sessiontree._reasons import Reason
from sessiontree._states import JobState, SessionState
from sessiontree.persistence.records import JobRecord
from sessiontree.persistence.tx import Tx


def answered(tx: Tx, session_id: str, content: str) -> str:
    """A conversational session gave its answer: keep it, then :func:`go_on`."""
    tx.update_session(session_id, summary_hash=tx.put({"summary": content}))
    return go_on(tx, session_id, Reason.ANSWERED)


def go_on(tx: Tx, session_id: str, why: Reason) -> str:
    """The session's current turn is over: the oldest pending message gets its turn
    (the job and the session move to ``queued``), or the session waits ``idle``.
    Returns the session's new state."""
    for job in tx.live_jobs(session_id):  # in enqueue order
        if job.state == JobState.PENDING.value:
            tx.set_job(job.id, JobState.QUEUED)
            queue(tx, session_id, Reason.NEXT_MESSAGE)
            return SessionState.QUEUED.value
    tx.set_state(session_id, SessionState.IDLE, why)
    return SessionState.IDLE.value


def queue(tx: Tx, session_id: str, why: Reason) -> None:
    """Move the session to ``queued`` for its next job (it may be queued already: a
    turn cancelled before it ran)."""
    if tx.session(session_id).state != SessionState.QUEUED.value:
        tx.set_state(session_id, SessionState.QUEUED, why)


def message_body(text: str, *, source: str, call_id: str | None = None) -> dict[str, Any]:
    """What a sent message's job carries: the text and where it came from (``host``, or
    ``parent`` for a parent's ``send_to_child``, whose model wrote it: untrusted)."""
    body: dict[str, Any] = {"content": text, "source": source}
    if call_id is not None:
        body["call_id"] = call_id  # the parent's tool call: the same call sends once
    return body


def append_input(tx: Tx, job: JobRecord) -> dict[str, Any]:
    """At dispatch: append the message ``job`` answers to the history (once, whatever
    the attempt). Returns the job fields to write with its move to ``running``."""
    if job.input_hash is None or job.input_seq is not None:
        return {}
    sent = tx.artifact_json(job.input_hash)
    source = sent.get("source", "host")
    message = tx.add_message(
        job.session_id, "user", {"role": "user", "content": sent["content"]},
        trust="trusted" if source == "host" else "untrusted",
        provenance={"source": source, "job_id": job.id},
    )
    return {"input_seq": message.seq}
