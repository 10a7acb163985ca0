"""One write transaction over the store, with the domain's verbs.

A :class:`Tx` is only handed out by :meth:`Store.transaction`, under the store's write
lock; everything it does commits together or not at all. It is the one place that
changes a session's state (through :func:`sessiontree._states.check_transition`), and
every change it makes is recorded as a Flight Recorder event in the same transaction.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from sessiontree._budget import Budget, Usage
from sessiontree._errors import IllegalTransition, InvalidInput, StoreError
from sessiontree._ids import new_id
from sessiontree._reasons import Reason
from sessiontree._states import (
    TERMINAL_VALUES,
    JobState,
    SessionState,
    ToolCallState,
    check_transition,
)
from sessiontree.persistence import convert
from sessiontree.persistence.artifacts import chain_hash
from sessiontree.persistence.records import (
    CheckpointRecord,
    JobRecord,
    MessageRecord,
    SessionRecord,
)
from sessiontree.persistence.spans import (
    CANCELLED,
    ERROR,
    MODEL_RUN,
    OK,
    SESSION,
    session_parent_span,
    session_span_attributes,
)
from sessiontree.persistence.txjobs import JobFenced, JobTx

__all__ = ["JobFenced", "Tx"]  # JobFenced lives in txjobs

_SPAN_STATUS = {"completed": OK, "failed": ERROR, "cancelled": CANCELLED}
_ENDED_EVENT = {s: f"FR-EVT-SESS-{s.upper()}" for s in _SPAN_STATUS}


class Tx(JobTx):
    """One write transaction with the domain's verbs (see the module docstring)."""

    # -- sessions ----------------------------------------------------------------------
    def update_session(self, session_id: str, **fields: Any) -> None:
        if "state" in fields:
            raise StoreError("state changes go through Tx.set_state")
        for key in ("budget", "usage", "children_spent", "carved"):
            if key in fields and not isinstance(fields[key], str):
                fields[key] = fields[key].model_dump_json()
        for key in ("restart_log", "child_restart_log", "meta", "capabilities"):
            if key in fields and not isinstance(fields[key], str):
                fields[key] = convert.dumps(list(fields[key]) if key != "meta" else fields[key])
        fields["updated_at"] = self.now
        self._update("session", fields, "id", session_id)

    def create_session(
        self,
        *,
        role: str,
        provider: str,
        model: str,
        budget: Budget,
        parent: SessionRecord | None = None,
        capabilities: tuple[str, ...] = (),
        workspace: str | None = None,
        max_children: int | None = None,
        restart: str = "transient",
        child_strategy: str = "one_for_one",
        spawn_key: str | None = None,
        system: str | None = None,
        task: str = "",
        meta: dict[str, Any] | None = None,
        enqueue: bool = True,
        shutdown: float = 5.0,
        significant: bool = False,
        auto_shutdown: str = "never",
        child_max_restarts: int = 5,
        child_period: float = 60.0,
        keep_open: bool = False,
        spawned_by: str | None = None,
    ) -> tuple[SessionRecord, JobRecord | None]:
        """Create a session with its first messages and checkpoint (and its first job).

        All in this transaction, so a kill can never leave a session without its run.
        ``spawned_by`` is the id of the ``spawn_session`` call that asked for it (kept in
        the task message's provenance): the child's span nests under that call's.
        """
        sid = new_id("ses")
        root_id = parent.root_id if parent else sid
        depth = parent.depth + 1 if parent else 0
        task_hash = self.put({"task": task})
        self.created_sessions.add(sid)
        self._insert("session", dict(
            id=sid,
            parent_id=parent.id if parent else None,
            root_id=root_id,
            depth=depth,
            spawn_index=parent.spawn_count if parent else 0,
            role=role,
            state=SessionState.CREATED.value,
            provider=provider,
            model=model,
            capabilities=convert.dumps(list(capabilities)),
            budget=budget.model_dump_json(),
            usage=Usage().model_dump_json(),
            children_spent=Usage().model_dump_json(),
            carved=Usage().model_dump_json(),
            max_children=max_children,
            restart=restart,
            child_strategy=child_strategy,
            shutdown=float(shutdown),
            significant=bool(significant),
            auto_shutdown=auto_shutdown,
            child_max_restarts=child_max_restarts,
            child_period=float(child_period),
            child_restart_log="[]",
            keep_open=bool(keep_open),
            workspace=workspace,
            task_hash=task_hash,
            spawn_key=spawn_key,
            meta=convert.dumps(meta or {}),
            created_at=self.now,
            updated_at=self.now,
            # peewee's defaults live in Python, so plain SQL names them all
            spawn_count=0, restart_log="[]", checkpoint_seq=0, message_seq=0,
            message_head="", announced=False, state_reason=None, summary_hash=None,
            ended_at=None,
        ))
        self._roots[sid] = root_id
        self.event(
            "FR-EVT-SESS-CREATED",
            sid,
            None,
            {
                "role": role,
                "parent_id": parent.id if parent else None,
                "root_id": root_id,
                "depth": depth,
                "provider": provider,
                "model": model,
                "budget": budget.model_dump(mode="json"),
            },
        )
        self.summary.states.append((sid, SessionState.CREATED.value))
        if system:
            self.add_message(sid, "system", {"role": "system", "content": system})
        self.add_message(
            sid,
            "user",
            {"role": "user", "content": task},
            trust="untrusted" if parent else "trusted",
            provenance=({"source": "spawn", "parent_id": parent.id, "call_id": spawned_by}
                        if parent else {"source": "host"}),
        )
        self.checkpoint(sid, open_tool_calls=(), awaited_children=(), job_id=None, attempt=0)
        job = None
        if enqueue:
            self.set_state(sid, SessionState.QUEUED)
            job = self.enqueue(sid)
        return self.session(sid), job

    def set_state(
        self, session_id: str, to_state: SessionState | str, reason: Reason | str | None = None,
    ) -> None:
        """Move a session between live states; raise :class:`IllegalTransition` if the
        state machine does not allow it. A session *ends* only through
        :func:`sessiontree.actors.ending.end_session`, which calls :meth:`mark_ended`
        and applies what ending entails in the same transaction."""
        if str(to_state) in TERMINAL_VALUES:
            raise StoreError(
                f"session {session_id}: a session ends through actors.ending.end_session")
        from_state = self._row(session_id).state
        if from_state in TERMINAL_VALUES:  # only an operator's retry reopens one (reopen)
            raise IllegalTransition(session_id, from_state, str(to_state))
        self._move(session_id, to_state, reason, None, None)

    def reopen(self, session_id: str) -> SessionRecord:
        """Move a ``failed`` session back to ``queued`` for an operator's retry (the one
        move out of a terminal state), clearing its end time and its restart log.
        Raises :class:`IllegalTransition` for a session that is not ``failed``."""
        from_state = self._row(session_id).state
        if from_state != SessionState.FAILED.value:
            raise IllegalTransition(session_id, from_state, SessionState.QUEUED.value)
        self._move(session_id, SessionState.QUEUED, Reason.RETRIED, None, None)
        self.update_session(session_id, ended_at=None, restart_log=[])
        return self.session(session_id)

    def mark_ended(
        self, session_id: str, to_state: SessionState, reason: Reason | str | None,
        summary: Any = None, *, note: str | None = None,
    ) -> SessionRecord:
        """Write a session's move to a terminal state (row and event) and return it.

        Only the row: the ending step (``actors.ending``) applies the rest."""
        if not SessionState(to_state).terminal:
            raise StoreError(f"{to_state} is not a terminal state")
        self._move(session_id, to_state, reason, summary, note)
        row = self._row(session_id)
        usage = convert.usage_of(row.usage)
        why = None if reason is None else str(reason)
        self.event(_ENDED_EVENT[row.state], session_id, None, {
            "reason": why, "usage": usage.model_dump(mode="json"),
            "summary_hash": row.summary_hash} | ({"note": note} if note is not None else {}))
        status = _SPAN_STATUS[row.state]
        # A call cut off by a failure or a cancel (running, or parked waiting) stays as
        # the journal says; its span ends with the session, so no span outlives its
        # session's. (A session completes only once every call of it has its result.)
        calls = [] if status == OK else self._exec(
            'SELECT "id", "job_id", "tool", "effect", "created_at" FROM "tool_call" '
            'WHERE "session_id" = ? AND "state" IN (?, ?)',
            (session_id, ToolCallState.INTENT.value, ToolCallState.WAITING.value)).fetchall()
        for call_id, job_id, tool, effect, created in calls:
            self.end_tool_span(call_id, session_id, job_id, tool, effect, created, status,
                               "session_ended")
        self.open_span(SESSION, session_id, session_id=session_id, root_id=row.root_id,
                       name=row.role, start=row.created_at,
                       parent=session_parent_span(self._exec, session_id, row.parent_id),
                       attributes=session_span_attributes(row))
        self.close_span(SESSION, session_id, session_id=session_id, root_id=row.root_id,
                        status=status, detail=why, usage=usage)
        return convert.session(row)

    def _move(
        self, session_id: str, to_state: SessionState | str, reason: Reason | str | None,
        summary: Any, note: str | None,
    ) -> None:
        row = self._row(session_id)
        from_state = row.state
        dst = check_transition(session_id, from_state, str(to_state))
        try:  # a reason is a code a program switches on; free text goes in ``note``
            why = None if reason is None else Reason(reason).value
        except ValueError:
            raise InvalidInput(f"{reason!r} is not a reason code; free text is a note",
                               reason_text=str(reason)) from None
        fields: dict[str, Any] = {"state": dst.value, "state_reason": why, "updated_at": self.now}
        if summary is not None:
            fields["summary_hash"] = self.put(summary)
        if dst.terminal:
            fields["ended_at"] = self.now
        self._update("session", fields, "id", session_id)
        self._roots[session_id] = row.root_id
        self.event(
            "FR-EVT-SESS-STATE",
            session_id,
            None,
            {"from_state": from_state, "to_state": dst.value, "reason": why}
            | ({"note": note} if note is not None else {}),
        )
        self.summary.states.append((session_id, dst.value))

    def charge(self, session_id: str, usage: Usage) -> Usage:
        row = self._row(session_id)
        total = convert.usage_of(row.usage) + usage
        self.update_session(session_id, usage=total)
        job = self._jobs.get(session_id)
        if job is not None:  # the run it pays for: its span shows the tokens
            if JobState(self._job_row(job).state).terminal:  # a late reply's cost
                self.add_span_usage(job, session_id=session_id, root_id=row.root_id,
                                    kind=MODEL_RUN, usage=usage)
            else:
                self.charge_run(job, usage)
        self.event(
            "FR-EVT-SESS-USAGE",
            session_id,
            None,
            {"run": usage.model_dump(mode="json"), "total": total.model_dump(mode="json")},
        )
        return total

    # -- messages and checkpoints -------------------------------------------------------
    def add_message(
        self,
        session_id: str,
        role: str,
        body: dict[str, Any],
        *,
        trust: str = "trusted",
        provenance: dict[str, Any] | None = None,
    ) -> MessageRecord:
        """Append a message: artifact first, then the row with its chain hash."""
        row = self._row(session_id)
        artifact = self.put(body)
        seq = row.message_seq + 1
        head = chain_hash(row.message_head, artifact)
        prov = provenance or {}
        self._insert("message", {
            "session_id": session_id, "seq": seq, "role": role, "artifact_hash": artifact,
            "chain_hash": head, "trust": trust, "provenance": convert.dumps(prov),
            "created_at": self.now,
        })
        self._update("session", {"message_seq": seq, "message_head": head, "updated_at": self.now},
                     "id", session_id)
        self._roots[session_id] = row.root_id
        self.event(
            "FR-EVT-SESS-MESSAGE",
            session_id,
            None,
            {"seq": seq, "role": role, "artifact_hash": artifact, "chain_hash": head, "trust": trust},
        )
        record = MessageRecord(session_id, seq, role, artifact, head, trust, body, prov, self.now)
        self.summary.messages.append(record)
        return record

    def checkpoint(
        self,
        session_id: str,
        *,
        open_tool_calls: tuple[str, ...] | list[str],
        awaited_children: tuple[str, ...] | list[str],
        job_id: str | None,
        attempt: int,
    ) -> CheckpointRecord:
        """Commit the session's resumable state, in the transaction of the data it names."""
        row = self._row(session_id)
        seq = row.checkpoint_seq + 1
        fields = {
            "session_id": session_id, "seq": seq, "state": row.state,
            "message_seq": row.message_seq, "message_head": row.message_head,
            "open_tool_calls": convert.dumps(list(open_tool_calls)),
            "awaited_children": convert.dumps(list(awaited_children)),
            "usage": row.usage, "job_id": job_id, "attempt": attempt, "created_at": self.now,
        }
        self._insert("checkpoint", fields)
        self._update("session", {"checkpoint_seq": seq}, "id", session_id)
        self._roots[session_id] = row.root_id
        record = self._checkpoints[session_id] = convert.checkpoint(SimpleNamespace(**fields))
        self.event(
            "FR-EVT-SESS-CHECKPOINT",
            session_id,
            job_id,
            {
                "checkpoint_seq": seq,
                "message_seq": row.message_seq,
                "message_head": row.message_head,
                "open_tool_calls": list(open_tool_calls),
                "awaited_children": list(awaited_children),
                "state": row.state,
            },
        )
        return record

    def latest_checkpoint(self, session_id: str) -> CheckpointRecord:
        row = self._row(session_id)
        cur = self._exec('SELECT * FROM "checkpoint" WHERE "session_id" = ? AND "seq" = ?',
                         (session_id, row.checkpoint_seq))
        values = cur.fetchone()
        if values is None:
            raise StoreError(f"no checkpoint {row.checkpoint_seq} for {session_id}")
        names = [d[0] for d in cur.description]
        return convert.checkpoint(SimpleNamespace(**dict(zip(names, values, strict=True))))
