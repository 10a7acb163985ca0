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
                            set, the per-provider counters and back-pressure, the
                            throttle buffer and its timer bookkeeping, the stops under
                            way and abandoned attempts (``supervision.stopping``) and
                            the group restarts (``supervision.groups``); decides
                            spawns, restarts and provider failures.
pooled actor threads        (``actors.threads``) each run one ``SessionActor`` for one
                            model_run: the provider call, the tools, the run's
                            commits. An actor touches only its own run's state, and
                            tells the scheduler when it ends (``JobFinished``), dies
                            (``ActorCrashed``) or a provider answered (``ProviderUsed``).
provider event loops        each SDK adapter (``OpenAIProvider``, ``AnthropicProvider``)
                            and each ``McpServer`` runs one event loop thread of its
                            own (``providers.event_loop``), started by its first call;
                            an actor only waits on it; a cancel reaches it through the
                            run's ``CancelToken`` callback. ``close`` closes the
                            registered providers (an ``McpServer`` by its owner).
the clock's timer threads   (``SystemClock.call_later``) only *send* a message to an
                            actor (``Wake``, ``StopExpired``, a retry); they never
                            touch its state.
the command watch           (``_control``) applies operators' commands from the store
                            as a host thread does.
the lease heartbeat         (``persistence.heartbeat``) beats on the clock's timer
                            every ``lease_ttl / 3``: renews the owner lease row and
                            checks the store file's identity; on loss it seals the
                            store, sets the runtime's failure (read by every call) and
                            *tells* the scheduler to shut down.
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
from pathlib import Path
from types import TracebackType
from typing import Any

import pykka

from sessiontree._checks import (
    check_id,
    check_timeout,
)
from sessiontree._clock import Clock, SystemClock
from sessiontree._control import RuntimeControl
from sessiontree._errors import InvalidInput, RuntimeClosed, SchedulerDied, StoreLost
from sessiontree._limits import (
    Limits,
)
from sessiontree._reads import RuntimeReads
from sessiontree._reasons import Reason
from sessiontree._recorder import FlightRecorderAPI
from sessiontree._runtime_create import RuntimeCreate
from sessiontree._runtime_turns import ChildPort, HostTurns
from sessiontree._security import RuntimeSecurity
from sessiontree.actors.context import FaultHook, RuntimeContext
from sessiontree.persistence import capabilities, lease
from sessiontree.persistence.engine import open_store
from sessiontree.persistence.heartbeat import Heartbeat
from sessiontree.persistence.records import CommitSummary
from sessiontree.persistence.store import Store
from sessiontree.providers.base import Provider
from sessiontree.supervision import scheduler as sch
from sessiontree.supervision.recovery import RecoveryReport, recover
from sessiontree.supervision.scheduler import SchedulerActor, SchedulerStats
from sessiontree.tools.builtin import BUILTIN_TOOLS
from sessiontree.tools.files import workspace_tools
from sessiontree.tools.gate import ToolGate
from sessiontree.tools.registry import Tool, ToolRegistry

log = logging.getLogger(__name__)

LEASE_TTL = 15.0
"""Seconds a dead owner on another host blocks the store; heartbeats every TTL/3."""

ASK_TIMEOUT = 30.0


_DIED = ("the runtime's scheduler is no longer running (stopped from outside sessiontree); "
         "close this runtime and open the store again: recovery resumes what was in flight")


