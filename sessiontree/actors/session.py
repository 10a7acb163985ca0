"""SessionActor: a pykka actor that runs one session's model_run jobs.

A session has a live actor only while one of its jobs runs; between jobs it is
passivated to the store (no actor, no thread of its own), and the scheduler starts a
fresh actor for the next job, on a reused thread (``actors.threads``).

**What is a crash.** Anything a run raises -- an ``Exception`` or any other
``BaseException`` (``SystemExit``, ``KeyboardInterrupt``, ``GeneratorExit``, a user's
subclass), from a provider, a tool or the runtime -- is *this session's* crash: the actor
tells the scheduler, which restarts the run from the latest checkpoint under the
restart policy (see ``supervision.restart``), and stops. Such an exception raised on an
actor's thread is never a request to stop the process (a real Ctrl-C reaches the main
thread only), and it never reaches pykka, whose actor loop would stop every actor in the
process. :class:`Cancelled` keeps meaning cancellation when the run's token was
cancelled; raised with no cancel asked for, it is a crash like any other (the session
would otherwise be left ``running`` with nobody running it).
"""

from __future__ import annotations

import contextlib
import logging
from types import TracebackType

import pykka

from sessiontree._cancellation import Cancelled
from sessiontree._safe_text import exception_text
from sessiontree.actors.context import RuntimeContext
from sessiontree.actors.messages import ActorCrashed, JobFinished, RunJob
from sessiontree.actors.threads import init_actor, simple_inbox
from sessiontree.actors.turn import ModelTurn
from sessiontree.persistence.tx import JobFenced

log = logging.getLogger(__name__)


class SessionActor(pykka.ThreadingActor):
    use_daemon_thread = True

    def __init__(self, ctx: RuntimeContext, session_id: str) -> None:
        init_actor(self)  # pykka's __init__, with a URN that costs no system call
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
        try:
            self.ctx.fault("actor.run", session_id=self.session_id, attempt=message.attempt)
            turn = ModelTurn(self.ctx, message.job_id, message.attempt, message.session_id,
                             message.token)
            outcome = turn.run()
        except Cancelled as cancelled:
            if not message.token.cancelled:
                self._crash(message, cancelled)
                return
            outcome = f"cancelled:{cancelled.reason}"
        except JobFenced:
            outcome = "fenced"
        except BaseException as exc:  # see "What is a crash" above
            self._crash(message, exc)
            return
        self.current = None
        if outcome == "completed" and (turn.session is None or turn.session.workspace):
            # its own worktree, if any, goes (its branch stays); none without a workspace
            self.ctx.workspaces.session_completed(message.session_id)
        self._tell_scheduler(JobFinished(message.session_id, message.job_id, message.attempt,
                                         outcome))
        self.stop()  # passivate

    def _crash(self, job: RunJob, exc: BaseException) -> None:
        self.current = None
        with contextlib.suppress(BaseException):  # a hostile __str__ must not stop us here
            log.error("session %s crashed in job %s attempt %d: %s", job.session_id,
                      job.job_id, job.attempt, exception_text(exc), exc_info=exc)
        self._tell_scheduler(ActorCrashed(job.session_id, job.job_id, job.attempt, exc))
        self.stop()

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
