"""The host's hold on sessions' turns, as :class:`Runtime` methods (a mixin, to keep
``_runtime.py`` about opening, closing and reading): send a message to a conversational
session, close it, cancel one job, retry a failed session. And the port through which
built-in tools reach the scheduler and the store (spawn, message and close a child).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sessiontree._errors import InvalidInput, RuntimeClosed
from sessiontree._messages import SessionSpawnRequest, SessionSpawnResponse
from sessiontree._states import SessionState
from sessiontree.supervision import scheduler as sch
from sessiontree.supervision import turns
from sessiontree.supervision.operator import retry_session
from sessiontree.tools.registry import ToolError

if TYPE_CHECKING:
    from sessiontree.actors.context import RuntimeContext
    from sessiontree.persistence.store import Store

ASK_TIMEOUT = 30.0


class HostTurns:
    """:meth:`send`, :meth:`close_session`, :meth:`cancel_job`, :meth:`retry`."""

    _store: Store
    _ctx: RuntimeContext

    def _check_open(self) -> None:
        raise RuntimeClosed("runtime is closed")  # Runtime defines the real check

    def send(self, session_id: str, text: str) -> str:
        """Send ``text`` to a conversational session (``keep_open=True``): a model_run
        that answers it is queued at once if the session is ``idle``, else it waits its
        turn (``pending``); several sends are answered one at a time, in order. The
        message joins the history when its run starts. Returns the job id (see
        :meth:`cancel_job`); :meth:`wait` returns when the session is idle again, its
        ``summary`` the latest answer. Raises :class:`InvalidInput` for a session that
        is not conversational or has ended, :class:`UnknownSession`."""
        self._check_open()
        with self._store.transaction() as tx:
            return turns.send_message(tx, session_id, text).id

    def close_session(self, session_id: str) -> None:
        """End an ``idle`` conversational session ``completed`` (reason ``closed``), its
        latest answer as its summary; a child announces back now (only an ended session
        does). Raises :class:`IllegalTransition` unless it is idle (cancel a busy one)."""
        self._check_open()
        with self._store.transaction() as tx:
            turns.close(tx, session_id)

    def cancel_job(self, job_id: str, note: str | None = None) -> bool:
        """Cancel one model_run job, leaving its session to go on: a ``pending`` or
        ``queued`` job is dropped at once; a ``running`` one is cancelled cooperatively
        and its late reply discarded; the session goes on with its next message, or waits
        ``idle`` (a session that is not conversational ends ``cancelled``). ``note`` is
        kept beside the reason ``cancelled_by_host``. Returns False if the job had
        already ended. Raises :class:`InvalidInput` for an unknown job."""
        self._check_open()
        if note is not None and not isinstance(note, str):
            raise InvalidInput("note must be a str")
        if not isinstance(job_id, str):
            raise InvalidInput("job_id must be a str")
        done: bool = self._ctx.scheduler.ask(turns.CancelJob(job_id, note), timeout=ASK_TIMEOUT)
        return done

    def retry(self, session_id: str, note: str | None = None) -> str:
        """Retry a ``failed`` session from its latest checkpoint, as a new attempt
        (``FR-EVT-SESS-RETRIED``); its parent is told again only if it is still waiting
        for it. Returns the new job's id. Raises :class:`IllegalTransition` unless the
        session failed, :class:`InvalidInput` when its parent has ended."""
        self._check_open()
        return retry_session(self._store, session_id, note)


class ChildPort:
    """What built-in tools call: spawn a child (the scheduler decides), send a message
    to a conversational child, close one. A child is reached only by its own parent."""

    def __init__(self, ctx: RuntimeContext) -> None:
        self.ctx = ctx

    def spawn(self, request: SessionSpawnRequest) -> SessionSpawnResponse:
        response: SessionSpawnResponse = self.ctx.scheduler.ask(
            sch.Spawn(request), timeout=ASK_TIMEOUT
        )
        return response

    def send_to_child(
        self, parent_id: str, child_id: str, text: str, call_id: str
    ) -> dict[str, Any]:
        with self.ctx.store.transaction() as tx:
            self._own_child(parent_id, child_id, tx)
            try:
                job = turns.send_message(tx, child_id, text, source="parent", call_id=call_id)
            except InvalidInput as exc:
                raise ToolError(str(exc), reason=exc.reason) from None
            return {"child_id": child_id, "job_id": job.id, "state": tx.session(child_id).state}

    def close_child(self, parent_id: str, child_id: str) -> dict[str, Any]:
        with self.ctx.store.transaction() as tx:
            self._own_child(parent_id, child_id, tx)
            state = tx.session(child_id).state
            if state == SessionState.IDLE.value:
                turns.close(tx, child_id)
            elif not SessionState(state).terminal:
                raise ToolError(f"child {child_id} is {state}: it can be closed once it has "
                                "answered (idle)")
            return {"child_id": child_id, "state": tx.session(child_id).state}

    @staticmethod
    def _own_child(parent_id: str, child_id: str, tx: Any) -> None:
        if child_id not in tx.child_ids(parent_id):
            raise ToolError(f"{child_id!r} is not a child of this session")
