"""SessionActor: a pykka actor that runs one session's model_run jobs.

A session has a live actor only while one of its jobs runs; between jobs it is
passivated to the store (no actor, no thread of its own), and the scheduler starts a
fresh actor for the next job, on a reused thread (``actors.threads``). An unhandled
exception kills the actor; ``on_failure`` tells the scheduler, which restarts the run
from the latest checkpoint (see ``supervision.restart``).
"""

from __future__ import annotations

import logging
from types import TracebackType

import pykka

from sessiontree._cancellation import Cancelled
from sessiontree.actors.context import RuntimeContext
from sessiontree.actors.messages import ActorCrashed, JobFinished, RunJob
from sessiontree.actors.threads import simple_inbox
from sessiontree.actors.turn import ModelTurn
from sessiontree.persistence.tx import JobFenced

log = logging.getLogger(__name__)


class SessionActor(pykka.ThreadingActor):
    use_daemon_thread = True

    def __init__(self, ctx: RuntimeContext, session_id: str) -> None:
        super().__init__()
        self.ctx = ctx
        self.session_id = session_id
        self.current: RunJob | None = None
    _create_actor_inbox = staticmethod(simple_inbox)

    def _start_actor_loop(self) -> None:
        self.ctx.actor_threads.run(self._actor_loop)  # a reused thread (actors.threads)

    def on_receive(self, message: object) -> None:
        if not isinstance(message, RunJob):
            log.warning("session actor %s ignored %r", self.session_id, message)
            return
        self.current = message
        self.ctx.fault("actor.run", session_id=self.session_id, attempt=message.attempt)
        try:
            outcome = ModelTurn(self.ctx, message.job_id, message.attempt, message.session_id,
                                message.token).run()
        except Cancelled as cancelled:  # caught here: a BaseException must not reach pykka
            outcome = f"cancelled:{cancelled.reason}"
        except JobFenced:
            outcome = "fenced"
        self.current = None
        if outcome == "completed":  # its own worktree, if any, goes (its branch stays)
            self.ctx.workspaces.session_completed(message.session_id)
        self._tell_scheduler(JobFinished(message.session_id, message.job_id, message.attempt,
                                         outcome))
        self.stop()  # passivate

    def on_failure(
        self,
        exception_type: type[BaseException] | None,
        exception_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        job = self.current
        if job is None or exception_value is None:
            return
        self._tell_scheduler(ActorCrashed(job.session_id, job.job_id, job.attempt,
                                          exception_value))

    def _tell_scheduler(self, message: object) -> None:
        try:
            self.ctx.scheduler.tell(message)
        except pykka.ActorDeadError:
            log.debug("scheduler gone; %r dropped (recovery will re-queue)", message)
