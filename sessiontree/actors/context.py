"""What a runtime's actors share: the store, the registries, the limits, the clock."""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pykka

from sessiontree._clock import Clock
from sessiontree._limits import Limits
from sessiontree.actors.history import HistoryCache
from sessiontree.actors.messages import ProviderUsed
from sessiontree.actors.threads import ActorThreads
from sessiontree.persistence.store import Store
from sessiontree.providers.base import Provider
from sessiontree.tools.gate import ToolGate
from sessiontree.tools.registry import ToolRegistry
from sessiontree.workspace.service import Workspaces

FaultHook = Callable[[str, dict[str, Any]], None]


@dataclass
class RuntimeContext:
    store: Store
    limits: Limits
    clock: Clock
    tools: ToolRegistry
    gate: ToolGate
    providers: dict[str, Provider] = field(default_factory=dict)
    fault_hook: FaultHook | None = None
    scheduler: Any = None  # pykka ActorRef of the SchedulerActor, set at start
    spawn_port: Any = None  # what built-in tools call to spawn (asks the scheduler)
    on_scheduler_stopped: Callable[[], None] | None = None  # the runtime wakes its waiters
    scheduler_idle: Any = None  # the scheduler's Condition, notified after each message
    # Provider calls that returned, for the scheduler's back-pressure (see
    # ``provider_used``); ``provider_notes_wanted`` is the scheduler's to set.
    provider_notes: deque[ProviderUsed] = field(default_factory=deque)
    provider_notes_wanted: bool = False
    history: HistoryCache = field(init=False)
    actor_threads: ActorThreads = field(init=False)
    workspaces: Workspaces = field(init=False)

    def __post_init__(self) -> None:
        self.workspaces = Workspaces(self.store)
        self.history = HistoryCache(self.store)
        self.store.add_listener(self.history.on_commit)
        self.actor_threads = ActorThreads()

    def provider_used(self, provider: str, job_id: str, tokens: int) -> None:
        """Tell the scheduler a provider call returned (its back-pressure counts it).

        The note goes on a queue the scheduler drains before it handles any message
        and before it admits a run, so it is counted before the run's own next word
        (its end, its crash, its spawn) and before any admission decision. It is also
        sent as a message, to wake the scheduler at once, only while the scheduler
        says a note could admit a run now (a provider cooling down or below its full
        window, or a rate limit): at rest, the run's end comes soon enough, and a
        message a run saves the scheduler a wake-up and a pump."""
        note = ProviderUsed(provider=provider, job_id=job_id, tokens=tokens)
        self.provider_notes.append(note)  # deque.append: safe across threads
        if self.scheduler is not None and self.provider_notes_wanted:
            with contextlib.suppress(pykka.ActorDeadError):
                self.scheduler.tell(note)

    def fault(self, step: str, **facts: Any) -> None:
        """Named fault point: a test's hook may raise here."""
        if self.fault_hook is not None:
            self.fault_hook(step, facts)
