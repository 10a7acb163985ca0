"""Runtime: the host process's one entry point.

Open a store, register providers and tools, create root sessions, wait for them, read
the tree, close. Thread-safe; a context manager. ``Runtime.open`` also recovers a store
left by a dead process (see ``supervision.recovery``) once the providers and tools it
was given are registered -- they live in code, not in the store.

Threads, and the state each one alone may touch (the one map; keep it true):

==========================  ==========================================================
host threads                call ``Runtime`` methods. They write the store through its
                            transactions (create, enqueue, resolve) and *ask* the
                            scheduler for everything that touches its state (cancel,
                            stats, spawn); they never read or write scheduler state.
the scheduler's thread      (``SchedulerActor``, one) alone owns the queue, the running
                            set, the per-provider counters, the throttle buffer and
                            its timer bookkeeping; decides spawns and restarts.
pooled actor threads        (``actors.threads``) each run one ``SessionActor`` for one
                            model_run: the provider call, the tools, the run's
                            commits. An actor touches only its own run's state, and
                            tells the scheduler when it ends (``JobFinished``) or dies
                            (``ActorCrashed``).
the clock's timer threads   (``SystemClock.call_later``) only *send* a message to an
                            actor (``Wake``, a retry); they never touch its state.
the lease heartbeat         renews the store's owner lease every ``lease_ttl / 3``;
                            touches only the lease row.
store listeners             run on whichever thread committed, right after the commit;
                            they must be cheap and thread-safe: the history cache
                            extends its entries under its own lock, the runtime bumps
                            a Condition and tells the scheduler of new jobs, an
                            OpenTelemetry processor (``add_span_processor``) gets the
                            spans the commit ended.
==========================  ==========================================================

Guarantees: one writer connection, used under the store's lock; every commit's
listeners run after the commit, never inside it; no thread ever waits for the
scheduler while holding the store's lock.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import uuid
from collections.abc import Callable, Iterable
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import Any

import pykka
from pydantic import ValidationError

from sessiontree._budget import Budget
from sessiontree._clock import Clock, SystemClock
from sessiontree._errors import InvalidInput, RuntimeClosed, WaitTimeout
from sessiontree._limits import Limits, RestartType, Strategy
from sessiontree._messages import SessionSpawnRequest, SessionSpawnResponse
from sessiontree._reasons import Reason
from sessiontree._recorder import FlightRecorderAPI
from sessiontree._states import JobState, SessionState, ToolCallState
from sessiontree._views import (
    JobInfo,
    MailboxPost,
    MessageInfo,
    SessionInfo,
    SessionNode,
    ToolCallInfo,
    build_forest,
    info,
    job_info,
    mailbox_post,
    message_info,
    tool_call_info,
)
from sessiontree.actors.context import FaultHook, RuntimeContext
from sessiontree.persistence import lease
from sessiontree.persistence.engine import open_store
from sessiontree.persistence.records import CommitSummary
from sessiontree.persistence.store import Store
from sessiontree.providers.base import Provider
from sessiontree.supervision import scheduler as sch
from sessiontree.supervision.recovery import RecoveryReport, recover
from sessiontree.supervision.scheduler import SchedulerActor, SchedulerStats
from sessiontree.tools.builtin import BUILTIN_TOOLS
from sessiontree.tools.gate import ToolGate
from sessiontree.tools.registry import Tool, ToolRegistry

log = logging.getLogger(__name__)

LEASE_TTL = 15.0
"""Seconds a dead owner on another host blocks the store; heartbeats every TTL/3."""

ASK_TIMEOUT = 30.0


class _SpawnPort:
    def __init__(self, ctx: RuntimeContext) -> None:
        self.ctx = ctx

    def spawn(self, request: SessionSpawnRequest) -> SessionSpawnResponse:
        response: SessionSpawnResponse = self.ctx.scheduler.ask(
            sch.Spawn(request), timeout=ASK_TIMEOUT
        )
        return response


class Runtime(FlightRecorderAPI):
    """A running sessiontree: one store, one SchedulerActor, its session actors. Its
    Flight Recorder methods (events, spans, retention, export, OpenTelemetry) are
    :class:`~sessiontree._recorder.FlightRecorderAPI`'s."""

    def __init__(self, store: Store, ctx: RuntimeContext, owner_id: str, lease_ttl: float):
        self._store = store  # private: hosts read through the typed methods below
        self._ctx = ctx
        self._owner_id = owner_id
        self._lease_ttl = lease_ttl
        self._closed = False
        self._close_lock = threading.Lock()
        self._changed = threading.Condition()
        self._generation = 0  # bumped on every committed state change
        self._stop_heartbeat = threading.Event()
        self._heartbeat: threading.Thread | None = None
        self.recovery = RecoveryReport()

    # -- opening and closing ----------------------------------------------------------
    @classmethod
    def open(
        cls,
        store: str | Path,
        *,
        providers: Iterable[Provider] = (),
        tools: Iterable[Tool] = (),
        limits: Limits | None = None,
        setup: Callable[[Runtime], None] | None = None,
        clock: Clock | None = None,
        durable: bool = False,
        lease_ttl: float = LEASE_TTL,
        fault_hook: FaultHook | None = None,
    ) -> Runtime:
        """Open (or create) a store and start the scheduler.

        ``setup`` is called with the runtime before recovery, to register providers and
        tools. Raises :class:`StoreInUse` if another live process holds the store,
        :class:`SchemaVersionError`/:class:`CorruptStore`/:class:`StoreError` for a
        store that cannot be used, :class:`InvalidInput` for bad arguments.
        """
        if limits is not None and not isinstance(limits, Limits):
            raise InvalidInput("limits must be a sessiontree.Limits")
        if lease_ttl <= 0:
            raise InvalidInput("lease_ttl must be > 0")
        clock = clock or SystemClock()
        st = open_store(store, clock=clock, durable=durable)
        owner_id = uuid.uuid4().hex
        try:
            lease.acquire(st, owner_id, lease_ttl)
        except Exception:
            st.close()
            raise
        st.enable_row_cache()  # this process is now the store's only writer
        registry = ToolRegistry(BUILTIN_TOOLS)
        ctx = RuntimeContext(
            store=st, limits=limits or Limits(), clock=clock, tools=registry,
            gate=ToolGate(registry), fault_hook=fault_hook,
        )
        rt = cls(st, ctx, owner_id, lease_ttl)
        try:
            for p in providers:
                rt.register_provider(p)
            for t in tools:
                rt.register_tool(t)
            if setup is not None:
                setup(rt)
            rt.recovery = recover(st)
            rt._start()
        except BaseException:
            rt._teardown()
            raise
        return rt

    def _start(self) -> None:
        ctx = self._ctx
        ctx.spawn_port = _SpawnPort(ctx)
        ctx.scheduler = SchedulerActor.start(ctx)
        self._store.add_listener(self._on_commit)
        ctx.scheduler.ask(sch.Load(), timeout=ASK_TIMEOUT)
        self._heartbeat = threading.Thread(
            target=self._beat, name="sessiontree-lease", daemon=True
        )
        self._heartbeat.start()

    def _beat(self) -> None:
        while not self._stop_heartbeat.wait(self._lease_ttl / 3):
            try:
                if not lease.heartbeat(self._store, self._owner_id):
                    log.error("store lease lost: another process took over %s", self._store.path)
            except Exception:
                log.exception("lease heartbeat failed")

    def _on_commit(self, summary: CommitSummary) -> None:
        if summary.jobs or summary.cancelled_jobs:
            with contextlib.suppress(pykka.ActorDeadError):
                self._ctx.scheduler.tell(sch.JobsChanged(summary))
        if summary.states:
            with self._changed:
                self._generation += 1
                self._changed.notify_all()

    def close(self, timeout: float = 10.0) -> None:
        """Stop every actor and release the store. Runs cut off here resume on the next
        open (they are still ``running`` in the store, and recovery re-queues them)."""
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        self._teardown(timeout)

    def _teardown(self, timeout: float = 10.0) -> None:
        self._closed = True
        ref = self._ctx.scheduler
        if ref is not None:
            try:
                actors = ref.ask(sch.Shutdown(timeout), timeout=timeout + 5)
                stuck = []
                for actor in actors:
                    try:
                        actor.stop(block=True, timeout=timeout)
                    except pykka.Timeout:
                        stuck.append(actor)
                    except pykka.ActorDeadError:
                        pass
                if stuck:
                    log.warning("%d session actors still in a provider call at close", len(stuck))
                ref.stop(block=True, timeout=timeout)
            except (pykka.ActorDeadError, pykka.Timeout):
                log.warning("scheduler did not stop cleanly")
        self._ctx.actor_threads.close(timeout)
        self._store.remove_listener(self._on_commit)
        self._stop_heartbeat.set()
        if self._heartbeat is not None:
            self._heartbeat.join(timeout)
        lease.release(self._store, self._owner_id)
        self._store.close()
        with self._changed:
            self._generation += 1
            self._changed.notify_all()

    def __enter__(self) -> Runtime:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeClosed("runtime is closed")

    # -- registration -----------------------------------------------------------------
    def register_provider(self, provider: Provider) -> None:
        """Make ``provider`` available to sessions (by its ``name``). Raises
        :class:`InvalidInput` for an object that is not a provider or a name taken."""
        self._check_open()
        name = getattr(provider, "name", None)
        if not isinstance(name, str) or not name or not callable(getattr(provider, "complete", None)):
            raise InvalidInput("a provider needs a non-empty str .name and a .complete()")
        if name in self._ctx.providers:
            raise InvalidInput(f"provider {name!r} is already registered")
        self._ctx.providers[name] = provider

    def register_tool(self, tool: Tool) -> None:
        """Add ``tool`` to the registry (the Tool Gate still decides every call).
        Raises :class:`InvalidInput` for a non-tool or a name already registered."""
        self._check_open()
        self._ctx.tools.register(tool)

    def on_change(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback()`` after every committed write to the store (a state change,
        a message, an event...). It runs on the committing thread, so it must be cheap,
        thread-safe and must not call back into the runtime; set an Event or notify a
        Condition there. Returns a function that removes the callback."""

        def heard(_summary: CommitSummary) -> None:
            callback()

        self._store.add_listener(heard)
        return lambda: self._store.remove_listener(heard)

    @property
    def limits(self) -> Limits:
        return self._ctx.limits

    # -- sessions ---------------------------------------------------------------------
    def create_session(
        self,
        task: str,
        *,
        role: str = "root",
        provider: str | None = None,
        model: str = "default",
        budget: Budget | dict[str, Any] | None = None,
        capabilities: Iterable[str] = (),
        workspace: str | Path | None = None,
        system: str | None = None,
        max_children: int | None = None,
        restart: RestartType | None = None,
        child_strategy: Strategy | None = None,
        start: bool = True,
        meta: dict[str, Any] | None = None,
    ) -> str:
        """Create a root session (and queue its first model_run unless ``start=False``).

        Returns the session id. Raises :class:`InvalidInput` for bad arguments.
        """
        self._check_open()
        if not isinstance(task, str):
            raise InvalidInput("task must be a str")
        if not isinstance(role, str) or not role.strip():
            raise InvalidInput("role must be a non-empty str")
        provider = provider or self._default_provider()
        if provider not in self._ctx.providers:
            raise InvalidInput(f"provider {provider!r} is not registered", provider=provider)
        try:
            budget_v = (
                self._ctx.limits.default_budget if budget is None
                else budget if isinstance(budget, Budget) else Budget.model_validate(budget)
            )
        except ValidationError as exc:
            raise InvalidInput(f"invalid budget: {exc}") from exc
        caps = tuple(capabilities)
        if not all(isinstance(c, str) and c for c in caps):
            raise InvalidInput("capabilities must be non-empty strings")
        if max_children is not None and (not isinstance(max_children, int) or max_children < 0):
            raise InvalidInput("max_children must be an int >= 0")
        if restart not in (None, "permanent", "transient", "temporary"):
            raise InvalidInput(f"unknown restart type {restart!r}")
        if child_strategy not in (None, "one_for_one", "one_for_all", "rest_for_one"):
            raise InvalidInput(f"unknown strategy {child_strategy!r}")
        ws = None
        if workspace is not None:
            path = Path(workspace)
            if not path.is_dir():
                raise InvalidInput(f"workspace {path} is not a directory")
            ws = str(path.resolve())
        with self._store.transaction() as tx:
            session, _ = tx.create_session(
                role=role, provider=provider, model=model, budget=budget_v,
                capabilities=caps, workspace=ws, max_children=max_children,
                restart=restart or self._ctx.limits.default_restart,
                child_strategy=child_strategy or self._ctx.limits.default_strategy,
                system=system, task=task, meta=meta, enqueue=start,
            )
        return session.id

    def _default_provider(self) -> str:
        if len(self._ctx.providers) == 1:
            return next(iter(self._ctx.providers))
        raise InvalidInput("name the provider: none or several are registered")

    def enqueue(self, session_id: str) -> str:
        """Queue the first model_run of a session created with ``start=False``."""
        self._check_open()
        with self._store.transaction() as tx:
            tx.set_state(session_id, SessionState.QUEUED, Reason.ENQUEUED)
            return tx.enqueue(session_id).id

    def cancel(self, session_id: str, note: str | None = None) -> None:
        """Cancel a session and its subtree. A queued run is dropped at once; a running
        one is cancelled cooperatively (its late result is discarded). Idempotent.

        The session ends ``cancelled`` with reason ``cancelled_by_host``; ``note`` (free
        text, e.g. why) is stored beside the reason in the state event, never as it."""
        self._check_open()
        if note is not None and not isinstance(note, str):
            raise InvalidInput("note must be a str")
        self._store.session(session_id)  # UnknownSession for a bad id
        self._ctx.scheduler.ask(sch.Cancel(session_id, Reason.CANCELLED_BY_HOST, note),
                                timeout=ASK_TIMEOUT)

    def resolve(self, call_id: str, outcome: str, result: Any = None) -> None:
        """Operator decision on a side-effecting call cut off between intent and result."""
        self._check_open()
        from sessiontree.supervision.operator import resolve_call

        resolve_call(self._store, call_id, outcome, result)

    def wait(self, session_id: str, timeout: float | None = None) -> SessionInfo:
        """Block until the session is terminal; return it. Raises :class:`WaitTimeout`."""
        self._store.session(session_id)
        return self._wait_for(lambda: self._terminal(session_id), session_id, timeout)

    def _terminal(self, session_id: str) -> SessionInfo | None:
        s = self.session(session_id)
        return s if s.terminal else None

    def _wait_for(
        self, check: Callable[[], SessionInfo | None], what: str, timeout: float | None
    ) -> SessionInfo:
        import time

        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._changed:
                seen = self._generation
            # Read the store without holding the condition: committing threads notify
            # it, and must never queue behind a waiter's read.
            found = check()
            if found is not None:
                return found
            with self._changed:
                while self._generation == seen:
                    if self._closed:
                        raise RuntimeClosed("runtime closed while waiting")
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        raise WaitTimeout(f"{what} did not finish within {timeout}s")
                    self._changed.wait(remaining if remaining is not None else 1.0)

    def wait_state(
        self, session_id: str, state: SessionState | str, timeout: float | None = None
    ) -> SessionInfo:
        """Block until the session is in ``state`` (or has ended); return it. Raises
        :class:`WaitTimeout`, :class:`InvalidInput` for an unknown state name."""
        try:
            state = SessionState(state)
        except ValueError:
            raise InvalidInput(f"unknown session state {state!r}") from None

        def check() -> SessionInfo | None:
            s = self.session(session_id)
            return s if s.state == state or s.terminal else None

        return self._wait_for(check, session_id, timeout)

    # -- reading ----------------------------------------------------------------------
    def session(self, session_id: str) -> SessionInfo:
        """The session as it is now. Raises :class:`UnknownSession`."""
        return info(self._store, self._store.session(session_id))

    def tree(self, root_id: str | None = None) -> list[SessionNode]:
        """The session forest (or the tree that holds ``root_id``), children in spawn
        order, each node with its summary once it completed."""
        if root_id is not None:
            root = self._store.session(root_id)
            return build_forest(self._store, self._store.sessions(root_id=root.root_id))
        return build_forest(self._store, self._store.sessions())

    def sessions(
        self, *, root_id: str | None = None, states: Iterable[SessionState | str] | None = None
    ) -> list[SessionInfo]:
        """Sessions, oldest first: every one, or one tree's (``root_id``), optionally only
        those in ``states``. Summaries are not read (use :meth:`session` or :meth:`tree`)."""
        if root_id is not None:
            root_id = self._store.session(root_id).root_id
        return [info(self._store, r, with_summary=False) for r in self._store.sessions(
            root_id=root_id, states=_states(SessionState, states, "session states"))]

    def children(self, session_id: str) -> list[SessionInfo]:
        """The session's children, in spawn order. Raises :class:`UnknownSession`."""
        self._store.session(session_id)
        return [info(self._store, r) for r in self._store.children(session_id)]

    def messages(self, session_id: str) -> list[MessageInfo]:
        """The session's history in order. Raises :class:`UnknownSession`."""
        self._store.session(session_id)
        return [message_info(m) for m in self._store.messages(session_id)]

    def jobs(
        self, session_id: str | None = None, *, states: Iterable[JobState | str] | None = None
    ) -> list[JobInfo]:
        """model_run jobs in enqueue order: one session's (or all), optionally only
        those in ``states``."""
        if session_id is not None:
            self._store.session(session_id)
        return [job_info(j) for j in self._store.jobs(
            session_id=session_id, states=_states(JobState, states, "job states"))]

    def tool_calls(
        self, session_id: str | None = None, *,
        states: Iterable[ToolCallState | str] | None = None,
    ) -> list[ToolCallInfo]:
        """The tool-call journal: one session's calls (or all), in the order the model
        asked for them, optionally only those in ``states``."""
        if session_id is not None:
            self._store.session(session_id)
        return [tool_call_info(c) for c in self._store.tool_calls(
            session_id, states=_states(ToolCallState, states, "tool-call states"))]

    def mailbox(self, session_id: str) -> list[MailboxPost]:
        """What was posted to the session's persisted mailbox (announce-backs)."""
        self._store.session(session_id)
        return [mailbox_post(p) for p in self._store.mailbox(session_id)]

    def stats(self) -> SchedulerStats:
        """The scheduler's counters now: running and queued jobs, the most that ran at
        once, dispatches so far, the most that ran at once per provider."""
        self._check_open()
        stats: SchedulerStats = self._ctx.scheduler.ask(sch.Stats(), timeout=ASK_TIMEOUT)
        return stats


def _states(enum: type[StrEnum], states: Iterable[Any] | None, what: str) -> list[str] | None:
    if states is None:
        return None
    if isinstance(states, str):
        states = [states]
    try:
        return [enum(s).value for s in states]
    except ValueError as exc:
        raise InvalidInput(f"unknown {what}: {exc}") from None