class Runtime(RuntimeCreate, RuntimeReads, RuntimeSecurity, HostTurns, FlightRecorderAPI,
              RuntimeControl):
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
        self._heartbeat: Heartbeat | None = None
        self._failure: StoreLost | None = None  # set once the store file is lost
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
        heartbeat_clock: Clock | None = None,
    ) -> Runtime:
        """Open (or create) a store and start the scheduler.

        ``setup`` is called with the runtime before recovery, to register providers and
        tools. Raises :class:`StoreInUse` if another live process holds the store,
        :class:`SchemaVersionError`/:class:`CorruptStore`/:class:`StoreError` for a
        store that cannot be used, :class:`InvalidInput` for bad arguments.

        The lease heartbeat (every ``lease_ttl / 3`` seconds) also checks that the store
        file is still the one opened (``persistence.heartbeat``); it is paced by
        ``heartbeat_clock`` (default: the system clock, whatever ``clock`` is), so a test
        can pass a ``ManualClock`` and beat by advancing it.
        """
        if limits is not None and not isinstance(limits, Limits):
            raise InvalidInput("limits must be a sessiontree.Limits")
        check_timeout("lease_ttl", lease_ttl, allow_zero=False)
        clock = clock or SystemClock()
        st = open_store(store, clock=clock, durable=durable)
        if st.wal_problem is not None:
            log.error("store %s: %s (run `sessiontree verify`)", st.path, st.wal_problem)
        owner_id = uuid.uuid4().hex
        try:
            lease.acquire(st, owner_id, lease_ttl)
        except Exception:
            st.close()
            raise
        st.enable_row_cache()  # this process is now the store's only writer
        st.start_checkpointer()
        registry = ToolRegistry(BUILTIN_TOOLS)
        ctx = RuntimeContext(
            store=st, limits=limits or Limits(), clock=clock, tools=registry,
            gate=ToolGate(registry, st, clock), fault_hook=fault_hook,
        )
        for t in workspace_tools(ctx.workspaces):  # read_file, write_file, ... (tools.files)
            registry.register(t)
        rt = cls(st, ctx, owner_id, lease_ttl)
        rt._heartbeat = Heartbeat(st, owner_id, lease_ttl / 3, heartbeat_clock or SystemClock(),
                                  rt._store_lost)
        try:
            for p in providers:
                rt.register_provider(p)
            for t in tools:
                rt.register_tool(t)
            if setup is not None:
                setup(rt)
            capabilities.backfill(st)  # a store from before tokens: its sessions' grants
            rt.recovery = recover(st)
            ctx.workspaces.reconcile()  # worktrees a dead host left half made or unremoved
            rt._start()
        except BaseException:
            rt._teardown()
            raise
        return rt

    def _start(self) -> None:
        ctx = self._ctx
        ctx.spawn_port = ChildPort(ctx)
        ctx.on_scheduler_stopped = self._wake_waiters
        ctx.scheduler = SchedulerActor.start(ctx)
        self._store.add_listener(self._on_commit)
        ctx.scheduler.ask(sch.Load(), timeout=ASK_TIMEOUT)
        self._start_commands()  # operators' commands: pending ones now, then as written
        if self._heartbeat is not None:
            self._heartbeat.start()

    def _store_lost(self, error: StoreLost) -> None:
        """The heartbeat found the store file gone or replaced: stop all work (nothing
        more can be kept) and fail every later call with ``error``."""
        self._failure = error
        with contextlib.suppress(pykka.ActorDeadError):
            self._ctx.scheduler.tell(sch.Shutdown(0.0))  # stop dispatching, cancel runs
        self._wake_waiters()

    def _wake_waiters(self) -> None:
        with self._changed:
            self._generation += 1
            self._changed.notify_all()

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
        self._stop_commands()
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
        self._close_providers()
        self._store.remove_listener(self._on_commit)
        if self._heartbeat is not None:
            self._heartbeat.stop()
        lease.release(self._store, self._owner_id)
        self._store.close()
        self._wake_waiters()

    def _close_providers(self) -> None:
        """Release what adapters hold (connections, their event loop thread). A closed
        provider may be used again: it reopens on its next call."""
        for provider in self._ctx.providers.values():
            closer = getattr(provider, "close", None)
            if callable(closer):
                try:
                    closer()
                except Exception:
                    log.exception("closing provider %r failed", getattr(provider, "name", "?"))

    def __enter__(self) -> Runtime:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _check_open(self) -> None:
        """Raise if this runtime can no longer serve a call: :class:`RuntimeClosed`,
        :class:`StoreLost` (or :class:`StoreReplaced`), :class:`SchedulerDied`."""
        if self._closed:
            raise RuntimeClosed("runtime is closed")
        if self._failure is not None:
            failure = self._failure
            raise type(failure)(str(failure), **failure.facts)
        ref = self._ctx.scheduler
        if ref is not None and not ref.is_alive():
            raise SchedulerDied(_DIED)

    def _ask(self, message: object) -> Any:
        try:
            return self._ctx.scheduler.ask(message, timeout=ASK_TIMEOUT)
        except pykka.ActorDeadError:
            self._check_open()
            raise SchedulerDied(_DIED) from None

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
        self._check_open()
        return self._ctx.limits

    # -- sessions ---------------------------------------------------------------------
    def cancel(self, session_id: str, note: str | None = None) -> None:
        """Cancel a session and its subtree. A queued run is dropped at once; a running
        one is cancelled cooperatively (its late result is discarded). Idempotent.

        The session ends ``cancelled`` with reason ``cancelled_by_host``; ``note`` (free
        text, e.g. why) is stored beside the reason in the state event, never as it."""
        self._check_open()
        if note is not None:
            check_id("note", note)  # a str that can be stored
        check_id("session_id", session_id)
        self._store.session(session_id)  # UnknownSession for a bad id
        self._ask(sch.Cancel(session_id, Reason.CANCELLED_BY_HOST, note))

    def resolve(self, call_id: str, outcome: str, result: Any = None) -> None:
        """Operator decision on a side-effecting call cut off between intent and result."""
        self._check_open()
        check_id("call_id", call_id)
        from sessiontree.supervision.operator import resolve_call

        resolve_call(self._store, call_id, outcome, result)

    def stats(self) -> SchedulerStats:
        """The scheduler's counters now: running and queued jobs, the most that ran at
        once, dispatches so far, the most that ran at once per provider."""
        self._check_open()
        stats: SchedulerStats = self._ask(sch.Stats())
        return stats
